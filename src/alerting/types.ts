/**
 * Alerting's shapes: the notification every provider receives (a documented, versioned payload: docs/alerting.md),
 * the per-alert state kept between rounds, silences, and the one interface every provider implements.
 */
import type { HealthStatus } from '../report.js';

/** Bumped only with an incompatible change of `AlertNotification`; receivers may check it. */
export const PAYLOAD_VERSION = 1 as const;

/**
 * What happened: an alert opened or closed, a check began or stopped flapping (Nagios' definition), or
 * `health alert test` asked for a test.
 */
export type AlertEvent = 'firing' | 'resolved' | 'flapping' | 'flapping_stopped' | 'test';

/** One alert per check (`CloneboxCheckFailing`, flapping included), one per unreachable VM, and the test. */
export type AlertName = 'CloneboxCheckFailing' | 'CloneboxVMUnreachable' | 'CloneboxTest';

export interface AlertNotification {
  version: typeof PAYLOAD_VERSION;
  /** Stable for this notification, on every retry and to every provider: receivers de-duplicate on it. */
  id: string;
  event: AlertEvent;
  /** The alert's status after this notification: `firing` while open (flapping included), `resolved` once closed. */
  status: 'firing' | 'resolved';
  alertname: AlertName;
  /** `vm/check`, or `vm` for a VM-level alert: one alert, however many notifications. */
  alert_key: string;
  scope: 'check' | 'vm';
  vm: string;
  check?: string;
  /** The check's probe type (http, tcp, …). */
  check_type?: string;
  hypervisor?: string;
  /** The check's tags; a VM-level alert carries the tags of the VM's checks. */
  tags: string[];
  /** From the check's `critical`; a VM-level alert is critical. */
  severity: 'critical' | 'warning';
  /** The check's (thresholded) state now; UNKNOWN for an unreachable VM. */
  state: HealthStatus;
  /** What the previous notification of this alert said; null for its first. */
  previous_state: HealthStatus | null;
  /** One sentence for a person (already redacted by the probes). */
  message: string;
  /** ISO time the alert began (the hard transition, or the moment the VM became unreachable). */
  since: string;
  /** ISO time of this notification. */
  at: string;
  /** 0 for the first notification of an alert; n for the nth re-notification (`repeat_interval`). */
  repeat: number;
  /** Only on `flapping` / `flapping_stopped`: the share of state changes over the last 21 results, in %. */
  flap_percent?: number;
  links: { details?: string };
}

/** What is kept per alert between rounds (store table `alert_states`, or memory under `watch --no-store`). */
export interface AlertState {
  /** Whether the last notification left the alert open (see AlertNotification.status). */
  firing: boolean;
  /** ms: when the open alert began. */
  since?: number;
  /** ms: when it was last notified (firing or repeat). */
  last_notified?: number;
  repeat: number;
  flapping: boolean;
  /** The latest evaluated raw results, oldest first, at most 21: H(ealthy) D(egraded) U(nhealthy). */
  history: string;
  /** VM-level only: ms since which the VM could not be evaluated. */
  unreachable_since?: number;
  /** The state the last notification reported (for `previous_state`). */
  last_state?: HealthStatus;
}

/** Alert states by alert key (`vm\0check`, or `vm\0` for the VM-level alert). */
export type AlertStateMap = Map<string, AlertState>;

export function alertKey(vm: string, check?: string): string {
  return `${vm}\u0000${check ?? ''}`;
}

/** Maintenance: no alerts and no actions for matching checks until `ends_at`; checks still run and are recorded. */
export interface Silence {
  id: string;
  /** A VM name or glob. */
  vm: string;
  /** One check; absent: every check of the VM and its VM-level alert. */
  check?: string;
  /** ms */
  starts_at: number;
  /** ms */
  ends_at: number;
  reason: string;
  created_by?: string;
  /** ms */
  created_at: number;
}

/** A provider's answer: the notification was taken, or why not. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}

/** One provider (src/alerting/providers/<type>.ts): deliver one notification before the signal aborts, or throw. */
export interface NotificationProvider {
  readonly name: string;
  readonly type: string;
  /** Deadline for one delivery, ms. */
  readonly timeoutMs: number;
  send(n: AlertNotification, signal: AbortSignal): Promise<void>;
  /** Values that must never be printed (passwords, tokens, URLs with credentials): scrubbed from errors. */
  readonly secrets: readonly string[];
}
