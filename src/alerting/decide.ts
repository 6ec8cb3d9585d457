/**
 * Which notifications a round of results makes: the one place that knows when to fire, resolve, repeat, flap,
 * hold back and stay silent. Pure: the caller loads the previous alert states (store, or memory), and saves the
 * next ones in the same transaction as the check states, with the notifications in the outbox.
 *
 * It reconciles, rather than reacting to edges: an alert is open when its check is in a hard bad state (UNHEALTHY,
 * or DEGRADED with `alert_on: degraded`), and a notification goes out when what the receivers were last told
 * differs from that, unless the check is flapping, silenced, or its VM cannot be evaluated. So an alert held back
 * by a silence or an unreachable VM goes out at the first result after it ends, and nothing is sent twice.
 *
 * - UNKNOWN results change no check state (src/engine/state.ts), so they never fire or resolve anything.
 * - A VM that cannot be evaluated for `unreachable_after` gets one VM-level alert; its checks' alerts wait
 *   until it answers again (dependency: domain → address → SSH → checks).
 * - Flapping (Nagios): one `flapping` notification, nothing while it flaps, one `flapping_stopped` with the state.
 */
import { createHash } from 'node:crypto';
import type { AlertingSettings } from '../config/schema.js';
import type { CheckState } from '../engine/state.js';
import type { HealthStatus, VMHealthReport } from '../report.js';
import { flapChange, flapPercent, pushHistory, type FlapThresholds } from './flapping.js';
import { activeSilence } from './silences.js';
import { alertKey, PAYLOAD_VERSION, type AlertEvent, type AlertNotification, type AlertState, type AlertStateMap, type Silence } from './types.js';

export interface AlertSettings {
  repeatIntervalMs: number;
  unreachableAfterMs: number;
  flapping: FlapThresholds;
  hypervisor?: string;
  /** `{{vm}}` and `{{check}}` are filled in. */
  detailsUrl?: string;
}

export const DEFAULT_ALERT_SETTINGS: AlertSettings = {
  repeatIntervalMs: 4 * 3_600_000,
  unreachableAfterMs: 5 * 60_000,
  flapping: { enabled: true, high_threshold: 50, low_threshold: 25 },
};

export function alertSettings(a: AlertingSettings | undefined): AlertSettings {
  if (!a) return DEFAULT_ALERT_SETTINGS;
  return {
    repeatIntervalMs: a.repeat_interval,
    unreachableAfterMs: a.unreachable_after,
    flapping: a.flapping,
    ...(a.hypervisor ? { hypervisor: a.hypervisor } : {}),
    ...(a.details_url ? { detailsUrl: a.details_url } : {}),
  };
}

/** One check's result of a round, after thresholds. */
export interface CheckAlertInput {
  vm: string;
  check: string;
  type: string;
  tags: readonly string[];
  critical: boolean;
  alert_on: 'unhealthy' | 'degraded';
  /** What the probe saw. */
  raw: HealthStatus;
  /** The check's state after this result. */
  state: CheckState;
  /** The probe's message. */
  message: string;
  /** ms: when the result was taken. */
  at: number;
}

/** Whether a VM could be evaluated this round: true, false, or undefined when the round says nothing about it. */
export interface VmAlertInput {
  vm: string;
  reachable: boolean | undefined;
  /** Why it could not be evaluated. */
  reason?: string;
  at: number;
  /** The tags of its checks (for routes). */
  tags: readonly string[];
}

export interface AlertRoundInput {
  vms: readonly VmAlertInput[];
  checks: readonly CheckAlertInput[];
  /** The alert states of these VMs and checks before the round. */
  prev: AlertStateMap;
  silences: readonly Silence[];
  settings: AlertSettings;
  /** ms */
  now: number;
}

export interface AlertRoundOutcome {
  /** The next state of every alert the round touched. */
  states: AlertStateMap;
  notifications: AlertNotification[];
  /** alertKey(vm, check) → the silence that held a check back this round (for the results and actions). */
  silenced: Map<string, Silence>;
}

const FRESH: AlertState = { firing: false, repeat: 0, flapping: false, history: '' };

/** Stable for the same alert, event and moment: a notification enqueued twice would still carry one id. */
export function notificationId(key: string, event: AlertEvent, at: number, repeat: number): string {
  return createHash('sha256').update(`${key}|${event}|${at}|${repeat}`).digest('hex').slice(0, 24);
}

function link(settings: AlertSettings, vm: string, check?: string): { details?: string } {
  if (!settings.detailsUrl) return {};
  return { details: settings.detailsUrl.replaceAll('{{vm}}', encodeURIComponent(vm)).replaceAll('{{check}}', encodeURIComponent(check ?? '')) };
}

/** Whether a check's state asks for an open alert. */
export function wantsAlert(c: Pick<CheckAlertInput, 'alert_on' | 'state'>, open: boolean): boolean {
  const s = c.state;
  if (s.state === 'UNHEALTHY') return true; // only ever entered by the hard transition; stays through a soft recovery
  if (c.alert_on === 'degraded' && s.state === 'DEGRADED') return s.hard || open; // soft DEGRADED: on its way up or down
  return false;
}

function describeFlap(percent: number, started: boolean): string {
  return started
    ? `flapping: ${percent}% state changes over the last 21 results; no further notifications until it settles`
    : `stopped flapping (${percent}% state changes over the last 21 results)`;
}

export function decideAlerts(input: AlertRoundInput): AlertRoundOutcome {
  const { settings, now } = input;
  const states: AlertStateMap = new Map();
  const notifications: AlertNotification[] = [];
  const silenced = new Map<string, Silence>();
  const get = (key: string): AlertState => states.get(key) ?? { ...(input.prev.get(key) ?? FRESH) };

  // VMs first: whether each one's checks are held back this round.
  const held = new Set<string>();
  for (const v of input.vms) {
    const key = alertKey(v.vm);
    const st = get(key);
    const silence = activeSilence(input.silences, v.vm, undefined, now);
    const base = {
      alertname: 'CloneboxVMUnreachable' as const,
      alert_key: v.vm,
      scope: 'vm' as const,
      vm: v.vm,
      tags: [...v.tags],
      severity: 'critical' as const,
      links: link(settings, v.vm),
    };
    if (v.reachable === false) {
      st.unreachable_since ??= v.at;
      const reason = v.reason ?? 'the VM could not be evaluated';
      const due = now - st.unreachable_since >= settings.unreachableAfterMs;
      if (due && !silence) {
        if (!st.firing) {
          st.firing = true;
          st.since = st.unreachable_since;
          st.repeat = 0;
          st.last_notified = now;
          notifications.push(vmNotification(base, 'firing', st, reason, now, settings));
          st.last_state = 'UNKNOWN';
        } else if (settings.repeatIntervalMs > 0 && st.last_notified !== undefined && now - st.last_notified >= settings.repeatIntervalMs) {
          st.repeat++;
          st.last_notified = now;
          notifications.push(vmNotification(base, 'firing', st, reason, now, settings));
        }
      }
    } else if (v.reachable === true) {
      if (st.firing && !silence) {
        notifications.push(vmNotification(base, 'resolved', st, 'the VM can be evaluated again', now, settings));
        st.firing = false;
        st.repeat = 0;
        st.last_state = 'HEALTHY';
        delete st.since;
      }
      if (!st.firing) delete st.unreachable_since;
    }
    if (silence) silenced.set(key, silence);
    if (st.unreachable_since !== undefined) held.add(v.vm);
    states.set(key, st);
  }

  for (const c of input.checks) {
    const key = alertKey(c.vm, c.check);
    const st = get(key);
    st.history = pushHistory(st.history, c.raw);
    const percent = flapPercent(st.history);
    const change = c.raw === 'UNKNOWN' ? undefined : flapChange(st.flapping, percent, settings.flapping);
    const silence = activeSilence(input.silences, c.vm, c.check, now);
    if (silence) silenced.set(key, silence);
    const quiet = silence !== undefined || held.has(c.vm);
    const bad = wantsAlert(c, st.firing);
    const notify = (event: AlertEvent, open: boolean, message: string, extra: Partial<AlertNotification> = {}) => {
      if (open && !st.firing) {
        st.since = event === 'firing' ? Date.parse(c.state.last_change) : now;
        st.repeat = 0;
      }
      const since = st.since ?? now;
      notifications.push({
        version: PAYLOAD_VERSION,
        id: notificationId(`${c.vm}/${c.check}`, event, now, st.repeat),
        event,
        status: open ? 'firing' : 'resolved',
        alertname: 'CloneboxCheckFailing',
        alert_key: `${c.vm}/${c.check}`,
        scope: 'check',
        vm: c.vm,
        check: c.check,
        check_type: c.type,
        ...(settings.hypervisor ? { hypervisor: settings.hypervisor } : {}),
        tags: [...c.tags],
        severity: c.critical ? 'critical' : 'warning',
        state: c.state.state,
        previous_state: st.last_state ?? null,
        message,
        since: new Date(since).toISOString(),
        at: new Date(now).toISOString(),
        repeat: st.repeat,
        links: link(settings, c.vm, c.check),
        ...extra,
      });
      st.firing = open;
      st.last_state = c.state.state;
      st.last_notified = now;
      if (!open) {
        delete st.since;
        st.repeat = 0;
      }
    };

    if (change === 'started') {
      st.flapping = true;
      if (!quiet) notify('flapping', true, describeFlap(percent, true), { flap_percent: percent });
    } else if (change === 'stopped') {
      st.flapping = false;
      if (!quiet) notify('flapping_stopped', bad, `${describeFlap(percent, false)}; now ${c.state.state}: ${c.message}`, { flap_percent: percent });
    } else if (!st.flapping && !quiet) {
      if (bad !== st.firing) notify(bad ? 'firing' : 'resolved', bad, c.message);
      else if (
        bad &&
        settings.repeatIntervalMs > 0 &&
        st.last_notified !== undefined &&
        now - st.last_notified >= settings.repeatIntervalMs &&
        c.raw !== 'UNKNOWN'
      ) {
        st.repeat++;
        notify('firing', true, c.message);
      }
    }
    states.set(key, st);
  }
  return { states, notifications, silenced };
}

function vmNotification(
  base: Pick<AlertNotification, 'alertname' | 'alert_key' | 'scope' | 'vm' | 'tags' | 'severity' | 'links'>,
  event: 'firing' | 'resolved',
  st: AlertState,
  message: string,
  now: number,
  settings: AlertSettings,
): AlertNotification {
  return {
    version: PAYLOAD_VERSION,
    id: notificationId(base.alert_key, event, now, st.repeat),
    event,
    status: event,
    ...base,
    ...(settings.hypervisor ? { hypervisor: settings.hypervisor } : {}),
    state: event === 'firing' ? 'UNKNOWN' : 'HEALTHY',
    previous_state: st.last_state ?? null,
    message: event === 'firing' ? `cannot be evaluated since ${new Date(st.unreachable_since ?? now).toISOString()}: ${message}` : message,
    since: new Date(st.since ?? st.unreachable_since ?? now).toISOString(),
    at: new Date(now).toISOString(),
    repeat: st.repeat,
    links: base.links,
  };
}

/**
 * Whether a VM's round says it could be evaluated: any guest check with a result says yes; a VM-level reason
 * (shut off, paused, no address) or every guest check failing in transport (SSH refused, timed out) says no.
 */
export function vmReachability(raw: VMHealthReport): { reachable: boolean | undefined; reason?: string } {
  if (raw.reason) return { reachable: false, reason: raw.reason };
  const guest = raw.checks.filter((c) => c.transport !== 'host');
  const evaluated = (guest.length ? guest : raw.checks).some((c) => c.status !== 'UNKNOWN');
  if (evaluated) return { reachable: true };
  const transport = guest.filter((c) => c.details.transport_error !== undefined);
  if (guest.length > 0 && transport.length === guest.length) return { reachable: false, reason: transport[0]!.message };
  return { reachable: undefined };
}
