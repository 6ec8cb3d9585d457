/**
 * The same store on PostgreSQL (`--store postgres://user@host/db`), for fleets beyond one hypervisor: several
 * hosts write into one database, and `health history` reads any VM from anywhere.
 *
 * Concurrency: the state read-modify-write holds a transaction-scoped advisory lock per VM (taken in sorted order,
 * so two rounds never deadlock) and reads the state rows `FOR UPDATE`. Advisory locks also cover a check's first
 * round, when there is no row yet to lock. Rounds over different VMs (different hypervisors) do not wait for each
 * other. `lock_timeout` bounds the wait, like SQLite's busy_timeout.
 */
import pg from 'pg';
import type { ActionKind, CheckState, StateMap } from '../engine/state.js';
import { setState } from '../engine/state.js';
import type { HealthStatus, VMHealthReport } from '../report.js';
import { redactUrl } from '../util/redact.js';
import { advanceRoundIn, autoPrune, resultRows } from './round.js';
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

const MIGRATIONS: readonly string[] = [
  `
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
];

export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/** Arbitrary constants naming our advisory locks (the migration lock; per-VM locks hash the VM name). */
const MIGRATION_LOCK = 0x636c6f6e; // "clon"

/** ms since the epoch as a column (timestamptz → float8 keeps pg from returning a string). */
const ms = (col: string) => `round(extract(epoch FROM ${col}) * 1000)::float8`;
const ts = (param: string) => `to_timestamp(${param}::float8 / 1000)`;

/** PostgreSQL text and jsonb cannot hold NUL; a probe's output may. */
const noNul = (s: string) => (s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s);
const jsonText = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? noNul(x) : x));

const iso = (n: number) => new Date(n).toISOString();

interface StateRecord {
  vm: string;
  check_name: string;
  state: string;
  hard: boolean;
  consecutive_failures: number;
  consecutive_successes: number;
  last_result_status: string;
  last_result_at: number;
  last_change: number;
  last_message: string;
}

const STATE_COLUMNS = `vm, check_name, state, hard, consecutive_failures, consecutive_successes, last_result_status,
  ${ms('last_result_at')} AS last_result_at, ${ms('last_change')} AS last_change, last_message`;

function toState(r: StateRecord): CheckState {
  return {
    state: r.state as HealthStatus,
    hard: r.hard,
    consecutive_failures: r.consecutive_failures,
    consecutive_successes: r.consecutive_successes,
    last_result_status: r.last_result_status as HealthStatus,
    last_result_at: iso(r.last_result_at),
    last_change: iso(r.last_change),
    last_message: r.last_message,
  };
}

function friendly(err: unknown, location: string, timeoutMs: number): Error {
  const e = err as { code?: string };
  if (e.code === '55P03') {
    return new Error(
      `the history store ${location} stayed locked by another clonebox run for more than ${timeoutMs} ms; try again`,
      { cause: err },
    );
  }
  return err as Error;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

function txFor(c: Queryable, lockRows = true): StoreTx {
  return {
    async loadStates(vms) {
      const states: StateMap = new Map();
      if (vms.length === 0) return states;
      const { rows } = await c.query<StateRecord>(
        `SELECT ${STATE_COLUMNS} FROM check_states WHERE vm = ANY($1::text[]) ORDER BY vm, check_name${lockRows ? ' FOR UPDATE' : ''}`,
        [vms],
      );
      for (const r of rows) setState(states, r.vm, r.check_name, toState(r));
      return states;
    },
    async saveStates(states, updatedAt = Date.now()) {
      const cols: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
      for (const [vm, checks] of states) {
        for (const [check, s] of checks) {
          const values = [
            vm,
            check,
            s.state,
            s.hard,
            s.consecutive_failures,
            s.consecutive_successes,
            s.last_result_status,
            Date.parse(s.last_result_at),
            Date.parse(s.last_change),
            noNul(s.last_message),
          ];
          values.forEach((v, i) => cols[i]!.push(v));
        }
      }
      if (cols[0]!.length === 0) return;
      await c.query(
        `INSERT INTO check_states (vm, check_name, state, hard, consecutive_failures, consecutive_successes,
           last_result_status, last_result_at, last_change, last_message, updated_at)
         SELECT vm, ck, st, hd, cf, cs, lrs, to_timestamp(lra / 1000), to_timestamp(lc / 1000), lm, ${ts('$11')}
         FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::int[], $6::int[], $7::text[],
                     $8::float8[], $9::float8[], $10::text[]) AS u(vm, ck, st, hd, cf, cs, lrs, lra, lc, lm)
         ON CONFLICT (vm, check_name) DO UPDATE SET state = EXCLUDED.state, hard = EXCLUDED.hard,
           consecutive_failures = EXCLUDED.consecutive_failures, consecutive_successes = EXCLUDED.consecutive_successes,
           last_result_status = EXCLUDED.last_result_status, last_result_at = EXCLUDED.last_result_at,
           last_change = EXCLUDED.last_change, last_message = EXCLUDED.last_message, updated_at = EXCLUDED.updated_at`,
        [...cols, updatedAt],
      );
    },
    async insertResults(rows) {
      if (rows.length === 0) return;
      await c.query(
        `INSERT INTO results (ts, vm, check_name, type, status, state, duration_ms, message, details)
         SELECT to_timestamp(t / 1000), vm, ck, ty, st, se, d, m, det::jsonb
         FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::text[], $9::text[])
           AS u(t, vm, ck, ty, st, se, d, m, det)`,
        [
          rows.map((r) => r.ts),
          rows.map((r) => r.vm),
          rows.map((r) => r.check),
          rows.map((r) => r.type),
          rows.map((r) => r.status),
          rows.map((r) => r.state),
          rows.map((r) => r.duration_ms),
          rows.map((r) => noNul(r.message)),
          rows.map((r) => jsonText(r.details)),
        ],
      );
    },
    async insertTransitions(rows) {
      if (rows.length === 0) return;
      await c.query(
        `INSERT INTO transitions (ts, vm, check_name, from_state, to_state, hard, message)
         SELECT to_timestamp(t / 1000), vm, ck, f, tt, h, m
         FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[]) AS u(t, vm, ck, f, tt, h, m)`,
        [
          rows.map((r) => r.ts),
          rows.map((r) => r.vm),
          rows.map((r) => r.check),
          rows.map((r) => r.from),
          rows.map((r) => r.to),
          rows.map((r) => r.hard),
          rows.map((r) => noNul(r.message)),
        ],
      );
    },
    async actionRunsSince(vm, check, action, sinceMs) {
      const { rows } = await c.query<{ ts: number }>(
        `SELECT ${ms('ts')} AS ts FROM actions
         WHERE vm = $1 AND check_name = $2 AND action = $3 AND ts >= ${ts('$4')} AND status <> 'suppressed' ORDER BY ts`,
        [vm, check, action, sinceMs],
      );
      return rows.map((r) => r.ts);
    },
    async insertAction(row) {
      const { rows } = await c.query<{ id: string }>(
        `INSERT INTO actions (ts, vm, check_name, action, command, status, reason, exit_code, output, duration_ms, finished_at)
         VALUES (${ts('$1')}, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11::float8 IS NULL THEN NULL ELSE ${ts('$11')} END)
         RETURNING id`,
        [
          row.ts,
          row.vm,
          row.check,
          row.action,
          noNul(row.command),
          row.status,
          row.reason ?? null,
          row.exit_code ?? null,
          row.output !== undefined ? noNul(row.output) : null,
          row.duration_ms ?? null,
          row.finished_ts ?? null,
        ],
      );
      return Number(rows[0]!.id);
    },
  };
}

export class PostgresStore implements HealthStore {
  readonly kind = 'postgres' as const;
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly retentionMs: number;
  private readonly timeoutMs: number;

  private constructor(url: string, options: OpenStoreOptions) {
    this.location = redactUrl(url);
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.timeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'clonebox-health' });
    // An idle connection dropped by the server (restart, failover) must not crash a long `health watch`.
    this.pool.on('error', () => undefined);
  }

  static async open(url: string, options: OpenStoreOptions = {}): Promise<PostgresStore> {
    const store = new PostgresStore(url, options);
    try {
      await store.migrate();
    } catch (err) {
      await store.pool.end().catch(() => undefined);
      const e = err as Error & { code?: string };
      throw new Error(`cannot open the history store ${store.location}: ${e.message}`, { cause: err });
    }
    return store;
  }

  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
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

  private async migrate(): Promise<void> {
    await this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const { rows } = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
      const current = rows[0]?.v ?? 0;
      if (current > MIGRATIONS.length) {
        throw new Error(`schema version ${current} is newer than this clonebox understands (${MIGRATIONS.length}); upgrade clonebox`);
      }
      for (let v = current; v < MIGRATIONS.length; v++) {
        await c.query(MIGRATIONS[v]!);
        await c.query('INSERT INTO schema_version (version) VALUES ($1)', [v + 1]);
      }
    });
  }

  withStateLock<T>(vms: readonly string[], fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.transaction(async (c) => {
      if (vms.length > 0) {
        await c.query(
          `SELECT pg_advisory_xact_lock(k) FROM (
             SELECT DISTINCT hashtextextended('clonebox-health:' || v, 0) AS k FROM unnest($1::text[]) AS v ORDER BY k
           ) AS locks`,
          [[...new Set(vms)]],
        );
      }
      return fn(txFor(c));
    });
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
    return txFor(this.pool, false).loadStates(vms);
  }

  saveStates(states: StateMap): Promise<void> {
    return this.withStateLock([...states.keys()], (tx) => tx.saveStates(states));
  }

  recordAction(row: NewAction): Promise<number> {
    return txFor(this.pool).insertAction(row);
  }

  async finishAction(id: number, r: ActionResult): Promise<void> {
    await this.pool.query(
      `UPDATE actions SET status = $2, exit_code = $3, output = $4, duration_ms = $5, reason = coalesce($6, reason),
         finished_at = ${ts('$7')} WHERE id = $1`,
      [
        id,
        r.status,
        r.exit_code ?? null,
        r.output !== undefined ? noNul(r.output) : null,
        r.duration_ms ?? null,
        r.reason ?? null,
        r.finished_ts ?? Date.now(),
      ],
    );
  }

  private async query<R>(table: string, columns: string, q: HistoryQuery): Promise<R[]> {
    const args: unknown[] = [q.vm, q.sinceMs];
    let where = `vm = $1 AND ts >= ${ts('$2')}`;
    if (q.untilMs !== undefined) {
      args.push(q.untilMs);
      where += ` AND ts < ${ts(`$${args.length}`)}`;
    }
    if (q.check !== undefined) {
      args.push(q.check);
      where += ` AND check_name = $${args.length}`;
    }
    let limit = '';
    if (q.limit !== undefined) {
      args.push(Math.max(0, Math.floor(q.limit)));
      limit = ` LIMIT $${args.length}`;
    }
    const { rows } = await this.pool.query(`SELECT ${columns} FROM ${table} WHERE ${where} ORDER BY ts, id${limit}`, args);
    return rows as R[];
  }

  async history(q: HistoryQuery): Promise<ResultRow[]> {
    return this.query<ResultRow>(
      'results',
      `${ms('ts')} AS ts, vm, check_name AS "check", type, status, state, duration_ms, message, details`,
      q,
    );
  }

  async transitions(q: HistoryQuery): Promise<TransitionRow[]> {
    return this.query<TransitionRow>(
      'transitions',
      `${ms('ts')} AS ts, vm, check_name AS "check", from_state AS "from", to_state AS "to", hard, message`,
      q,
    );
  }

  async actions(q: HistoryQuery): Promise<ActionRow[]> {
    const rows = await this.query<Record<string, unknown>>(
      'actions',
      `id::float8 AS id, ${ms('ts')} AS ts, vm, check_name AS "check", action, command, status, reason, exit_code, output,
       duration_ms, CASE WHEN finished_at IS NULL THEN NULL ELSE ${ms('finished_at')} END AS finished_ts`,
      q,
    );
    return rows.map((r) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r)) if (v !== null) out[k] = v;
      return out as unknown as ActionRow & { action: ActionKind };
    });
  }

  async knownVms(): Promise<string[]> {
    const { rows } = await this.pool.query<{ vm: string }>(
      'SELECT vm FROM check_states UNION SELECT DISTINCT vm FROM results ORDER BY vm',
    );
    return rows.map((r) => r.vm);
  }

  async currentChecks(vm?: string): Promise<CurrentCheckRow[]> {
    const { rows } = await this.pool.query<StateRecord>(
      `SELECT ${STATE_COLUMNS} FROM check_states${vm === undefined ? '' : ' WHERE vm = $1'}`,
      vm === undefined ? [] : [vm],
    );
    return rows.map((r) => ({
      vm: r.vm,
      check: r.check_name,
      state: r.state as HealthStatus,
      hard: r.hard,
      consecutive_failures: r.consecutive_failures,
      consecutive_successes: r.consecutive_successes,
      last_result_status: r.last_result_status as HealthStatus,
      last_result_at: r.last_result_at,
      last_change: r.last_change,
      last_message: r.last_message,
    }));
  }

  async resultBuckets(q: BucketQuery): Promise<ResultBucket[]> {
    // Counting first and fetching each group's latest message by index afterwards (as in sqlite.ts).
    const { rows } = await this.pool.query<ResultBucket>(
      `WITH g AS (
         SELECT floor((extract(epoch FROM ts) * 1000 - $3::float8) / $5::float8)::int AS bucket, status, count(*)::int AS count,
           coalesce(sum(duration_ms), 0)::float8 AS duration_ms_sum, max(ts) AS last
         FROM results WHERE vm = $1 AND check_name = $2 AND ts >= ${ts('$3')} AND ts < ${ts('$4')}
         GROUP BY 1, 2)
       SELECT g.bucket, g.status, g.count, g.duration_ms_sum, ${ms('g.last')} AS last_ts,
         (SELECT message FROM results r WHERE r.vm = $1 AND r.check_name = $2 AND r.ts = g.last AND r.status = g.status
          ORDER BY r.id DESC LIMIT 1) AS last_message
       FROM g`,
      [q.vm, q.check, q.sinceMs, q.untilMs, Math.max(1, Math.floor(q.bucketMs))],
    );
    return rows;
  }

  async changeMarker(): Promise<string> {
    const { rows } = await this.pool.query<{ results: string | null; states: number | null }>(
      `SELECT (SELECT max(id) FROM results)::text AS results, (SELECT ${ms('max(updated_at)')} FROM check_states) AS states`,
    );
    return `${rows[0]?.results ?? 0}:${rows[0]?.states ?? 0}`;
  }

  prune(olderThanMs: number): Promise<PruneCounts> {
    return this.transaction(async (c) => {
      const del = async (sql: string) => (await c.query(sql, [olderThanMs])).rowCount ?? 0;
      return {
        results: await del(`DELETE FROM results WHERE ts < ${ts('$1')}`),
        transitions: await del(`DELETE FROM transitions WHERE ts < ${ts('$1')}`),
        actions: await del(`DELETE FROM actions WHERE ts < ${ts('$1')}`),
        states: await del(`DELETE FROM check_states WHERE updated_at < ${ts('$1')}`),
      };
    });
  }

  private async autoPrune(now?: number): Promise<void> {
    await autoPrune(this.location, this.retentionMs, (t) => this.prune(t), now);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export function openPostgresStore(url: string, options?: OpenStoreOptions): Promise<PostgresStore> {
  return PostgresStore.open(url, options);
}
