/** The providers by type: one file each, one interface (`NotificationProvider`). */
import type { AlertProvider } from '../../config/schema.js';
import type { NotificationProvider } from '../types.js';
import { alertmanagerProvider } from './alertmanager.js';
import { commandProvider } from './command.js';
import { emailProvider } from './email.js';
import { slackProvider } from './slack.js';
import { webhookProvider } from './webhook.js';

export interface ProviderOptions {
  /** For Alertmanager's `endsAt` of a firing alert. */
  repeatIntervalMs: number;
}

export function createProvider(cfg: AlertProvider, opts: ProviderOptions): NotificationProvider {
  switch (cfg.type) {
    case 'alertmanager':
      return alertmanagerProvider(cfg, opts.repeatIntervalMs);
    case 'webhook':
      return webhookProvider(cfg);
    case 'slack':
      return slackProvider(cfg);
    case 'email':
      return emailProvider(cfg);
    case 'command':
      return commandProvider(cfg);
  }
}

export function providerName(cfg: AlertProvider): string {
  return cfg.name ?? cfg.type;
}
