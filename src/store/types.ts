/**
 * The history store: every result, the per-check threshold state, state transitions and actions.
 * One interface, two backends: SQLite (default, one file in the XDG data dir) and PostgreSQL (fleets beyond
 * one hypervisor). test/store/contract.ts runs the same suite against both.
 */
import type { ActionResult, ActionStatus, PlannedAction, RoundInput, RoundOutcome, RoundStore, TransitionRow } from '../engine/records.js';
import type { ActionKind, CheckState, StateMap } from '../engine/state.js';
import type { HealthStatus, VMHealthReport } from '../report.js';
import type { NewOutboxRow, Outbox, OutboxRow, OutboxStatus } from '../alerting/outbox.js';
import type { AlertStateMap, Silence } from '../alerting/types.js';
import type { RoundAlerting } from '../alerting/runtime.js';

export type { ActionResult, ActionStatus, PlannedAction, RoundAlerting, RoundInput, RoundOutcome, TransitionRow };

/** One recorded result. Reports are already redacted and their details capped; headers are never stored. */
export interface ResultRow {
  /** ms since the epoch: when the probe started. */
  ts: number;
  vm: string;
  check: string;
  type: string;
  /** The raw status the probe reported. */
  status: HealthStatus;
  /** The thresholded state after this result; null when recorded without state (recordRound without states). */
  state: HealthStatus | null;
  duration_ms: number;
  message: string;
  details: Record<string, unknown>;
}

export interface ActionRow {
  id: number;
  ts: number;
  vm: string;
  check: string;
  action: ActionKind;
  command: string;
  status: ActionStatus;
  /** Why it was suppressed, or what went wrong. */
  reason?: string;
  exit_code?: number;
  /** Capped output. */
  output?: string;
  duration_ms?: number;
  finished_ts?: number;
}

export type NewAction = Omit<ActionRow, 'id'>;

export interface PruneCounts {
  results: number;
  transitions: number;
  actions: number;
  states: number;
  /** Outbox rows (delivered, given up, or never delivered), expired silences and stale alert states. */
  alerting?: number;
}

/** The operations available inside `withStateLock`: all in one write transaction. */
export interface StoreTx {
  loadStates(vms: readonly string[]): Promise<StateMap>;
  saveStates(states: StateMap, updatedAt?: number): Promise<void>;
  insertResults(rows: readonly ResultRow[]): Promise<void>;
  insertTransitions(rows: readonly TransitionRow[]): Promise<void>;
  /** Start times of this action's runs (suppressed attempts excluded) since `sinceMs`. */
  actionRunsSince(vm: string, check: string, action: ActionKind, sinceMs: number): Promise<number[]>;
  insertAction(row: NewAction): Promise<number>;
  /** Alert states of these VMs' checks and of the VMs themselves (docs/alerting.md). */
  loadAlertStates(vms: readonly string[]): Promise<AlertStateMap>;
  saveAlertStates(states: AlertStateMap, updatedAt: number): Promise<void>;
  /** Silences in force at `now` (or starting later). */
  activeSilences(now: number): Promise<Silence[]>;
  /** Notifications to deliver: one row per provider; a row already there (same id) is left alone. */
  insertOutbox(rows: readonly NewOutboxRow[]): Promise<void>;
}

export interface OutboxQuery {
  status?: OutboxStatus;
  /** Newest first; default 100. */
  limit?: number;
}

export interface HistoryQuery {
  vm: string;
  /** ms since the epoch, inclusive. */
  sinceMs: number;
  /** ms, exclusive; default: no upper bound. */
  untilMs?: number;
  check?: string;
  /** At most this many rows, the oldest first; default: all. */
  limit?: number;
}

/** One check's current state as the status page shows it: a `check_states` row, times in ms. */
export interface CurrentCheckRow {
  vm: string;
  check: string;
  /** The thresholded state. */
  state: HealthStatus;
  hard: boolean;
  consecutive_failures: number;
  consecutive_successes: number;
  /** The raw status of the latest result. */
  last_result_status: HealthStatus;
  last_result_at: number;
  /** When `state` last changed. */
  last_change: number;
  last_message: string;
}

export interface BucketQuery {
  vm: string;
  check: string;
  /** ms, inclusive: the start of bucket 0. */
  sinceMs: number;
  /** ms, exclusive. */
  untilMs: number;
  bucketMs: number;
}

/** The results of one check with one raw status in one time bucket. */
export interface ResultBucket {
  /** floor((ts - sinceMs) / bucketMs). */
  bucket: number;
  status: HealthStatus;
  count: number;
  duration_ms_sum: number;
  /** The latest result of this status in the bucket: when, and what it said. */
  last_ts: number;
  last_message: string;
}

/**
 * What the status page (src/serve) reads besides `history` and `transitions`: kept to these three so that any
 * backend can answer them with one indexed query each.
 */
export interface StatusReads {
  /** Every check's current state (or one VM's), from the state table: never scans history. */
  currentChecks(vm?: string): Promise<CurrentCheckRow[]>;
  /** One check's results counted per time bucket and raw status (uptime bars, sparklines, badges). */
  resultBuckets(q: BucketQuery): Promise<ResultBucket[]>;
  /** A value that changes whenever a result or a state is recorded; cheap enough to poll every second. */
  changeMarker(): Promise<string>;
}

export interface HealthStore extends RoundStore, StatusReads {
  readonly kind: 'sqlite' | 'postgres';
  /** The file path, or the URL with its password hidden: safe to print. */
  readonly location: string;

  /**
   * Load, advance, and save the state of every check in the round, and record its results, transitions and
   * actions (claimed or suppressed by the guard) — all in one write transaction with the state locked, so two
   * overlapping runs neither lose an update nor both fire the same action.
   */
  advanceRound(input: RoundInput): Promise<RoundOutcome>;
  /**
   * Run `fn` in one write transaction holding the state lock of these VMs (SQLite: the whole database).
   * Keep `fn` short: it blocks other writers.
   */
  withStateLock<T>(vms: readonly string[], fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Record results (state column from `states` when given) and save those states: one transaction. */
  recordRound(reports: readonly VMHealthReport[], states?: StateMap): Promise<void>;
  loadStates(vms: readonly string[]): Promise<StateMap>;
  saveStates(states: StateMap): Promise<void>;
  recordAction(row: NewAction): Promise<number>;
  finishAction(id: number, result: ActionResult): Promise<void>;

  history(q: HistoryQuery): Promise<ResultRow[]>;
  transitions(q: HistoryQuery): Promise<TransitionRow[]>;
  actions(q: HistoryQuery): Promise<ActionRow[]>;
  /** The VMs with any recorded result (for "no history for VM x; known: …"). */
  knownVms(): Promise<string[]>;

  /** The alerting state of these VMs' alerts (firing, flapping), for the status page. */
  alertStates(vms: readonly string[]): Promise<AlertStateMap>;
  /** Maintenance silences (docs/alerting.md). */
  addSilence(s: Silence): Promise<void>;
  /** Silences not yet ended at `now`, or every one with `includeEnded`; by end time. */
  silences(now: number, includeEnded?: boolean): Promise<Silence[]>;
  /** False when there is no silence with this id. */
  removeSilence(id: string): Promise<boolean>;
  /** The alert outbox, for the deliverer (leases make concurrent runs deliver once). */
  readonly outbox: Outbox;
  outboxRows(q?: OutboxQuery): Promise<OutboxRow[]>;

  /** Delete results, transitions and actions older than `olderThanMs` (and states not updated since). */
  prune(olderThanMs: number): Promise<PruneCounts>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Default 30 days; 0 disables automatic pruning. */
  retentionMs?: number;
  /** How long a writer waits for another (SQLite busy_timeout, PostgreSQL lock_timeout); default 5 s. */
  lockTimeoutMs?: number;
}

export const DEFAULT_RETENTION_MS = 30 * 86_400_000;
export const DEFAULT_LOCK_TIMEOUT_MS = 5000;
/** Automatic pruning runs at most this often per process and store. */
export const AUTO_PRUNE_EVERY_MS = 3_600_000;

export type { CheckState };
