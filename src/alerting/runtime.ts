/** Alerting as configured: providers built once per process, and what each round needs (src/store/round.ts). */
import type { AlertRoute, CloneboxConfig } from '../config/schema.js';
import { alertSettings, type AlertSettings } from './decide.js';
import type { RetryPolicy } from './delivery.js';
import { alertPolicyFromVms, type AlertPolicyLookup } from './inputs.js';
import { createProvider, providerName } from './providers/index.js';
import type { NotificationProvider } from './types.js';

/** What a round needs to decide and route notifications (the store's round reads it, src/store/round.ts). */
export interface RoundAlerting {
  settings: AlertSettings;
  policy: AlertPolicyLookup;
  routes: readonly AlertRoute[];
  /** Names of the configured providers. */
  providers: readonly string[];
}

export interface AlertingRuntime {
  settings: AlertSettings;
  providers: NotificationProvider[];
  retry: RetryPolicy;
  /** What a round over these VMs needs (their checks' tags and `alert_on`). */
  forVms(vms: readonly { name: string; checks: readonly { name: string; tags?: readonly string[]; alert_on?: 'unhealthy' | 'degraded' }[] }[]): RoundAlerting;
}

/** Undefined when no provider is configured: then nothing is decided, written or sent. */
export function alertingFromConfig(config: CloneboxConfig): AlertingRuntime | undefined {
  const a = config.alerting;
  if (!a || a.providers.length === 0) return undefined;
  const settings = alertSettings(a);
  const providers = a.providers.map((p) => createProvider(p, { repeatIntervalMs: settings.repeatIntervalMs }));
  const names = a.providers.map(providerName);
  return {
    settings,
    providers,
    retry: { initialBackoffMs: a.retry.initial_backoff, maxBackoffMs: a.retry.max_backoff, giveUpAfterMs: a.retry.give_up_after },
    forVms: (vms) => ({ settings, policy: alertPolicyFromVms(vms), routes: a.routes, providers: names }),
  };
}
