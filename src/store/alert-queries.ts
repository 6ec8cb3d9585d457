/**
 * The store core's alerting tables (migration 2 in both dialects): per-alert state, silences and the outbox,
 * written over the same `Dialect` as the rest of the core. The outbox rows of a round are inserted in the round's
 * transaction (core.ts → round.ts); `SqlOutbox` claims them with a lease, so concurrent runs deliver each once.
 */
import type { NewOutboxRow, Outbox, OutboxRow, OutboxStatus } from '../alerting/outbox.js';
import { alertKey, type AlertNotification, type AlertState, type AlertStateMap, type Silence } from '../alerting/types.js';
import type { HealthStatus } from '../report.js';
import { decodeRow, selectList, upsertTail, type Row } from './columns.js';
import type { Columns, Dialect, SqlConn } from './dialect.js';
import type { OutboxQuery, StoreTx } from './types.js';

export const ALERT_STATE = {
  vm: 'text',
  check_name: 'text',
  firing: 'bool',
  since: 'ms',
  last_notified: 'ms',
  repeats: 'int',
  flapping: 'bool',
  history: 'text',
  unreachable_since: 'ms',
  last_state: 'text',
  updated_at: 'ms',
} as const satisfies Columns;

export const SILENCE = {
  id: 'text',
  vm: 'text',
  check_name: 'text',
  starts_at: 'ms',
  ends_at: 'ms',
  reason: 'text',
  created_by: 'text',
  created_at: 'ms',
} as const satisfies Columns;

export const OUTBOX = {
  id: 'text',
  provider: 'text',
  alert_key: 'text',
  notification: 'json',
  created_at: 'ms',
  status: 'text',
  attempts: 'int',
  next_attempt_at: 'ms',
  lease_owner: 'text',
  lease_until: 'ms',
  last_error: 'text',
  delivered_at: 'ms',
} as const satisfies Columns;

const OUTBOX_READ = { seq: 'id', ...OUTBOX } as const satisfies Columns;

const num = (v: unknown) => (v === null ? undefined : (v as number));

function toAlertState(r: Row<typeof ALERT_STATE>): AlertState {
  const s: AlertState = { firing: r.firing as boolean, repeat: r.repeats as number, flapping: r.flapping as boolean, history: r.history as string };
  if (num(r.since) !== undefined) s.since = r.since as number;
  if (num(r.last_notified) !== undefined) s.last_notified = r.last_notified as number;
  if (num(r.unreachable_since) !== undefined) s.unreachable_since = r.unreachable_since as number;
  if (r.last_state !== null) s.last_state = r.last_state as HealthStatus;
  return s;
}

function toSilence(r: Row<typeof SILENCE>): Silence {
  return {
    id: r.id as string,
    vm: r.vm as string,
    ...(r.check_name !== null ? { check: r.check_name as string } : {}),
    starts_at: r.starts_at as number,
    ends_at: r.ends_at as number,
    reason: r.reason as string,
    ...(r.created_by !== null ? { created_by: r.created_by as string } : {}),
    created_at: r.created_at as number,
  };
}

function toOutboxRow(r: Row<typeof OUTBOX_READ>): OutboxRow {
  return {
    id: r.id as string,
    provider: r.provider as string,
    alert_key: r.alert_key as string,
    notification: r.notification as AlertNotification,
    created_at: r.created_at as number,
    status: r.status as OutboxStatus,
    attempts: r.attempts as number,
    next_attempt_at: r.next_attempt_at as number,
    ...(r.last_error !== null ? { last_error: r.last_error as string } : {}),
    ...(r.delivered_at !== null ? { delivered_at: r.delivered_at as number } : {}),
  };
}

/** The alerting part of a write transaction's StoreTx. */
export function alertTx(d: Dialect, c: SqlConn): Pick<StoreTx, 'loadAlertStates' | 'saveAlertStates' | 'activeSilences' | 'insertOutbox'> {
  return {
    async loadAlertStates(vms) {
      const out: AlertStateMap = new Map();
      if (vms.length === 0) return out;
      const list = d.inList('vm', vms);
      const rows = await c.all(`SELECT ${selectList(d, 'alert_states', ALERT_STATE)} FROM alert_states WHERE ${list.sql}`, [list.param]);
      for (const raw of rows) {
        const r = decodeRow(d, ALERT_STATE, raw);
        out.set(alertKey(r.vm as string, (r.check_name as string) || undefined), toAlertState(r));
      }
      return out;
    },
    async saveAlertStates(states, updatedAt) {
      const rows = [...states].map(([key, s]) => {
        const [vm, check] = key.split('\u0000') as [string, string];
        return [vm, check, s.firing, s.since ?? null, s.last_notified ?? null, s.repeat, s.flapping, s.history, s.unreachable_since ?? null, s.last_state ?? null, updatedAt];
      });
      if (rows.length > 0) await d.insertMany(c, 'alert_states', ALERT_STATE, rows, upsertTail(d, 'alert_states', ALERT_STATE, ['vm', 'check_name']));
    },
    async activeSilences(now) {
      return silencesOn(d, c, now, false);
    },
    async insertOutbox(rows) {
      if (rows.length === 0) return;
      await d.insertMany(
        c,
        'outbox',
        OUTBOX,
        rows.map((r) => [r.id, r.provider, r.alert_key, r.notification, r.created_at, 'pending', 0, r.created_at, null, null, null, null]),
        'ON CONFLICT (id) DO NOTHING',
      );
    },
  };
}

async function silencesOn(d: Dialect, c: SqlConn, now: number, includeEnded: boolean): Promise<Silence[]> {
  const rows = await c.all(
    `SELECT ${selectList(d, 'silences', SILENCE)} FROM silences${includeEnded ? '' : ` WHERE ends_at > ${d.bind('ms')}`} ORDER BY ends_at, id`,
    includeEnded ? [] : [d.encode('ms', now)],
  );
  return rows.map((r) => toSilence(decodeRow(d, SILENCE, r)));
}

/** Only the oldest pending row of an alert is due: a provider hears an alert's notifications in order. */
const HEAD = `NOT EXISTS (SELECT 1 FROM outbox p WHERE p.provider = o.provider AND p.alert_key = o.alert_key AND p.status = 'pending' AND p.seq < o.seq)`;

/** The outbox on the store's tables. Each call is its own short transaction. */
export class SqlOutbox implements Outbox {
  constructor(private readonly d: Dialect) {}

  claim(provider: string, owner: string, now: number, leaseMs: number, limit: number): Promise<OutboxRow[]> {
    const d = this.d;
    return d.transaction([], async (c) => {
      const t = d.encode('ms', now);
      const rows = await c.all(
        `SELECT ${selectList(d, 'outbox', OUTBOX_READ)} FROM outbox o
         WHERE provider = ? AND status = 'pending' AND next_attempt_at <= ${d.bind('ms')}
           AND (lease_until IS NULL OR lease_until <= ${d.bind('ms')}) AND ${HEAD}
         ORDER BY seq LIMIT ?${d.forUpdate}`,
        [provider, t, t, limit],
      );
      const claimed = rows.map((r) => toOutboxRow(decodeRow(d, OUTBOX_READ, r)));
      if (claimed.length > 0) {
        const list = d.inList('id', claimed.map((r) => r.id));
        await c.run(`UPDATE outbox SET lease_owner = ?, lease_until = ${d.bind('ms')} WHERE ${list.sql}`, [owner, d.encode('ms', now + leaseMs), list.param]);
      }
      return claimed;
    });
  }

  async delivered(id: string, owner: string, now: number): Promise<boolean> {
    const d = this.d;
    const n = await d.session((c) =>
      c.run(
        `UPDATE outbox SET status = 'delivered', delivered_at = ${d.bind('ms')}, lease_owner = NULL, lease_until = NULL
         WHERE id = ? AND status = 'pending' AND lease_owner = ?`,
        [d.encode('ms', now), id, owner],
      ),
    );
    return n > 0;
  }

  async retryLater(id: string, owner: string, error: string, nextAttemptAt: number, countAttempt: boolean): Promise<void> {
    const d = this.d;
    await d.session((c) =>
      c.run(
        `UPDATE outbox SET attempts = attempts + ?, last_error = coalesce(?, last_error), next_attempt_at = ${d.bind('ms')},
           lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?`,
        [countAttempt ? 1 : 0, countAttempt ? d.encode('text', error) : null, d.encode('ms', nextAttemptAt), id, owner],
      ),
    );
  }

  async giveUp(id: string, owner: string, error: string): Promise<void> {
    await this.d.session((c) =>
      c.run(
        `UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, lease_owner = NULL, lease_until = NULL
         WHERE id = ? AND lease_owner = ?`,
        [this.d.encode('text', error), id, owner],
      ),
    );
  }

  async nextDue(provider: string): Promise<number | undefined> {
    const d = this.d;
    const due = `(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END)`;
    const rows = await d.session((c) =>
      c.all<{ at: unknown }>(`SELECT ${d.select('ms', `min${due}`)} AS at FROM outbox o WHERE provider = ? AND status = 'pending' AND ${HEAD}`, [provider]),
    );
    const at = rows[0]?.at;
    return at === null || at === undefined ? undefined : (d.decode('ms', at) as number);
  }
}

/** The store's non-transactional alerting operations (silences, the outbox dump, pruning). */
export function alertQueries(d: Dialect) {
  return {
    async addSilence(s: Silence): Promise<void> {
      await d.transaction([], (c) =>
        d.insertMany(c, 'silences', SILENCE, [[s.id, s.vm, s.check ?? null, s.starts_at, s.ends_at, s.reason, s.created_by ?? null, s.created_at]]),
      );
    },
    silences(now: number, includeEnded = false): Promise<Silence[]> {
      return d.session((c) => silencesOn(d, c, now, includeEnded));
    },
    async removeSilence(id: string): Promise<boolean> {
      return (await d.transaction([], (c) => c.run('DELETE FROM silences WHERE id = ?', [id]))) > 0;
    },
    async outboxRows(q: OutboxQuery = {}): Promise<OutboxRow[]> {
      const rows = await d.session((c) =>
        c.all(
          `SELECT ${selectList(d, 'outbox', OUTBOX_READ)} FROM outbox${q.status ? ' WHERE status = ?' : ''} ORDER BY seq DESC LIMIT ?`,
          [...(q.status ? [q.status] : []), q.limit ?? 100],
        ),
      );
      return rows.map((r) => toOutboxRow(decodeRow(d, OUTBOX_READ, r)));
    },
    /** Inside the store's prune transaction. */
    async prune(c: SqlConn, olderThanMs: number): Promise<number> {
      const t = [d.encode('ms', olderThanMs)];
      return (
        (await c.run(`DELETE FROM outbox WHERE created_at < ${d.bind('ms')}`, t)) +
        (await c.run(`DELETE FROM silences WHERE ends_at < ${d.bind('ms')}`, t)) +
        (await c.run(`DELETE FROM alert_states WHERE updated_at < ${d.bind('ms')} AND firing = ${d.bind('bool')}`, [...t, d.encode('bool', false)]))
      );
    },
  };
}

