/**
 * The threshold state machine: one check's results over time → the status we report, and when actions fire.
 *
 * Kubernetes `failureThreshold`/`successThreshold` counting, Nagios soft/hard states. Pure: the caller loads
 * the previous state (from the store, or keeps it in memory in `health watch`) and saves the next one.
 * docs/state.md has the transition table; test/engine/state.test.ts tests it row by row.
 */
import { redactText } from '../util/redact.js';
import type { CheckResult, HealthStatus, VMHealthReport } from '../report.js';
import { buildVmReport } from './aggregate.js';

export interface Thresholds {
  /** Consecutive failing (UNHEALTHY) results that make the hard UNHEALTHY state. */
  failure_threshold: number;
  /** Consecutive passing results that end the hard UNHEALTHY state. */
  success_threshold: number;
}

/** The config schema's defaults. */
export const DEFAULT_THRESHOLDS: Thresholds = { failure_threshold: 3, success_threshold: 1 };

/** What persists per (vm, check) between rounds and between processes. */
export interface CheckState {
  /** The thresholded status we report; UNKNOWN only for a check that has never been evaluated. */
  state: HealthStatus;
  /**
   * Whether `state` is confirmed. Soft states are provisional, a streak being in progress:
   * DEGRADED while failing below `failure_threshold`, UNHEALTHY while recovering below `success_threshold`.
   */
  hard: boolean;
  consecutive_failures: number;
  consecutive_successes: number;
  /** The raw status of the latest result (UNKNOWN included). */
  last_result_status: HealthStatus;
  /** ISO time of the latest result. */
  last_result_at: string;
  /** ISO time `state` last changed (the first result for a new check). */
  last_change: string;
  last_message: string;
}

/** What `advance` needs of a result. */
export interface ResultInput {
  status: HealthStatus;
  message: string;
  /** ISO time. */
  timestamp: string;
}

export interface StateTransition {
  /** null: the check's first evaluated result. */
  from: HealthStatus | null;
  to: HealthStatus;
  /** Whether the new state is hard (see CheckState.hard). */
  hard: boolean;
  /** ISO time of the result that caused it. */
  at: string;
  message: string;
}

export type ActionKind = 'on_failure' | 'on_recovery';

export interface AdvanceOutcome {
  next: CheckState;
  /** The check's status to report for this round: the state, or UNKNOWN when this result could not be evaluated. */
  status: HealthStatus;
  /** A soft state's streak for people: "failing 1/3", "recovering 1/2"; absent in a hard state. */
  streak?: string;
  /** Set when `state` changed. */
  transition?: StateTransition;
  /** Set only on the hard transition into UNHEALTHY (on_failure) or out of it into HEALTHY (on_recovery). */
  action?: ActionKind;
}

function streakOf(s: CheckState, t: Thresholds): string | undefined {
  if (s.state === 'DEGRADED' && s.consecutive_failures > 0) return `failing ${s.consecutive_failures}/${t.failure_threshold}`;
  if (s.state === 'UNHEALTHY' && s.consecutive_successes > 0) return `recovering ${s.consecutive_successes}/${t.success_threshold}`;
  return undefined;
}

/** A threshold below 1 (a hand-edited store, a caller's bug) counts as 1: one result is always enough. */
function sane(t: Thresholds): Thresholds {
  return {
    failure_threshold: Math.max(1, Math.floor(t.failure_threshold) || 1),
    success_threshold: Math.max(1, Math.floor(t.success_threshold) || 1),
  };
}

/**
 * One result through the state machine. `prev` undefined is a check never seen before.
 *
 * - HEALTHY counts toward success, UNHEALTHY toward failure, each resetting the other streak.
 * - DEGRADED (a warning such as a disk at 85%) is not a failure of the service: it resets the success
 *   streak, keeps the failure streak as it is, and shows DEGRADED, except that it never clears UNHEALTHY.
 * - UNKNOWN (could not evaluate) changes no streak, no state, fires nothing; the round reports UNKNOWN.
 */
export function advance(prev: CheckState | undefined, result: ResultInput, thresholds: Thresholds): AdvanceOutcome {
  const t = sane(thresholds);
  const at = result.timestamp;
  const base: CheckState = prev ?? {
    state: 'UNKNOWN',
    hard: true,
    consecutive_failures: 0,
    consecutive_successes: 0,
    last_result_status: 'UNKNOWN',
    last_result_at: at,
    last_change: at,
    last_message: '',
  };
  const seen = { last_result_status: result.status, last_result_at: at, last_message: result.message };

  if (result.status === 'UNKNOWN') {
    const next = { ...base, ...seen };
    const streak = streakOf(next, t);
    return { next, status: 'UNKNOWN', ...(streak ? { streak } : {}) };
  }

  let failures = base.consecutive_failures;
  let successes = base.consecutive_successes;
  let state: HealthStatus;
  let hard: boolean;
  let action: ActionKind | undefined;
  const inOutage = base.state === 'UNHEALTHY'; // only ever entered by the hard transition

  switch (result.status) {
    case 'UNHEALTHY':
      failures++;
      successes = 0;
      if (inOutage) {
        state = 'UNHEALTHY';
        hard = true;
      } else if (failures >= t.failure_threshold) {
        state = 'UNHEALTHY';
        hard = true;
        action = 'on_failure';
      } else {
        state = 'DEGRADED';
        hard = false;
      }
      break;
    case 'HEALTHY':
      successes++;
      failures = 0;
      if (inOutage && successes < t.success_threshold) {
        state = 'UNHEALTHY';
        hard = false;
      } else {
        state = 'HEALTHY';
        hard = true;
        if (inOutage) action = 'on_recovery';
      }
      break;
    case 'DEGRADED':
      successes = 0;
      if (inOutage) {
        state = 'UNHEALTHY';
        hard = true;
      } else {
        state = 'DEGRADED';
        hard = failures === 0;
      }
      break;
  }

  const changed = state !== base.state;
  const next: CheckState = {
    state,
    hard,
    consecutive_failures: failures,
    consecutive_successes: successes,
    ...seen,
    last_change: changed || !prev ? at : base.last_change,
  };
  const streak = streakOf(next, t);
  return {
    next,
    status: state,
    ...(streak ? { streak } : {}),
    ...(changed ? { transition: { from: prev ? base.state : null, to: state, hard, at, message: result.message } } : {}),
    ...(action ? { action } : {}),
  };
}

/** The state of a check after a run of results (tests, and replaying history). */
export function replay(results: readonly ResultInput[], thresholds: Thresholds, prev?: CheckState): CheckState | undefined {
  let s = prev;
  for (const r of results) s = advance(s, r, thresholds).next;
  return s;
}

// ───────────────────────────── rounds of reports ─────────────────────────────

/** What the state machine needs to know of one configured check. */
export interface CheckPolicy extends Thresholds {
  on_failure?: string;
  on_recovery?: string;
}

/** Per VM and check: the policy, or undefined for the defaults and no actions. */
export type PolicyLookup = (vm: string, check: string) => CheckPolicy | undefined;

/** A policy lookup from resolved VMs (their `checks` carry thresholds and actions from the config). */
export function policyFromVms(
  vms: readonly {
    name: string;
    checks: readonly ({ name: string } & Partial<Thresholds> & { on_failure?: { command: string } | string; on_recovery?: { command: string } | string })[];
  }[],
): PolicyLookup {
  // The command as recorded and shown (history, watch lines, --json events): a secret it holds is masked. The
  // action itself runs the configured command (stateful.ts), never this copy.
  const commandOf = (a: { command: string } | string) => redactText(typeof a === 'string' ? a : a.command);
  const byKey = new Map<string, CheckPolicy>();
  for (const vm of vms) {
    for (const c of vm.checks) {
      byKey.set(stateKey(vm.name, c.name), {
        failure_threshold: c.failure_threshold ?? DEFAULT_THRESHOLDS.failure_threshold,
        success_threshold: c.success_threshold ?? DEFAULT_THRESHOLDS.success_threshold,
        ...(c.on_failure ? { on_failure: commandOf(c.on_failure) } : {}),
        ...(c.on_recovery ? { on_recovery: commandOf(c.on_recovery) } : {}),
      });
    }
  }
  return (vm, check) => byKey.get(stateKey(vm, check));
}

/** States of many checks: vm → check name → state. */
export type StateMap = Map<string, Map<string, CheckState>>;

export function stateKey(vm: string, check: string): string {
  return `${vm}\u0000${check}`;
}

export function getState(states: StateMap, vm: string, check: string): CheckState | undefined {
  return states.get(vm)?.get(check);
}

export function setState(states: StateMap, vm: string, check: string, state: CheckState): void {
  let m = states.get(vm);
  if (!m) states.set(vm, (m = new Map()));
  m.set(check, state);
}

/** One check's result of a round and what the state machine made of it. */
export interface CheckOutcome {
  vm: string;
  check: string;
  /** The raw result, as the probe reported it. */
  result: CheckResult;
  outcome: AdvanceOutcome;
  policy: CheckPolicy;
}

/**
 * The result as reported after thresholds: status is the thresholded one; when it differs from what the probe
 * saw the message says why ("… (soft: failing 1/3)"); `details.threshold` has the streak for machines.
 */
export function thresholdedResult(result: CheckResult, o: AdvanceOutcome): CheckResult {
  const s = o.next;
  let note = '';
  if (result.status === 'UNKNOWN') {
    if (s.state !== 'UNKNOWN') note = ` (last known state: ${s.state}${o.streak ? `, ${o.streak}` : ''})`;
  } else if (o.status !== result.status || o.streak) {
    note = o.streak ? ` (${s.state === 'UNHEALTHY' ? `still UNHEALTHY, ${o.streak}` : `soft: ${o.streak}`})` : ` (still ${o.status})`;
  }
  return {
    ...result,
    status: o.status,
    message: result.message + note,
    details: {
      ...result.details,
      threshold: {
        result_status: result.status,
        state: s.state,
        hard: s.hard,
        ...(o.streak ? { streak: o.streak } : {}),
        consecutive_failures: s.consecutive_failures,
        consecutive_successes: s.consecutive_successes,
        since: s.last_change,
      },
    },
  };
}

export interface RoundAdvance {
  /** The reports after thresholds (statuses, overall status and counts recomputed). */
  reports: VMHealthReport[];
  checks: CheckOutcome[];
  /** The next state of every check in the round (the input map is not modified). */
  states: StateMap;
}

/** Advance every check of a round against the previous states. Pure. */
export function advanceReports(reports: readonly VMHealthReport[], prev: StateMap, policy: PolicyLookup = () => undefined): RoundAdvance {
  const states: StateMap = new Map([...prev].map(([vm, m]) => [vm, new Map(m)]));
  const checks: CheckOutcome[] = [];
  const out = reports.map((r) => {
    const thresholded = r.checks.map((result) => {
      const p = policy(r.vm_name, result.name) ?? DEFAULT_THRESHOLDS;
      const outcome = advance(getState(prev, r.vm_name, result.name), result, p);
      setState(states, r.vm_name, result.name, outcome.next);
      checks.push({ vm: r.vm_name, check: result.name, result, outcome, policy: p });
      return thresholdedResult(result, outcome);
    });
    return buildVmReport(
      {
        vm_name: r.vm_name,
        timestamp: r.timestamp,
        duration_ms: r.duration_ms,
        ...(r.address ? { address: r.address } : {}),
        ...(r.domain_state ? { domain_state: r.domain_state } : {}),
        ...(r.reason ? { reason: r.reason } : {}),
      },
      thresholded,
    );
  });
  return { reports: out, checks, states };
}

// ───────────────────────────── the action guard ─────────────────────────────

export interface ActionGuardPolicy {
  /** Runs allowed within the window, per (vm, check, action). */
  max_runs: number;
  window_ms: number;
}

export const DEFAULT_ACTION_GUARD: ActionGuardPolicy = { max_runs: 3, window_ms: 10 * 60_000 };

export interface GuardDecision {
  allowed: boolean;
  /** Why an action was suppressed, for the report and the history. */
  reason?: string;
}

function humanWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/**
 * Stops an action that keeps firing (the flapping service restarted in a loop): at most `max_runs` runs of one
 * action of one check within `window_ms`. The runs come from the store, so the guard holds across processes.
 */
export class ActionGuard {
  readonly policy: ActionGuardPolicy;

  constructor(policy: Partial<ActionGuardPolicy> = {}) {
    this.policy = { ...DEFAULT_ACTION_GUARD, ...policy };
  }

  /** `runs`: times (ms) this action ran before (suppressed attempts excluded). */
  decide(kind: ActionKind, runs: readonly number[], now: number): GuardDecision {
    const { max_runs, window_ms } = this.policy;
    const recent = runs.filter((t) => t > now - window_ms && t <= now).sort((a, b) => a - b);
    if (recent.length < max_runs) return { allowed: true };
    const freeAt = recent[recent.length - max_runs]! + window_ms;
    return {
      allowed: false,
      reason:
        `${kind} suppressed: it already ran ${recent.length} times in the last ${humanWindow(window_ms)} ` +
        `(at most ${max_runs} per ${humanWindow(window_ms)}); it may run again after ${new Date(freeAt).toISOString()}`,
    };
  }
}
