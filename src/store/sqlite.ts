/**
 * The default store: one SQLite file (better-sqlite3 12), in WAL mode.
 *
 * Durability and kill -9: in WAL mode a transaction is committed once its frames (with the commit frame) are
 * written to the -wal file; `synchronous=NORMAL` skips the fsync at each commit but the write() has happened,
 * so the OS page cache holds it and a killed process (kill -9, OOM, Ctrl-C) loses nothing committed and never
 * leaves a half-written transaction: on the next open SQLite ignores WAL frames after the last commit frame.
 * Only an OS crash or power loss can lose the last few transactions, never corrupt the file. That is the right
 * trade for health history (FULL would fsync on every round).
 *
 * Concurrency: every write is one `BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock at the
 * start, so a read-advance-write of state cannot interleave with another process's; a second writer waits up to
 * `busy_timeout`. better-sqlite3 is synchronous: that wait blocks this process's event loop, which is why the
 * timeout is short and transactions are small (one round). Readers never block in WAL mode.
 */
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ActionKind, CheckState, StateMap } from '../engine/state.js';
import { setState } from '../engine/state.js';
import type { HealthStatus, VMHealthReport } from '../report.js';
import { defaultSqlitePath } from './paths.js';
import { advanceRoundIn, autoPrune, resultRows, Serial } from './round.js';
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_RETENTION_MS,
  type ActionResult,
  type ActionRow,
  type BucketQuery,
  type CurrentCheckRow,
  type HealthStore,
  type HistoryQuery,
  type NewAction,
  type OpenStoreOptions,
  type PruneCounts,
  type ResultBucket,
  type ResultRow,
  type RoundInput,
  type RoundOutcome,
  type StoreTx,
  type TransitionRow,
} from './types.js';

export { defaultSqlitePath };

/** Each entry moves the schema from version i to i + 1. Append only; never edit a released one. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE results (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    vm TEXT NOT NULL,
    check_name TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    state TEXT,
    duration_ms REAL NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX results_vm_check_ts ON results (vm, check_name, ts);
  CREATE INDEX results_ts ON results (ts);
  CREATE TABLE check_states (
    vm TEXT NOT NULL,
    check_name TEXT NOT NULL,
    state TEXT NOT NULL,
    hard INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    consecutive_successes INTEGER NOT NULL,
    last_result_status TEXT NOT NULL,
    last_result_at INTEGER NOT NULL,
    last_change INTEGER NOT NULL,
    last_message TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (vm, check_name)
  ) WITHOUT ROWID;
  CREATE TABLE transitions (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    vm TEXT NOT NULL,
    check_name TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    hard INTEGER NOT NULL,
    message TEXT NOT NULL
  );
  CREATE INDEX transitions_vm_check_ts ON transitions (vm, check_name, ts);
  CREATE INDEX transitions_ts ON transitions (ts);
  CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    vm TEXT NOT NULL,
    check_name TEXT NOT NULL,
    action TEXT NOT NULL,
    command TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    exit_code INTEGER,
    output TEXT,
    duration_ms REAL,
    finished_ts INTEGER
  );
  CREATE INDEX actions_vm_check_action_ts ON actions (vm, check_name, action, ts);
  CREATE INDEX actions_ts ON actions (ts);
  `,
];

export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

interface StateRecord {
  vm: string;
  check_name: string;
  state: string;
  hard: number;
  consecutive_failures: number;
  consecutive_successes: number;
  last_result_status: string;
  last_result_at: number;
  last_change: number;
  last_message: string;
}

interface ResultRecord {
  ts: number;
  vm: string;
  check_name: string;
  type: string;
  status: string;
  state: string | null;
  duration_ms: number;
  message: string;
  details: string;
}

interface TransitionRecord {
  ts: number;
  vm: string;
  check_name: string;
  from_state: string | null;
  to_state: string;
  hard: number;
  message: string;
}

interface ActionRecord {
  id: number;
  ts: number;
  vm: string;
  check_name: string;
  action: string;
  command: string;
  status: string;
  reason: string | null;
  exit_code: number | null;
  output: string | null;
  duration_ms: number | null;
  finished_ts: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

function toState(r: StateRecord): CheckState {
  return {
    state: r.state as HealthStatus,
    hard: r.hard === 1,
    consecutive_failures: r.consecutive_failures,
    consecutive_successes: r.consecutive_successes,
    last_result_status: r.last_result_status as HealthStatus,
    last_result_at: iso(r.last_result_at),
    last_change: iso(r.last_change),
    last_message: r.last_message,
  };
}

function toResult(r: ResultRecord): ResultRow {
  return {
    ts: r.ts,
    vm: r.vm,
    check: r.check_name,
    type: r.type,
    status: r.status as HealthStatus,
    state: r.state as HealthStatus | null,
    duration_ms: r.duration_ms,
    message: r.message,
    details: JSON.parse(r.details) as Record<string, unknown>,
  };
}

function toTransition(r: TransitionRecord): TransitionRow {
  return {
    ts: r.ts,
    vm: r.vm,
    check: r.check_name,
    from: r.from_state as HealthStatus | null,
    to: r.to_state as HealthStatus,
    hard: r.hard === 1,
    message: r.message,
  };
}

function toAction(r: ActionRecord): ActionRow {
  return {
    id: r.id,
    ts: r.ts,
    vm: r.vm,
    check: r.check_name,
    action: r.action as ActionKind,
    command: r.command,
    status: r.status as ActionRow['status'],
    ...(r.reason !== null ? { reason: r.reason } : {}),
    ...(r.exit_code !== null ? { exit_code: r.exit_code } : {}),
    ...(r.output !== null ? { output: r.output } : {}),
    ...(r.duration_ms !== null ? { duration_ms: r.duration_ms } : {}),
    ...(r.finished_ts !== null ? { finished_ts: r.finished_ts } : {}),
  };
}

function busyError(err: unknown, path: string, timeoutMs: number): Error {
  const e = err as { code?: string; message?: string };
  if (e.code === 'SQLITE_BUSY' || e.code === 'SQLITE_LOCKED') {
    return new Error(
      `the history store ${path} stayed locked by another clonebox process for more than ${timeoutMs} ms; ` +
        'try again, or look for a stuck clonebox process',
      { cause: err },
    );
  }
  return err as Error;
}

/** Open (creating the file 0600 and its directory 0700 when missing) and migrate. */
function openDatabase(path: string, timeoutMs: number): Database.Database {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Create it ourselves so it is never world-readable; SQLite gives -wal and -shm the same mode.
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  const db = new Database(path, { timeout: timeoutMs });
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(timeoutMs))}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db, path);
  } catch (err) {
    db.close();
    throw busyError(err, path, timeoutMs);
  }
  return db;
}

function schemaVersion(db: Database.Database): number {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
  if (!table) return 0;
  return (db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0;
}

function migrate(db: Database.Database, path: string): void {
  // The usual case, a current file, only reads: opening never waits for another process's write.
  if (schemaVersion(db) === MIGRATIONS.length) return;
  // IMMEDIATE: two processes opening a new file at once must not both create the tables.
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const current = schemaVersion(db);
    if (current > MIGRATIONS.length) {
      throw new Error(
        `the history store ${path} has schema version ${current}, newer than this clonebox understands (${MIGRATIONS.length}); upgrade clonebox`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(v + 1, Date.now());
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * One queue per file for all stores of this process. better-sqlite3 waits for a lock synchronously, so a
 * second connection of the same process waiting on BEGIN IMMEDIATE would block the event loop while the
 * first connection's transaction (an async function) can never finish: it would only time out. In-process
 * writers therefore queue here; other processes are kept out by SQLite's own lock.
 */
const queues = new Map<string, Serial>();
function serialFor(path: string): Serial {
  let q = queues.get(path);
  if (!q) queues.set(path, (q = new Serial()));
  return q;
}

export class SqliteStore implements HealthStore {
  readonly kind = 'sqlite' as const;
  readonly location: string;
  private readonly db: Database.Database;
  private readonly serial: Serial;
  private readonly retentionMs: number;
  private readonly timeoutMs: number;
  private readonly stmt;

  constructor(path: string = defaultSqlitePath(), options: OpenStoreOptions = {}) {
    this.location = path;
    this.timeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.db = openDatabase(path, this.timeoutMs);
    this.serial = serialFor(path);
    const db = this.db;
    this.stmt = {
      loadStates: db.prepare<[string], StateRecord>(
        'SELECT * FROM check_states WHERE vm IN (SELECT value FROM json_each(?))',
      ),
      saveState: db.prepare(
        `INSERT INTO check_states (vm, check_name, state, hard, consecutive_failures, consecutive_successes,
           last_result_status, last_result_at, last_change, last_message, updated_at)
         VALUES (@vm, @check_name, @state, @hard, @consecutive_failures, @consecutive_successes,
           @last_result_status, @last_result_at, @last_change, @last_message, @updated_at)
         ON CONFLICT (vm, check_name) DO UPDATE SET state = excluded.state, hard = excluded.hard,
           consecutive_failures = excluded.consecutive_failures, consecutive_successes = excluded.consecutive_successes,
           last_result_status = excluded.last_result_status, last_result_at = excluded.last_result_at,
           last_change = excluded.last_change, last_message = excluded.last_message, updated_at = excluded.updated_at`,
      ),
      insertResult: db.prepare(
        `INSERT INTO results (ts, vm, check_name, type, status, state, duration_ms, message, details)
         VALUES (@ts, @vm, @check, @type, @status, @state, @duration_ms, @message, @details)`,
      ),
      insertTransition: db.prepare(
        `INSERT INTO transitions (ts, vm, check_name, from_state, to_state, hard, message)
         VALUES (@ts, @vm, @check, @from, @to, @hard, @message)`,
      ),
      actionRuns: db.prepare<[string, string, string, number], { ts: number }>(
        `SELECT ts FROM actions WHERE vm = ? AND check_name = ? AND action = ? AND ts >= ? AND status <> 'suppressed' ORDER BY ts`,
      ),
      insertAction: db.prepare(
        `INSERT INTO actions (ts, vm, check_name, action, command, status, reason, exit_code, output, duration_ms, finished_ts)
         VALUES (@ts, @vm, @check, @action, @command, @status, @reason, @exit_code, @output, @duration_ms, @finished_ts)`,
      ),
      currentAll: db.prepare<[], StateRecord>('SELECT * FROM check_states'),
      currentVm: db.prepare<[string], StateRecord>('SELECT * FROM check_states WHERE vm = ?'),
      // Counting first and fetching each group's latest message by index afterwards: carrying the message through
      // the GROUP BY made the query about 8× slower (it is copied at every new max).
      buckets: db.prepare<[BucketQuery], Omit<ResultBucket, 'status'> & { status: string }>(
        `WITH g AS (
           SELECT CAST((ts - @sinceMs) / @bucketMs AS INTEGER) AS bucket, status, count(*) AS count,
             total(duration_ms) AS duration_ms_sum, max(ts) AS last_ts
           FROM results WHERE vm = @vm AND check_name = @check AND ts >= @sinceMs AND ts < @untilMs
           GROUP BY bucket, status)
         SELECT g.*, (SELECT message FROM results r WHERE r.vm = @vm AND r.check_name = @check AND r.ts = g.last_ts AND r.status = g.status
           ORDER BY r.id DESC LIMIT 1) AS last_message
         FROM g`,
      ),
      marker: db.prepare<[], { results: number | null; states: number | null }>(
        'SELECT (SELECT max(id) FROM results) AS results, (SELECT max(updated_at) FROM check_states) AS states',
      ),
      finishAction: db.prepare(
        `UPDATE actions SET status = @status, exit_code = @exit_code, output = @output, duration_ms = @duration_ms,
           reason = coalesce(@reason, reason), finished_ts = @finished_ts WHERE id = @id`,
      ),
    };
  }

  private readonly tx: StoreTx = {
    loadStates: async (vms) => {
      const states: StateMap = new Map();
      for (const r of this.stmt.loadStates.all(JSON.stringify(vms))) setState(states, r.vm, r.check_name, toState(r));
      return states;
    },
    saveStates: async (states, updatedAt = Date.now()) => {
      for (const [vm, checks] of states) {
        for (const [check, s] of checks) {
          this.stmt.saveState.run({
            vm,
            check_name: check,
            state: s.state,
            hard: s.hard ? 1 : 0,
            consecutive_failures: s.consecutive_failures,
            consecutive_successes: s.consecutive_successes,
            last_result_status: s.last_result_status,
            last_result_at: Date.parse(s.last_result_at),
            last_change: Date.parse(s.last_change),
            last_message: s.last_message,
            updated_at: updatedAt,
          });
        }
      }
    },
    insertResults: async (rows) => {
      for (const r of rows) this.stmt.insertResult.run({ ...r, details: JSON.stringify(r.details) });
    },
    insertTransitions: async (rows) => {
      for (const r of rows) this.stmt.insertTransition.run({ ...r, hard: r.hard ? 1 : 0 });
    },
    actionRunsSince: async (vm, check, action, sinceMs) => this.stmt.actionRuns.all(vm, check, action, sinceMs).map((r) => r.ts),
    insertAction: async (row) =>
      Number(
        this.stmt.insertAction.run({
          reason: null,
          exit_code: null,
          output: null,
          duration_ms: null,
          finished_ts: null,
          ...row,
        }).lastInsertRowid,
      ),
  };

  withStateLock<T>(_vms: readonly string[], fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      try {
        this.db.exec('BEGIN IMMEDIATE');
      } catch (err) {
        throw busyError(err, this.location, this.timeoutMs);
      }
      try {
        const value = await fn(this.tx);
        this.db.exec('COMMIT');
        return value;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw busyError(err, this.location, this.timeoutMs);
      }
    });
  }

  async advanceRound(input: RoundInput): Promise<RoundOutcome> {
    const vms = [...new Set(input.reports.map((r) => r.vm_name))];
    const out = await this.withStateLock(vms, (tx) => advanceRoundIn(tx, input));
    await this.autoPrune(input.now);
    return out;
  }

  async recordRound(reports: readonly VMHealthReport[], states?: StateMap): Promise<void> {
    await this.withStateLock([], async (tx) => {
      if (states) await tx.saveStates(states);
      await tx.insertResults(resultRows(reports, states));
    });
    await this.autoPrune();
  }

  loadStates(vms: readonly string[]): Promise<StateMap> {
    return this.serial.run(() => this.tx.loadStates(vms));
  }

  saveStates(states: StateMap): Promise<void> {
    return this.withStateLock([], (tx) => tx.saveStates(states));
  }

  recordAction(row: NewAction): Promise<number> {
    return this.withStateLock([], (tx) => tx.insertAction(row));
  }

  finishAction(id: number, r: ActionResult): Promise<void> {
    return this.serial.run(async () => {
      this.stmt.finishAction.run({
        id,
        status: r.status,
        exit_code: r.exit_code ?? null,
        output: r.output ?? null,
        duration_ms: r.duration_ms ?? null,
        reason: r.reason ?? null,
        finished_ts: r.finished_ts ?? Date.now(),
      });
    });
  }

  private query<R>(table: string, q: HistoryQuery, map: (r: never) => R): Promise<R[]> {
    return this.serial.run(async () => {
      const sql =
        `SELECT * FROM ${table} WHERE vm = ? AND ts >= ? AND ts < ?` +
        (q.check !== undefined ? ' AND check_name = ?' : '') +
        ' ORDER BY ts, id' +
        (q.limit !== undefined ? ' LIMIT ?' : '');
      const args: unknown[] = [q.vm, q.sinceMs, q.untilMs ?? Number.MAX_SAFE_INTEGER];
      if (q.check !== undefined) args.push(q.check);
      if (q.limit !== undefined) args.push(Math.max(0, Math.floor(q.limit)));
      return (this.db.prepare(sql).all(...args) as never[]).map(map);
    });
  }

  history(q: HistoryQuery): Promise<ResultRow[]> {
    return this.query('results', q, toResult);
  }

  transitions(q: HistoryQuery): Promise<TransitionRow[]> {
    return this.query('transitions', q, toTransition);
  }

  actions(q: HistoryQuery): Promise<ActionRow[]> {
    return this.query('actions', q, toAction);
  }

  knownVms(): Promise<string[]> {
    return this.serial.run(async () =>
      (this.db.prepare('SELECT vm FROM check_states UNION SELECT vm FROM results ORDER BY vm').all() as { vm: string }[]).map((r) => r.vm),
    );
  }

  currentChecks(vm?: string): Promise<CurrentCheckRow[]> {
    return this.serial.run(async () => {
      const rows = vm === undefined ? this.stmt.currentAll.all() : this.stmt.currentVm.all(vm);
      return rows.map((r) => ({
        vm: r.vm,
        check: r.check_name,
        state: r.state as HealthStatus,
        hard: r.hard === 1,
        consecutive_failures: r.consecutive_failures,
        consecutive_successes: r.consecutive_successes,
        last_result_status: r.last_result_status as HealthStatus,
        last_result_at: r.last_result_at,
        last_change: r.last_change,
        last_message: r.last_message,
      }));
    });
  }

  resultBuckets(q: BucketQuery): Promise<ResultBucket[]> {
    return this.serial.run(async () =>
      this.stmt.buckets.all({ ...q, bucketMs: Math.max(1, Math.floor(q.bucketMs)) }).map((r) => ({ ...r, status: r.status as HealthStatus })),
    );
  }

  changeMarker(): Promise<string> {
    return this.serial.run(async () => {
      const r = this.stmt.marker.get()!;
      return `${r.results ?? 0}:${r.states ?? 0}`;
    });
  }

  prune(olderThanMs: number): Promise<PruneCounts> {
    return this.withStateLock([], async () => {
      const del = (sql: string) => this.db.prepare(sql).run(olderThanMs).changes;
      return {
        results: del('DELETE FROM results WHERE ts < ?'),
        transitions: del('DELETE FROM transitions WHERE ts < ?'),
        actions: del('DELETE FROM actions WHERE ts < ?'),
        states: del('DELETE FROM check_states WHERE updated_at < ?'),
      };
    });
  }

  private async autoPrune(now?: number): Promise<void> {
    await autoPrune(this.location, this.retentionMs, (t) => this.prune(t), now);
  }

  /** `PRAGMA integrity_check`: "ok" when the file is sound. */
  integrityCheck(): Promise<string> {
    return this.serial.run(async () => (this.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; '));
  }

  close(): Promise<void> {
    return this.serial.run(async () => {
      if (this.db.open) this.db.close();
    });
  }
}

export function openSqliteStore(path?: string, options?: OpenStoreOptions): SqliteStore {
  return new SqliteStore(path ?? defaultSqlitePath(), options);
}
