/**
 * The history store's semantics, written once over a `Dialect` (dialect.ts): the tables as the core sees them,
 * the state read-advance-write of a round, recorded results, transitions and actions, the history queries and
 * retention. sqlite.ts and postgres.ts only connect, migrate, lock and say how values are written.
 */
import type { ActionKind, CheckState, StateMap } from '../engine/state.js';
import { setState } from '../engine/state.js';
import type { HealthStatus, VMHealthReport } from '../report.js';
import type { Columns, Dialect, SqlConn } from './dialect.js';
import { alertQueries, alertTx, SqlOutbox } from './alert-queries.js';
import { decodeRow, names, selectList, upsertTail, type Row } from './columns.js';
import { changeMarker, currentChecks, resultBuckets } from './status-reads.js';
import { ACTION, ACTION_READ, RESULT, STATE, TRANSITION } from './tables.js';
import { advanceRoundIn, resultRows } from './round.js';
import {
  AUTO_PRUNE_EVERY_MS,
  DEFAULT_RETENTION_MS,
  type ActionResult,
  type BucketQuery,
  type CurrentCheckRow,
  type ResultBucket,
  type ActionRow,
  type HealthStore,
  type HistoryQuery,
  type NewAction,
  type OpenStoreOptions,
  type PruneCounts,
  type ResultRow,
  type RoundInput,
  type RoundOutcome,
  type StoreTx,
  type TransitionRow,
  type OutboxQuery,
} from './types.js';
import type { Outbox, OutboxRow } from '../alerting/outbox.js';
import type { AlertStateMap, Silence } from '../alerting/types.js';

const iso = (ms: unknown) => new Date(ms as number).toISOString();

function toState(r: Row<typeof STATE>): CheckState {
  return {
    state: r.state as HealthStatus,
    hard: r.hard as boolean,
    consecutive_failures: r.consecutive_failures as number,
    consecutive_successes: r.consecutive_successes as number,
    last_result_status: r.last_result_status as HealthStatus,
    last_result_at: iso(r.last_result_at),
    last_change: iso(r.last_change),
    last_message: r.last_message as string,
  };
}

function toResult(r: Row<typeof RESULT>): ResultRow {
  return {
    ts: r.ts as number,
    vm: r.vm as string,
    check: r.check_name as string,
    type: r.type as string,
    status: r.status as HealthStatus,
    state: r.state as HealthStatus | null,
    duration_ms: r.duration_ms as number,
    message: r.message as string,
    details: r.details as Record<string, unknown>,
  };
}

function toTransition(r: Row<typeof TRANSITION>): TransitionRow {
  return {
    ts: r.ts as number,
    vm: r.vm as string,
    check: r.check_name as string,
    from: r.from_state as HealthStatus | null,
    to: r.to_state as HealthStatus,
    hard: r.hard as boolean,
    message: r.message as string,
  };
}

function toAction(r: Row<typeof ACTION_READ>): ActionRow {
  const optional = { reason: r.reason, exit_code: r.exit_code, output: r.output, duration_ms: r.duration_ms, finished_ts: r.finished_ts };
  return {
    id: r.id as number,
    ts: r.ts as number,
    vm: r.vm as string,
    check: r.check_name as string,
    action: r.action as ActionKind,
    command: r.command as string,
    status: r.status as ActionRow['status'],
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== null)),
  };
}

/** The operations of one write transaction (`withStateLock`), on the dialect's connection. */
function txOn(d: Dialect, c: SqlConn, lockRows: boolean): StoreTx {
  const stateCols = selectList(d, 'check_states', STATE);
  const actionCols = names(d, 'actions', ACTION);
  return {
    async loadStates(vms) {
      const states: StateMap = new Map();
      if (vms.length === 0) return states;
      const list = d.inList('vm', vms);
      const rows = await c.all(
        `SELECT ${stateCols} FROM check_states WHERE ${list.sql} ORDER BY vm, check_name${lockRows ? d.forUpdate : ''}`,
        [list.param],
      );
      for (const raw of rows) {
        const r = decodeRow(d, STATE, raw);
        setState(states, r.vm as string, r.check_name as string, toState(r));
      }
      return states;
    },
    async saveStates(states, updatedAt = Date.now()) {
      const rows: unknown[][] = [];
      for (const [vm, checks] of states) {
        for (const [check, s] of checks) {
          rows.push([
            vm,
            check,
            s.state,
            s.hard,
            s.consecutive_failures,
            s.consecutive_successes,
            s.last_result_status,
            Date.parse(s.last_result_at),
            Date.parse(s.last_change),
            s.last_message,
            updatedAt,
          ]);
        }
      }
      if (rows.length > 0) await d.insertMany(c, 'check_states', STATE, rows, upsertTail(d, 'check_states', STATE, ['vm', 'check_name']));
    },
    async insertResults(rows) {
      if (rows.length === 0) return;
      await d.insertMany(
        c,
        'results',
        RESULT,
        rows.map((r) => [r.ts, r.vm, r.check, r.type, r.status, r.state, r.duration_ms, r.message, r.details]),
      );
    },
    async insertTransitions(rows) {
      if (rows.length === 0) return;
      await d.insertMany(
        c,
        'transitions',
        TRANSITION,
        rows.map((r) => [r.ts, r.vm, r.check, r.from, r.to, r.hard, r.message]),
      );
    },
    async actionRunsSince(vm, check, action, sinceMs) {
      const rows = await c.all<{ ts: unknown }>(
        `SELECT ${d.select('ms', 'ts')} AS ts FROM actions
         WHERE vm = ? AND check_name = ? AND action = ? AND ts >= ${d.bind('ms')} AND status <> 'suppressed' ORDER BY ts`,
        [vm, check, action, d.encode('ms', sinceMs)],
      );
      return rows.map((r) => d.decode('ms', r.ts) as number);
    },
    async insertAction(row) {
      const values = [row.ts, row.vm, row.check, row.action, row.command, row.status, row.reason, row.exit_code, row.output, row.duration_ms, row.finished_ts];
      const types = Object.values(ACTION);
      const rows = await c.all<{ id: unknown }>(
        `INSERT INTO actions (${actionCols.join(', ')}) VALUES (${types.map((t) => d.bind(t)).join(', ')}) RETURNING id`,
        values.map((v, i) => d.encode(types[i]!, v ?? null)),
      );
      return d.decode('id', rows[0]!.id) as number;
    },
    ...alertTx(d, c),
  };
}

/** Retention applied at most once an hour per process and store location. */
const lastPrune = new Map<string, number>();

/** A HealthStore on any dialect: every method is the same semantics on SQLite and PostgreSQL. */
export class SqlStore implements HealthStore {
  readonly kind: 'sqlite' | 'postgres';
  readonly location: string;
  protected readonly dialect: Dialect;
  private readonly retentionMs: number;
  readonly outbox: Outbox;
  private readonly alerting: ReturnType<typeof alertQueries>;

  constructor(dialect: Dialect, options: OpenStoreOptions = {}) {
    this.dialect = dialect;
    this.kind = dialect.kind;
    this.location = dialect.location;
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.outbox = new SqlOutbox(dialect);
    this.alerting = alertQueries(dialect);
  }

  addSilence(s: Silence): Promise<void> {
    return this.alerting.addSilence(s);
  }

  silences(now: number, includeEnded?: boolean): Promise<Silence[]> {
    return this.alerting.silences(now, includeEnded);
  }

  removeSilence(id: string): Promise<boolean> {
    return this.alerting.removeSilence(id);
  }

  outboxRows(q?: OutboxQuery): Promise<OutboxRow[]> {
    return this.alerting.outboxRows(q);
  }

  withStateLock<T>(vms: readonly string[], fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.dialect.transaction(vms, (c) => fn(txOn(this.dialect, c, true)));
  }

  async advanceRound(input: RoundInput): Promise<RoundOutcome> {
    const vms = [...new Set(input.reports.map((r) => r.vm_name))];
    const out = await this.withStateLock(vms, (tx) => advanceRoundIn(tx, input));
    await this.autoPrune(input.now);
    return out;
  }

  async recordRound(reports: readonly VMHealthReport[], states?: StateMap): Promise<void> {
    await this.withStateLock(states ? [...states.keys()] : [], async (tx) => {
      if (states) await tx.saveStates(states);
      await tx.insertResults(resultRows(reports, states));
    });
    await this.autoPrune();
  }

  loadStates(vms: readonly string[]): Promise<StateMap> {
    return this.dialect.session((c) => txOn(this.dialect, c, false).loadStates(vms));
  }

  saveStates(states: StateMap): Promise<void> {
    return this.withStateLock([...states.keys()], (tx) => tx.saveStates(states));
  }

  recordAction(row: NewAction): Promise<number> {
    return this.dialect.session((c) => txOn(this.dialect, c, false).insertAction(row));
  }

  async finishAction(id: number, r: ActionResult): Promise<void> {
    const d = this.dialect;
    await d.session((c) =>
      c.run(
        `UPDATE actions SET status = ?, exit_code = ?, output = ?, duration_ms = ?, reason = coalesce(?, reason),
           ${d.column('actions', 'finished_ts')} = ${d.bind('ms')} WHERE id = ?`,
        [
          d.encode('text', r.status),
          r.exit_code ?? null,
          r.output !== undefined ? d.encode('text', r.output) : null,
          r.duration_ms ?? null,
          r.reason !== undefined ? d.encode('text', r.reason) : null,
          d.encode('ms', r.finished_ts ?? Date.now()),
          id,
        ],
      ),
    );
  }

  /** Rows of one VM in a time range, optionally of one check, oldest first. */
  private async query<C extends Columns>(table: string, cols: C, q: HistoryQuery): Promise<Row<C>[]> {
    const d = this.dialect;
    const params: unknown[] = [q.vm, d.encode('ms', q.sinceMs)];
    let where = `vm = ? AND ts >= ${d.bind('ms')}`;
    if (q.untilMs !== undefined) {
      where += ` AND ts < ${d.bind('ms')}`;
      params.push(d.encode('ms', q.untilMs));
    }
    if (q.check !== undefined) {
      where += ' AND check_name = ?';
      params.push(q.check);
    }
    let limit = '';
    if (q.limit !== undefined) {
      limit = ' LIMIT ?';
      params.push(Math.max(0, Math.floor(q.limit)));
    }
    const rows = await d.session((c) => c.all(`SELECT ${selectList(d, table, cols)} FROM ${table} WHERE ${where} ORDER BY ts, id${limit}`, params));
    return rows.map((r) => decodeRow(d, cols, r));
  }

  async history(q: HistoryQuery): Promise<ResultRow[]> {
    return (await this.query('results', RESULT, q)).map(toResult);
  }

  async transitions(q: HistoryQuery): Promise<TransitionRow[]> {
    return (await this.query('transitions', TRANSITION, q)).map(toTransition);
  }

  async actions(q: HistoryQuery): Promise<ActionRow[]> {
    return (await this.query('actions', ACTION_READ, q)).map(toAction);
  }

  /** The alerting state of these VMs' alerts (firing, flapping), read outside any round. */
  alertStates(vms: readonly string[]): Promise<AlertStateMap> {
    return this.dialect.session((c) => alertTx(this.dialect, c).loadAlertStates(vms));
  }

  currentChecks(vm?: string): Promise<CurrentCheckRow[]> {
    return currentChecks(this.dialect, vm);
  }

  resultBuckets(q: BucketQuery): Promise<ResultBucket[]> {
    return resultBuckets(this.dialect, q);
  }

  changeMarker(): Promise<string> {
    return changeMarker(this.dialect);
  }

  async knownVms(): Promise<string[]> {
    const rows = await this.dialect.session((c) => c.all<{ vm: string }>('SELECT vm FROM check_states UNION SELECT vm FROM results ORDER BY vm'));
    return rows.map((r) => r.vm);
  }

  prune(olderThanMs: number): Promise<PruneCounts> {
    const d = this.dialect;
    const t = [d.encode('ms', olderThanMs)];
    return d.transaction([], async (c) => ({
      results: await c.run(`DELETE FROM results WHERE ts < ${d.bind('ms')}`, t),
      transitions: await c.run(`DELETE FROM transitions WHERE ts < ${d.bind('ms')}`, t),
      actions: await c.run(`DELETE FROM actions WHERE ts < ${d.bind('ms')}`, t),
      states: await c.run(`DELETE FROM check_states WHERE updated_at < ${d.bind('ms')}`, t),
      alerting: await this.alerting.prune(c, olderThanMs),
    }));
  }

  /** Retention, at most once an hour per process and store; the first write of a process prunes (after its insert). */
  private async autoPrune(now = Date.now()): Promise<void> {
    if (this.retentionMs <= 0) return;
    const last = lastPrune.get(this.location);
    if (last !== undefined && now - last < AUTO_PRUNE_EVERY_MS) return;
    lastPrune.set(this.location, now);
    await this.prune(now - this.retentionMs);
  }

  close(): Promise<void> {
    return this.dialect.close();
  }
}
