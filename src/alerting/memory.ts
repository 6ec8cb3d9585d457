/**
 * `health watch --no-store`: the same decisions as the store makes (decide.ts), with alert states and the outbox in
 * memory. No silences (they live in the store), and nothing survives the process.
 */
import type { CheckOutcome } from '../engine/state.js';
import type { VMHealthReport } from '../report.js';
import { decideAlerts } from './decide.js';
import { alertInputs } from './inputs.js';
import { MemoryOutbox, outboxRows } from './outbox.js';
import type { AlertingRuntime } from './runtime.js';
import type { AlertNotification, AlertStateMap } from './types.js';

export class MemoryAlerts {
  readonly outbox = new MemoryOutbox();
  readonly #states: AlertStateMap = new Map();

  constructor(
    private readonly runtime: AlertingRuntime,
    private readonly now: () => number = Date.now,
  ) {}

  /** One VM's round: decide, remember, queue. Returns what was queued (each notification once). */
  round(raw: readonly VMHealthReport[], checks: readonly CheckOutcome[], vms: Parameters<AlertingRuntime['forVms']>[0]): AlertNotification[] {
    const a = this.runtime.forVms(vms);
    const now = this.now();
    const d = decideAlerts({ ...alertInputs(raw, checks, a.policy), prev: this.#states, silences: [], settings: a.settings, now });
    for (const [k, s] of d.states) this.#states.set(k, s);
    this.outbox.compact();
    this.outbox.insert(outboxRows(d.notifications, a.routes, a.providers, now));
    return d.notifications;
  }

  /** A VM left the watch. */
  forget(vm: string): void {
    for (const key of [...this.#states.keys()]) if (key.startsWith(`${vm}\u0000`)) this.#states.delete(key);
  }
}
