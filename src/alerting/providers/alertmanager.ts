/**
 * Prometheus Alertmanager: `POST /api/v2/alerts`, the ecosystem's own router, so users who run it get its
 * grouping, inhibition, silences and receivers. One alert per check (`CloneboxCheckFailing`) and one per
 * unreachable VM (`CloneboxVMUnreachable`), identified by their labels; `endsAt` resolves one.
 *
 * Alertmanager resolves an alert by itself once its `endsAt` passes, so a firing alert is posted with `endsAt`
 * two repeat intervals ahead (repeat notifications refresh it), never left open forever by a clonebox that stopped.
 */
import type { AlertmanagerProvider } from '../../config/schema.js';
import { isSecretHeader } from '../../util/redact.js';
import type { AlertNotification, NotificationProvider } from '../types.js';
import { postJson, urlSecrets } from './http.js';

export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

/** How long past a firing notification Alertmanager keeps the alert open without hearing from us. */
export function firingTtlMs(repeatIntervalMs: number): number {
  return repeatIntervalMs > 0 ? Math.max(2 * repeatIntervalMs, 3_600_000) : 7 * 86_400_000;
}

export function toAlertmanager(n: AlertNotification, repeatIntervalMs: number): AmAlert {
  const labels: Record<string, string> = { alertname: n.alertname, vm: n.vm, severity: n.severity };
  if (n.check) labels.check = n.check;
  if (n.check_type) labels.type = n.check_type;
  if (n.hypervisor) labels.hypervisor = n.hypervisor;
  const at = Date.parse(n.at);
  const annotations: Record<string, string> = {
    summary: `${n.alert_key} ${n.event === 'test' ? 'test notification' : n.status === 'firing' ? n.state : 'resolved'}`,
    message: n.message,
    state: n.state,
    event: n.event,
    notification_id: n.id,
  };
  if (n.links.details) annotations.details_url = n.links.details;
  if (n.tags.length) annotations.tags = n.tags.join(',');
  if (n.event === 'flapping') annotations.flapping = 'true';
  const endsAt = n.status === 'resolved' ? at : n.event === 'test' ? at + 5 * 60_000 : at + firingTtlMs(repeatIntervalMs);
  return {
    labels,
    annotations,
    startsAt: n.since,
    endsAt: new Date(endsAt).toISOString(),
    ...(n.links.details ? { generatorURL: n.links.details } : {}),
  };
}

export function alertmanagerProvider(cfg: AlertmanagerProvider, repeatIntervalMs: number): NotificationProvider {
  const url = `${cfg.url.replace(/\/+$/, '')}/api/v2/alerts`;
  return {
    name: cfg.name ?? cfg.type,
    type: cfg.type,
    timeoutMs: cfg.timeout,
    secrets: [...urlSecrets(cfg.url), ...Object.entries(cfg.headers).filter(([k]) => isSecretHeader(k)).map(([, v]) => v)],
    send: (n, signal) => postJson(url, [toAlertmanager(n, repeatIntervalMs)], cfg.headers, signal),
  };
}
