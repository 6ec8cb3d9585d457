/**
 * A round with memory: advance each check's state in the store (thresholds, transitions), then run
 * the actions the state machine asked for, once, on hard transitions, and record their outcome.
 */
import { printable } from '../util/printable.js';
import type { Action } from '../config/schema.js';
import type { ResolvedVm } from '../config/resolve.js';
import type { FleetReport } from '../report.js';
import type { AlertingRuntime } from '../alerting/runtime.js';
import type { AlertNotification } from '../alerting/types.js';
import type { ActionResult, PlannedAction, RoundStore, TransitionRow } from './records.js';
import type { SshPool } from '../transport/ssh-pool.js';
import { runAction } from './actions.js';
import { buildFleetReport } from './aggregate.js';
import { sshTargetFor } from './check-vm.js';
import type { FleetRound } from './fleet.js';
import { policyFromVms, type ActionKind } from './state.js';

export interface ActionOutcome extends PlannedAction {
  /** Absent for a suppressed action. */
  result?: ActionResult;
}

export interface StatefulRound {
  /** The thresholded report: what to print and what the exit code comes from. */
  report: FleetReport;
  transitions: TransitionRow[];
  actions: ActionOutcome[];
  /** Written to the outbox in the round's transaction; delivered afterwards (src/alerting/delivery.ts). */
  notifications: AlertNotification[];
}

/** `{{status}}` of an action: the state its transition went to. */
export function actionStatus(kind: 'on_failure' | 'on_recovery'): 'UNHEALTHY' | 'HEALTHY' {
  return kind === 'on_failure' ? 'UNHEALTHY' : 'HEALTHY';
}

function actionSpec(vms: readonly ResolvedVm[], a: PlannedAction): Action | undefined {
  const check = vms.find((v) => v.name === a.vm)?.checks.find((c) => c.name === a.check);
  return check?.[a.kind];
}

export async function advanceWithStore(
  store: RoundStore,
  round: FleetRound,
  pool: SshPool,
  signal: AbortSignal,
  alerting?: AlertingRuntime,
): Promise<StatefulRound> {
  const out = await store.advanceRound({
    reports: round.report.reports,
    policy: policyFromVms(round.vms),
    ...(alerting ? { alerting: alerting.forVms(round.vms) } : {}),
  });
  const report = buildFleetReport(out.reports, new Date(round.report.summary.timestamp), round.report.summary.duration_ms);
  const actions = await Promise.all(
    out.actions.map(async (a): Promise<ActionOutcome> => {
      if (!a.allowed) return a;
      const spec = actionSpec(round.vms, a);
      const vm = round.vms.find((v) => v.name === a.vm);
      const address = round.targets.find((t) => t.name === a.vm)?.address;
      let result: ActionResult;
      if (!spec || !vm) result = { status: 'error', reason: `no ${a.kind} action configured for ${a.vm}/${a.check}`, duration_ms: 0 };
      else {
        const fired = { vm: a.vm, check: a.check, status: actionStatus(a.kind) };
        result = await runAction(spec, { ...fired, ...(address ? { address, session: pool.session(sshTargetFor(vm, address)) } : {}) }, signal);
      }
      await store.finishAction(a.id, result);
      return { ...a, result };
    }),
  );
  return { report, transitions: out.transitions, actions, notifications: out.notifications };
}

/** An action as the outputs show it: what ran (or was held back), where, and how it ended. */
export interface ActionSummary {
  vm: string;
  check: string;
  kind: ActionKind;
  command: string;
  /** `suppressed`: the guard held it back; it never ran. */
  status: ActionResult['status'] | 'suppressed';
  exit_code?: number;
  /** Whole ms. */
  duration_ms?: number;
  /** Why it was suppressed, or what went wrong. */
  reason?: string;
  output?: string;
}

export function summarizeAction(a: ActionOutcome): ActionSummary {
  const r = a.result;
  const reason = r?.reason ?? a.reason;
  return {
    vm: a.vm,
    check: a.check,
    kind: a.kind,
    command: a.command,
    status: r?.status ?? 'suppressed',
    ...(r?.exit_code !== undefined ? { exit_code: r.exit_code } : {}),
    ...(r?.duration_ms !== undefined ? { duration_ms: Math.round(r.duration_ms) } : {}),
    ...(reason ? { reason } : {}),
    ...(r?.output ? { output: r.output } : {}),
  };
}

/** One line per action for people: what ran, where, and how it ended (or why it was held back). */
export function describeAction(a: ActionSummary): string {
  const vm = printable(a.vm);
  if (a.status === 'suppressed') return `${vm}/${a.check}: ${a.kind} suppressed: ${a.reason ?? 'guard'}`;
  const how = a.status === 'ok' ? 'ok' : a.status === 'failed' ? `failed (exit ${a.exit_code ?? '?'})` : `${a.status}${a.reason ? `: ${a.reason}` : ''}`;
  return `${vm}/${a.check}: ${a.kind} "${a.command}" ${how} in ${Math.round(a.duration_ms ?? 0)}ms`;
}
