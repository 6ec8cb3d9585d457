/**
 * A round with memory: advance each check's state in the store (thresholds, transitions), then run
 * the actions the state machine asked for, once, on hard transitions, and record their outcome.
 */
import { printable } from '../util/printable.js';
import type { Action } from '../config/schema.js';
import type { ResolvedVm } from '../config/resolve.js';
import type { FleetReport } from '../report.js';
import type { ActionResult, HealthStore, PlannedAction, TransitionRow } from '../store/types.js';
import type { SshPool } from '../transport/ssh-pool.js';
import { runAction } from './actions.js';
import { buildFleetReport } from './aggregate.js';
import { sshTargetFor } from './check-vm.js';
import type { FleetRound } from './fleet.js';
import { policyFromVms } from './state.js';

export interface ActionOutcome extends PlannedAction {
  /** Absent for a suppressed action. */
  result?: ActionResult;
}

export interface StatefulRound {
  /** The thresholded report: what to print and what the exit code comes from. */
  report: FleetReport;
  transitions: TransitionRow[];
  actions: ActionOutcome[];
}

/** `{{status}}` of an action: the state its transition went to. */
export function actionStatus(kind: 'on_failure' | 'on_recovery'): 'UNHEALTHY' | 'HEALTHY' {
  return kind === 'on_failure' ? 'UNHEALTHY' : 'HEALTHY';
}

function actionSpec(vms: readonly ResolvedVm[], a: PlannedAction): Action | undefined {
  const check = vms.find((v) => v.name === a.vm)?.checks.find((c) => c.name === a.check);
  return check?.[a.kind];
}

export async function advanceWithStore(store: HealthStore, round: FleetRound, pool: SshPool, signal: AbortSignal): Promise<StatefulRound> {
  const out = await store.advanceRound({ reports: round.report.reports, policy: policyFromVms(round.vms) });
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
  return { report, transitions: out.transitions, actions };
}

/** One line per action for people: what ran, where, and how it ended (or why it was held back). */
export function describeAction(a: ActionOutcome): string {
  const vm = printable(a.vm);
  if (!a.result) return `${vm}/${a.check}: ${a.kind} suppressed: ${a.reason ?? 'guard'}`;
  const r = a.result;
  const how = r.status === 'ok' ? 'ok' : r.status === 'failed' ? `failed (exit ${r.exit_code ?? '?'})` : `${r.status}${r.reason ? `: ${r.reason}` : ''}`;
  return `${vm}/${a.check}: ${a.kind} "${a.command}" ${how} in ${Math.round(r.duration_ms ?? 0)}ms`;
}
