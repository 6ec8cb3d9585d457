/** A round in the store: turning reports into rows, and the read-advance-write of a round over a StoreTx (core.ts runs it). */
import { ActionGuard, advanceReports, setState, type StateMap } from '../engine/state.js';
import type { CheckResult, HealthStatus, VMHealthReport } from '../report.js';
import { decideAlerts } from '../alerting/decide.js';
import { alertInputs } from '../alerting/inputs.js';
import { outboxRows } from '../alerting/outbox.js';
import { activeSilence, silenceNote } from '../alerting/silences.js';
import { alertKey, type AlertNotification, type Silence } from '../alerting/types.js';
import { type PlannedAction, type ResultRow, type RoundInput, type RoundOutcome, type StoreTx, type TransitionRow } from './types.js';

/** Largest details object stored per result, as JSON characters; probes cap their own output well below this. */
export const MAX_STORED_DETAILS = 16_384;

/**
 * Details as stored: reports arrive redacted and capped; as a second line of defence no headers are ever
 * stored (they are where credentials travel), and an oversized object keeps only its scalar fields.
 */
export function storableDetails(details: Record<string, unknown>): Record<string, unknown> {
  const kept = Object.fromEntries(Object.entries(details).filter(([k]) => !/headers?$/i.test(k)));
  if (JSON.stringify(kept).length <= MAX_STORED_DETAILS) return kept;
  const scalars = Object.fromEntries(
    Object.entries(kept).filter(([, v]) => v === null || (typeof v !== 'object' && (typeof v !== 'string' || v.length <= 1024))),
  );
  return { ...scalars, details_truncated: true };
}

/** One result as stored, with the thresholded state it led to (null when recorded without state). */
export function resultRow(vm: string, c: CheckResult, state: HealthStatus | null): ResultRow {
  return {
    ts: Date.parse(c.timestamp),
    vm,
    check: c.name,
    type: c.type,
    status: c.status,
    state,
    duration_ms: c.duration_ms,
    message: c.message,
    details: storableDetails(c.details),
  };
}

export function resultRows(reports: readonly VMHealthReport[], states?: StateMap): ResultRow[] {
  return reports.flatMap((r) => r.checks.map((c) => resultRow(r.vm_name, c, states?.get(r.vm_name)?.get(c.name)?.state ?? null)));
}

/** The body of `advanceRound`, run inside the store's state lock. */
export async function advanceRoundIn(tx: StoreTx, input: RoundInput): Promise<RoundOutcome> {
  const now = input.now ?? Date.now();
  const guard = input.guard ?? new ActionGuard();
  const vms = [...new Set(input.reports.map((r) => r.vm_name))];
  const prev = await tx.loadStates(vms);
  const adv = advanceReports(input.reports, prev, input.policy);

  // Alerting, in this same transaction: a notification exists exactly when its transition does.
  const silences = await tx.activeSilences(now);
  let notifications: AlertNotification[] = [];
  let silenced = new Map<string, Silence>();
  if (input.alerting) {
    const a = input.alerting;
    const inputs = alertInputs(input.reports, adv.checks, a.policy);
    const decided = decideAlerts({ ...inputs, prev: await tx.loadAlertStates(vms), silences, settings: a.settings, now });
    await tx.saveAlertStates(decided.states, now);
    await tx.insertOutbox(outboxRows(decided.notifications, a.routes, a.providers, now));
    notifications = decided.notifications;
    silenced = decided.silenced;
  } else if (silences.length > 0) {
    for (const c of adv.checks) {
      const s = activeSilence(silences, c.vm, c.check, now);
      if (s) silenced.set(alertKey(c.vm, c.check), s);
    }
  }
  const silenceOf = (vm: string, check: string) => silenced.get(alertKey(vm, check));

  const touched: StateMap = new Map();
  const results: ResultRow[] = [];
  const transitions: TransitionRow[] = [];
  const actions: PlannedAction[] = [];
  for (const c of adv.checks) {
    const o = c.outcome;
    setState(touched, c.vm, c.check, o.next);
    const silence = silenceOf(c.vm, c.check);
    // Silenced checks still run and are recorded, marked; their actions are held back.
    const result = silence ? { ...c.result, details: { ...c.result.details, silenced: silenceNote(silence) } } : c.result;
    results.push(resultRow(c.vm, result, o.next.state));
    if (o.transition) {
      const t = o.transition;
      transitions.push({ ts: Date.parse(t.at), vm: c.vm, check: c.check, from: t.from, to: t.to, hard: t.hard, message: t.message });
    }
    const command = o.action ? c.policy[o.action] : undefined;
    if (o.action && command) {
      const runs = silence ? [] : await tx.actionRunsSince(c.vm, c.check, o.action, now - guard.policy.window_ms);
      const decision = silence
        ? { allowed: false, reason: `${o.action} suppressed: silenced until ${new Date(silence.ends_at).toISOString()} (${silence.id}: ${silence.reason})` }
        : guard.decide(o.action, runs, now);
      const id = await tx.insertAction({
        ts: now,
        vm: c.vm,
        check: c.check,
        action: o.action,
        command,
        status: decision.allowed ? 'pending' : 'suppressed',
        ...(decision.reason ? { reason: decision.reason } : {}),
      });
      actions.push({
        id,
        vm: c.vm,
        check: c.check,
        kind: o.action,
        command,
        allowed: decision.allowed,
        ...(decision.reason ? { reason: decision.reason } : {}),
      });
    }
  }
  await tx.saveStates(touched, now);
  await tx.insertResults(results);
  await tx.insertTransitions(transitions);
  const reports = silenced.size === 0 ? adv.reports : adv.reports.map((r) => ({
    ...r,
    checks: r.checks.map((c) => {
      const s = silenceOf(r.vm_name, c.name);
      return s ? { ...c, details: { ...c.details, silenced: silenceNote(s) } } : c;
    }),
  }));
  return { reports, checks: adv.checks, transitions, actions, notifications, silenced };
}
