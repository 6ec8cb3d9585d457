/**
 * A JSON POST of the notification itself (the versioned payload of docs/alerting.md), with optional headers.
 * `X-Clonebox-Notification-Id` repeats the id, so a receiver can de-duplicate before parsing.
 */
import type { WebhookProvider } from '../../config/schema.js';
import { isSecretHeader } from '../../util/redact.js';
import type { NotificationProvider } from '../types.js';
import { postJson, urlSecrets } from './http.js';

export function webhookProvider(cfg: WebhookProvider): NotificationProvider {
  return {
    name: cfg.name ?? cfg.type,
    type: cfg.type,
    timeoutMs: cfg.timeout,
    secrets: [...urlSecrets(cfg.url), ...Object.entries(cfg.headers).filter(([k]) => isSecretHeader(k)).map(([, v]) => v)],
    send: (n, signal) => postJson(cfg.url, n, { ...cfg.headers, 'x-clonebox-notification-id': n.id }, signal),
  };
}
