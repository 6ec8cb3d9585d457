/**
 * The same store on PostgreSQL (`--store postgres://user@host/db`), for fleets beyond one hypervisor: several
 * hosts write into one database, and `health history` reads any VM from anywhere. The store's semantics are in
 * core.ts; this file connects, migrates, locks and says how values are written.
 *
 * Concurrency: the state read-modify-write holds a transaction-scoped advisory lock per VM (taken in sorted order,
 * so two rounds never deadlock) and reads the state rows `FOR UPDATE`. Advisory locks also cover a check's first
 * round, when there is no row yet to lock. Rounds over different VMs (different hypervisors) do not wait for each
 * other. `lock_timeout` bounds the wait, like SQLite's busy_timeout.
 */
import pg from 'pg';
import { redactUrl } from '../util/redact.js';
import { SqlStore } from './core.js';
import { pendingMigrations, type Columns, type Dialect, type Migration, type SqlConn, type ValueType } from './dialect.js';
import { DEFAULT_LOCK_TIMEOUT_MS, type OpenStoreOptions } from './types.js';

/** The schema, one step per version (dialect.ts). A new table is one more entry here and in sqlite.ts. */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: 'results, check_states, transitions, actions',
    sql: `
  CREATE TABLE results (
    id bigserial PRIMARY KEY,
    ts timestamptz NOT NULL,
    vm text NOT NULL,
    check_name text NOT NULL,
    type text NOT NULL,
    status text NOT NULL,
    state text,
    duration_ms double precision NOT NULL,
    message text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
  );
  CREATE INDEX results_vm_check_ts ON results (vm, check_name, ts);
  CREATE INDEX results_ts ON results (ts);
  CREATE TABLE check_states (
    vm text NOT NULL,
    check_name text NOT NULL,
    state text NOT NULL,
    hard boolean NOT NULL,
    consecutive_failures integer NOT NULL,
    consecutive_successes integer NOT NULL,
    last_result_status text NOT NULL,
    last_result_at timestamptz NOT NULL,
    last_change timestamptz NOT NULL,
    last_message text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (vm, check_name)
  );
  CREATE TABLE transitions (
    id bigserial PRIMARY KEY,
    ts timestamptz NOT NULL,
    vm text NOT NULL,
    check_name text NOT NULL,
    from_state text,
    to_state text NOT NULL,
    hard boolean NOT NULL,
    message text NOT NULL
  );
  CREATE INDEX transitions_vm_check_ts ON transitions (vm, check_name, ts);
  CREATE INDEX transitions_ts ON transitions (ts);
  CREATE TABLE actions (
    id bigserial PRIMARY KEY,
    ts timestamptz NOT NULL,
    vm text NOT NULL,
    check_name text NOT NULL,
    action text NOT NULL,
    command text NOT NULL,
    status text NOT NULL,
    reason text,
    exit_code integer,
    output text,
    duration_ms double precision,
    finished_at timestamptz
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
    vm text NOT NULL,
    check_name text NOT NULL,
    firing boolean NOT NULL,
    since timestamptz,
    last_notified timestamptz,
    repeats integer NOT NULL,
    flapping boolean NOT NULL,
    history text NOT NULL,
    unreachable_since timestamptz,
    last_state text,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (vm, check_name)
  );
  CREATE TABLE silences (
    id text PRIMARY KEY,
    vm text NOT NULL,
    check_name text,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    reason text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL
  );
  CREATE INDEX silences_ends_at ON silences (ends_at);
  CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    provider text NOT NULL,
    alert_key text NOT NULL,
    notification jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    last_error text,
    delivered_at timestamptz
  );
  CREATE INDEX outbox_pending ON outbox (provider, status, alert_key, seq);
  CREATE INDEX outbox_created_at ON outbox (created_at);
  `,
  },
];

export const POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.length;

/** Version 1 named the actions' finish time `finished_at`; renaming it would need a migration of its own. */
const RENAMED: Readonly<Record<string, string>> = { 'actions.finished_ts': 'finished_at' };

/** Arbitrary constants naming our advisory locks (the migration lock; per-VM locks hash the VM name). */
const MIGRATION_LOCK = 0x636c6f6e; // "clon"

/** The array type a column's values travel in to unnest(), and how each element becomes the column's value. */
const ARRAY: Record<ValueType, string> = { text: 'text[]', int: 'int[]', real: 'float8[]', bool: 'boolean[]', ms: 'float8[]', json: 'text[]', id: 'bigint[]' };
const fromElement = (type: ValueType, x: string) => (type === 'ms' ? `to_timestamp(${x} / 1000)` : type === 'json' ? `${x}::jsonb` : x);

/** PostgreSQL text and jsonb cannot hold NUL; a probe's output may. */
const noNul = (s: string) => (s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s);
const jsonText = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? noNul(x) : x));

function friendly(err: unknown, location: string, timeoutMs: number): Error {
  const e = err as { code?: string };
  if (e.code === '55P03') {
    return new Error(`the history store ${location} stayed locked by another clonebox run for more than ${timeoutMs} ms; try again`, { cause: err });
  }
  return err as Error;
}

/** `?` → `$1`, `$2`, … (the core writes `?`, and never inside a literal); once per SQL text. */
const numbered = new Map<string, string>();
function numberParams(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    numbered.set(sql, out);
  }
  return out;
}

function connOn(q: Pick<pg.PoolClient, 'query'>): SqlConn {
  return {
    all: async <R>(sql: string, params: readonly unknown[] = []) => (await q.query(numberParams(sql), [...params])).rows as R[],
    run: async (sql: string, params: readonly unknown[] = []) => (await q.query(numberParams(sql), [...params])).rowCount ?? 0,
  };
}

export class PostgresDialect implements Dialect {
  readonly kind = 'postgres' as const;
  readonly forUpdate = ' FOR UPDATE';
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly poolConn: SqlConn;

  constructor(
    url: string,
    private readonly timeoutMs: number,
  ) {
    this.location = redactUrl(url);
    this.pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'clonebox-health' });
    // An idle connection dropped by the server (restart, failover) must not crash a long `health watch`.
    this.pool.on('error', () => undefined);
    this.poolConn = connOn(this.pool);
  }

  bind(type: ValueType): string {
    return type === 'ms' ? 'to_timestamp(?::float8 / 1000)' : type === 'json' ? '?::jsonb' : '?';
  }

  /** timestamptz → float8 ms keeps pg from returning a string or a Date. */
  select(type: ValueType, column: string): string {
    return type === 'ms' ? `round(extract(epoch FROM ${column}) * 1000)::float8` : type === 'id' ? `${column}::float8` : column;
  }

  encode(type: ValueType, v: unknown): unknown {
    if (v === null || v === undefined) return null;
    if (type === 'json') return jsonText(v);
    if (type === 'text') return noNul(v as string);
    return v;
  }

  decode(type: ValueType, v: unknown): unknown {
    return type === 'id' ? Number(v) : v;
  }

  inList(column: string, values: readonly string[]): { sql: string; param: unknown } {
    return { sql: `${column} = ANY(?::text[])`, param: values };
  }

  column(table: string, name: string): string {
    return RENAMED[`${table}.${name}`] ?? name;
  }

  /** One statement however many rows: each column travels as one array parameter to unnest(). */
  async insertMany(c: SqlConn, table: string, columns: Columns, rows: readonly (readonly unknown[])[], tail = ''): Promise<void> {
    const cols = Object.entries(columns);
    const arrays = cols.map(([, type], i) => rows.map((r) => this.encode(type, r[i])));
    await c.run(
      `INSERT INTO ${table} (${cols.map(([k]) => this.column(table, k)).join(', ')})
       SELECT ${cols.map(([, type], i) => fromElement(type, `c${i}`)).join(', ')}
       FROM unnest(${cols.map(([, type]) => `?::${ARRAY[type]}`).join(', ')}) AS u(${cols.map((_, i) => `c${i}`).join(', ')}) ${tail}`,
      arrays,
    );
  }

  private async begin<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(this.timeoutMs))}`);
      const value = await fn(c);
      await c.query('COMMIT');
      return value;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw friendly(err, this.location, this.timeoutMs);
    } finally {
      c.release();
    }
  }

  transaction<T>(vms: readonly string[], fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return this.begin(async (c) => {
      if (vms.length > 0) {
        await c.query(
          `SELECT pg_advisory_xact_lock(k) FROM (
             SELECT DISTINCT hashtextextended('clonebox-health:' || v, 0) AS k FROM unnest($1::text[]) AS v ORDER BY k
           ) AS locks`,
          [[...new Set(vms)]],
        );
      }
      return fn(connOn(c));
    });
  }

  session<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return fn(this.poolConn);
  }

  async migrate(): Promise<void> {
    await this.begin(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const { rows } = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
      for (const m of pendingMigrations(POSTGRES_MIGRATIONS, rows[0]?.v ?? 0)) {
        await c.query(m.sql);
        await c.query('INSERT INTO schema_version (version) VALUES ($1)', [m.version]);
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export class PostgresStore extends SqlStore {
  static async open(url: string, options: OpenStoreOptions = {}): Promise<PostgresStore> {
    const dialect = new PostgresDialect(url, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    try {
      await dialect.migrate();
    } catch (err) {
      await dialect.close().catch(() => undefined);
      throw new Error(`cannot open the history store ${dialect.location}: ${(err as Error).message}`, { cause: err });
    }
    return new PostgresStore(dialect, options);
  }
}

export function openPostgresStore(url: string, options?: OpenStoreOptions): Promise<PostgresStore> {
  return PostgresStore.open(url, options);
}
