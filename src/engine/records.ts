/**
 * What a stateful round records, as the engine names it: transitions, actions (planned, then finished) and the
 * round's input and outcome; and `RoundStore`, the part of the history store the engine uses. The store
 * (src/store) implements it and re-exports these types, so the engine never imports the store.
 */
import type { RoundAlerting } from '../alerting/runtime.js';
import type { AlertNotification, Silence } from '../alerting/types.js';
import type { PolicyLookup, ActionGuard, ActionKind, CheckOutcome } from './state.js';
import type { HealthStatus, VMHealthReport } from '../report.js';

export interface TransitionRow {
  ts: number;
  vm: string;
  check: string;
  /** null: the check's first evaluated result. */
  from: HealthStatus | null;
  to: HealthStatus;
  hard: boolean;
  message: string;
}

/** pending: claimed and about to run (or running); suppressed: stopped by the guard, never ran. */
export type ActionStatus = 'pending' | 'suppressed' | 'ok' | 'failed' | 'timeout' | 'error';

export interface ActionResult {
  status: Exclude<ActionStatus, 'pending' | 'suppressed'>;
  exit_code?: number;
  output?: string;
  duration_ms?: number;
  reason?: string;
  /** ms; defaults to now. */
  finished_ts?: number;
}

/** An action the state machine asked for this round: allowed (run it, then `finishAction`) or suppressed. */
export interface PlannedAction {
  /** The action row's id in the store. */
  id: number;
  vm: string;
  check: string;
  kind: ActionKind;
  command: string;
  allowed: boolean;
  /** Why it was suppressed. */
  reason?: string;
}

export interface RoundInput {
  /** The raw reports of one round (as `checkFleet` returns them). */
  reports: readonly VMHealthReport[];
  /** Thresholds and action commands per check; undefined → defaults, no actions. */
  policy?: PolicyLookup;
  /** Default: 3 runs per 10 minutes. */
  guard?: ActionGuard;
  /** ms; defaults to now (tests). */
  now?: number;
  /** Alerting configured: decide notifications and write them to the outbox in the round's transaction. */
  alerting?: RoundAlerting;
}

export interface RoundOutcome {
  /** The reports after thresholds: what to print and what the exit code comes from. */
  reports: VMHealthReport[];
  checks: CheckOutcome[];
  transitions: TransitionRow[];
  /** Actions to run now (`allowed`) and those the guard or a silence suppressed; each already has its row. */
  actions: PlannedAction[];
  /** Notifications written to the outbox this round (each once, whatever the number of providers). */
  notifications: AlertNotification[];
  /** alertKey(vm, check) → the silence that held it back this round. */
  silenced: Map<string, Silence>;
}

/** What a stateful round needs of the history store (src/store/core.ts implements it, with much else). */
export interface RoundStore {
  /**
   * Load, advance, and save the state of every check in the round, and record its results, transitions and
   * actions (claimed or suppressed by the guard), all in one write transaction with the state locked.
   */
  advanceRound(input: RoundInput): Promise<RoundOutcome>;
  /** Record how a claimed action ended. */
  finishAction(id: number, result: ActionResult): Promise<void>;
}
