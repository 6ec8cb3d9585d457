/**
 * Thresholds for the watch: a VM's results become its thresholded report, transitions and actions, either in the
 * history store (one transaction, shared with cron runs of `health check`) or, with --no-store, in memory.
 */
import type { MemoryAlerts } from '../../alerting/memory.js';
import type { AlertingRuntime } from '../../alerting/runtime.js';
import type { AlertNotification } from '../../alerting/types.js';
import type { Action } from '../../config/schema.js';
import type { ResolvedVm } from '../../config/resolve.js';
import type { VmTarget } from '../../inventory/discover.js';
import type { VMHealthReport } from '../../report.js';
import type { ActionResult, RoundStore, TransitionRow } from '../records.js';
import type { SshPool } from '../../transport/ssh-pool.js';
import { runAction } from '../actions.js';
import { buildFleetReport } from '../aggregate.js';
import { sshTargetFor } from '../check-vm.js';
import { actionStatus, advanceWithStore, type ActionOutcome } from '../stateful.js';
import { ActionGuard, advanceReports, policyFromVms, stateKey, type ActionKind, type PolicyLookup, type StateMap } from '../state.js';

/** What one VM's results became: the thresholded report, its transitions, the actions run or held back. */
export interface Advanced {
  report: VMHealthReport;
  transitions: TransitionRow[];
  actions: ActionOutcome[];
  /** Queued for the alerting providers (the store's outbox, or memory's). */
  notifications?: AlertNotification[];
}

/** Thresholds one VM's raw results (only the checks in `vm.checks`), running the actions they call for. */
export type Advancer = (vm: ResolvedVm, target: VmTarget, raw: VMHealthReport, signal: AbortSignal) => Promise<Advanced>;

/** Runs an action of a VM's check (on the host, or in the guest over its connection). */
export type ActionRunner = (vm: ResolvedVm, target: VmTarget, check: string, kind: ActionKind, spec: Action, signal: AbortSignal) => Promise<ActionResult>;

export function poolActionRunner(pool: SshPool): ActionRunner {
  return (vm, target, check, kind, spec, signal) => {
    const address = target.address;
    const fired = { vm: vm.name, check, status: actionStatus(kind) };
    return runAction(spec, { ...fired, ...(address ? { address, session: pool.session(sshTargetFor(vm, address)) } : {}) }, signal);
  };
}

/** With a store: the store's one-transaction advance, then the actions it claimed (src/engine/stateful.ts). */
export function storeAdvancer(store: RoundStore, pool: SshPool, alerting?: AlertingRuntime): Advancer {
  return async (vm, target, raw, signal) => {
    const round = { report: buildFleetReport([raw], new Date(raw.timestamp), raw.duration_ms), vms: [vm], targets: [target] };
    const s = await advanceWithStore(store, round, pool, signal, alerting);
    return { report: s.report.reports[0]!, transitions: s.transitions, actions: s.actions, notifications: s.notifications };
  };
}

/**
 * `--no-store`: the same state machine (`advanceReports`) and the same `ActionGuard` as the store uses, kept in
 * memory: one state per VM and check, and per (VM, check, action) at most `max_runs` run times for the guard.
 */
export class MemoryState {
  readonly #states: StateMap = new Map();
  readonly #runs = new Map<string, number[]>();
  /** Each VM's thresholds and actions, derived once per resolved VM (the watch passes the same object every round). */
  readonly #policies = new WeakMap<ResolvedVm, PolicyLookup>();
  #seq = 0;

  constructor(
    private readonly act: ActionRunner,
    private readonly now: () => number = Date.now,
    readonly guard = new ActionGuard(),
    private readonly alerts?: MemoryAlerts,
  ) {}

  readonly advance: Advancer = async (vm, target, raw, signal) => {
    const prev: StateMap = new Map();
    const mine = this.#states.get(vm.name);
    if (mine) prev.set(vm.name, mine);
    let policy = this.#policies.get(vm);
    if (!policy) this.#policies.set(vm, (policy = policyFromVms([vm])));
    const adv = advanceReports([raw], prev, policy);
    const next = adv.states.get(vm.name);
    if (next) this.#states.set(vm.name, next);
    const notifications = this.alerts?.round([raw], adv.checks, [vm]) ?? [];
    const transitions: TransitionRow[] = [];
    const actions: ActionOutcome[] = [];
    for (const c of adv.checks) {
      const t = c.outcome.transition;
      if (t) transitions.push({ ts: Date.parse(t.at), vm: c.vm, check: c.check, from: t.from, to: t.to, hard: t.hard, message: t.message });
      const kind = c.outcome.action;
      const command = kind ? c.policy[kind] : undefined;
      if (!kind || !command) continue;
      const now = this.now();
      const key = `${stateKey(c.vm, c.check)}\u0000${kind}`;
      const runs = (this.#runs.get(key) ?? []).filter((at) => at > now - this.guard.policy.window_ms);
      const decision = this.guard.decide(kind, runs, now);
      const planned = { id: ++this.#seq, vm: c.vm, check: c.check, kind, command, allowed: decision.allowed, ...(decision.reason ? { reason: decision.reason } : {}) };
      if (!decision.allowed) {
        actions.push(planned);
        continue;
      }
      runs.push(now);
      this.#runs.set(key, runs.slice(-this.guard.policy.max_runs));
      const spec = vm.checks.find((k) => k.name === c.check)?.[kind];
      const result = spec
        ? await this.act(vm, target, c.check, kind, spec, signal)
        : { status: 'error' as const, reason: `no ${kind} action configured for ${c.vm}/${c.check}`, duration_ms: 0 };
      actions.push({ ...planned, result });
    }
    return { report: adv.reports[0]!, transitions, actions, notifications };
  };

  /** A VM left the watch. */
  forget(vm: string): void {
    this.#states.delete(vm);
    this.alerts?.forget(vm);
    for (const key of [...this.#runs.keys()]) if (key.startsWith(`${vm}\u0000`)) this.#runs.delete(key);
  }
}
