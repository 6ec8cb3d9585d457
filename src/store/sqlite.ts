/**
 * The default store: one SQLite file (better-sqlite3 12), in WAL mode. The store's semantics are in core.ts;
 * this file connects, migrates, locks and says how values are written.
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
import { SqlStore } from './core.js';
import { pendingMigrations, type Columns, type Dialect, type Migration, type SqlConn, type ValueType } from './dialect.js';
import { defaultSqlitePath } from './paths.js';
import { DEFAULT_LOCK_TIMEOUT_MS, type OpenStoreOptions } from './types.js';

export { defaultSqlitePath };

/** The schema, one step per version (dialect.ts). A new table is one more entry here and in postgres.ts. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: 'results, check_states, transitions, actions',
    sql: `
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
  },
  {
    version: 2,
    what: 'alerting: alert_states, silences, outbox',
    sql: `
  CREATE TABLE alert_states (
    vm TEXT NOT NULL,
    check_name TEXT NOT NULL,
    firing INTEGER NOT NULL,
    since INTEGER,
    last_notified INTEGER,
    repeats INTEGER NOT NULL,
    flapping INTEGER NOT NULL,
    history TEXT NOT NULL,
    unreachable_since INTEGER,
    last_state TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (vm, check_name)
  ) WITHOUT ROWID;
  CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    vm TEXT NOT NULL,
    check_name TEXT,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX silences_ends_at ON silences (ends_at);
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    notification TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error TEXT,
    delivered_at INTEGER
  );
  CREATE INDEX outbox_pending ON outbox (provider, status, alert_key, seq);
  CREATE INDEX outbox_created_at ON outbox (created_at);
  `,
  },
];

export const SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS.length;

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
  if (schemaVersion(db) === SQLITE_MIGRATIONS.length) return;
  // IMMEDIATE: two processes opening a new file at once must not both create the tables.
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    let todo: Migration[];
    try {
      todo = pendingMigrations(SQLITE_MIGRATIONS, schemaVersion(db));
    } catch (err) {
      throw new Error(`the history store ${path} has ${(err as Error).message}`);
    }
    for (const m of todo) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/** Runs async jobs one at a time: a connection has one transaction, so one job may hold it. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job, job);
    this.tail = result.catch(() => undefined);
    return result;
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

/** better-sqlite3 binds numbers, strings, bigints, buffers and null: booleans become 0/1, objects JSON text. */
function encode(type: ValueType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (type === 'bool') return v ? 1 : 0;
  if (type === 'json') return JSON.stringify(v);
  return v;
}

function decode(type: ValueType, v: unknown): unknown {
  if (type === 'bool') return v === 1;
  if (type === 'json') return JSON.parse(v as string) as unknown;
  return v;
}

export class SqliteDialect implements Dialect {
  readonly kind = 'sqlite' as const;
  readonly forUpdate = '';
  readonly db: Database.Database;
  private readonly serial: Serial;
  /** Prepared once per SQL text: the core's statements are a small fixed set. */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly conn: SqlConn = {
    all: async <R>(sql: string, params: readonly unknown[] = []) => this.prepare(sql).all(...params) as R[],
    run: async (sql: string, params: readonly unknown[] = []) => this.prepare(sql).run(...params).changes,
  };

  constructor(
    readonly location: string,
    private readonly timeoutMs: number,
  ) {
    this.db = openDatabase(location, timeoutMs);
    this.serial = serialFor(location);
  }

  private prepare(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  bind(): string {
    return '?';
  }

  select(_type: ValueType, column: string): string {
    return column;
  }

  encode = encode;
  decode = decode;

  inList(column: string, values: readonly string[]): { sql: string; param: unknown } {
    return { sql: `${column} IN (SELECT value FROM json_each(?))`, param: JSON.stringify(values) };
  }

  column(_table: string, name: string): string {
    return name;
  }

  async insertMany(_c: SqlConn, table: string, columns: Columns, rows: readonly (readonly unknown[])[], tail = ''): Promise<void> {
    const types = Object.values(columns);
    const stmt = this.prepare(`INSERT INTO ${table} (${Object.keys(columns).join(', ')}) VALUES (${types.map(() => '?').join(', ')}) ${tail}`);
    for (const row of rows) stmt.run(...row.map((v, i) => encode(types[i]!, v)));
  }

  transaction<T>(_vms: readonly string[], fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      try {
        this.db.exec('BEGIN IMMEDIATE');
      } catch (err) {
        throw busyError(err, this.location, this.timeoutMs);
      }
      try {
        const value = await fn(this.conn);
        this.db.exec('COMMIT');
        return value;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw busyError(err, this.location, this.timeoutMs);
      }
    });
  }

  session<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      try {
        return await fn(this.conn);
      } catch (err) {
        throw busyError(err, this.location, this.timeoutMs);
      }
    });
  }

  close(): Promise<void> {
    return this.serial.run(async () => {
      if (this.db.open) this.db.close();
    });
  }
}

export class SqliteStore extends SqlStore {
  private readonly sqlite: SqliteDialect;

  constructor(path: string = defaultSqlitePath(), options: OpenStoreOptions = {}) {
    const dialect = new SqliteDialect(path, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    super(dialect, options);
    this.sqlite = dialect;
  }

  /** `PRAGMA integrity_check`: "ok" when the file is sound. */
  integrityCheck(): Promise<string> {
    return this.sqlite.session(async () => (this.sqlite.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; '));
  }
}

export function openSqliteStore(path?: string, options?: OpenStoreOptions): SqliteStore {
  return new SqliteStore(path ?? defaultSqlitePath(), options);
}
