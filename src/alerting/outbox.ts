/**
 * The outbox (the transactional-outbox pattern): each notification is written once per provider, in the same
 * store transaction as the transition that caused it, and delivered afterwards, with retries. A crash, a
 * provider that is down, or a cron run that ends first loses nothing; a lease on each claimed row keeps two
 * processes from delivering it twice. The store backends implement `Outbox`; `MemoryOutbox` serves
 * `health watch --no-store` and the tests.
 */
import type { AlertRoute } from '../config/schema.js';
import { routeNotification } from './routing.js';
import type { AlertNotification } from './types.js';

export type OutboxStatus = 'pending' | 'delivered' | 'failed';

export interface OutboxRow {
  /** `<notification id>:<provider>`: the delivery's id, stable across retries. */
  id: string;
  provider: string;
  /** Rows of one alert go to one provider in order: a later one waits for the earlier. */
  alert_key: string;
  notification: AlertNotification;
  /** ms */
  created_at: number;
  status: OutboxStatus;
  /** Failed attempts so far. */
  attempts: number;
  /** ms */
  next_attempt_at: number;
  last_error?: string;
  /** ms */
  delivered_at?: number;
}

export type NewOutboxRow = Pick<OutboxRow, 'id' | 'provider' | 'alert_key' | 'notification' | 'created_at'>;

/** One row per notification and provider its routes pick. */
export function outboxRows(notifications: readonly AlertNotification[], routes: readonly AlertRoute[], providers: readonly string[], now: number): NewOutboxRow[] {
  return notifications.flatMap((n) =>
    routeNotification(n, routes, providers).map((provider) => ({ id: `${n.id}:${provider}`, provider, alert_key: n.alert_key, notification: n, created_at: now })),
  );
}

export interface Outbox {
  /**
   * Lease up to `limit` rows of this provider that are due: pending, `next_attempt_at` passed, not leased by a
   * live owner, and with no older pending row of the same alert (order). Atomic across processes.
   */
  claim(provider: string, owner: string, now: number, leaseMs: number, limit: number): Promise<OutboxRow[]>;
  /** The row went out. False when this owner's lease was lost (another process may deliver it again). */
  delivered(id: string, owner: string, now: number): Promise<boolean>;
  /** Try again at `nextAttemptAt`; `countAttempt` false for rows not tried because an earlier one failed. */
  retryLater(id: string, owner: string, error: string, nextAttemptAt: number, countAttempt: boolean): Promise<void>;
  /** Give up: the row stays, `failed`, with its last error (visible in the dump). */
  giveUp(id: string, owner: string, error: string): Promise<void>;
  /** The earliest `next_attempt_at` of this provider's pending rows (a leased row: its lease's end). */
  nextDue(provider: string): Promise<number | undefined>;
}

interface Lease {
  owner: string;
  until: number;
}

/** The outbox in memory: one process, same semantics. */
export class MemoryOutbox implements Outbox {
  readonly rows: OutboxRow[] = [];
  readonly #leases = new Map<string, Lease>();

  insert(rows: readonly NewOutboxRow[]): void {
    for (const r of rows) {
      if (this.rows.some((x) => x.id === r.id)) continue;
      this.rows.push({ ...r, status: 'pending', attempts: 0, next_attempt_at: r.created_at });
    }
  }

  async claim(provider: string, owner: string, now: number, leaseMs: number, limit: number): Promise<OutboxRow[]> {
    const out: OutboxRow[] = [];
    const blocked = new Set<string>();
    for (const r of this.rows) {
      if (r.provider !== provider || r.status !== 'pending') continue;
      const first = !blocked.has(r.alert_key);
      blocked.add(r.alert_key);
      const lease = this.#leases.get(r.id);
      if (!first || r.next_attempt_at > now || (lease && lease.until > now)) continue;
      this.#leases.set(r.id, { owner, until: now + leaseMs });
      out.push({ ...r });
      if (out.length >= limit) break;
    }
    return out;
  }

  #mine(id: string, owner: string): OutboxRow | undefined {
    const lease = this.#leases.get(id);
    if (!lease || lease.owner !== owner) return undefined;
    this.#leases.delete(id);
    return this.rows.find((r) => r.id === id);
  }

  async delivered(id: string, owner: string, now: number): Promise<boolean> {
    const r = this.#mine(id, owner);
    if (!r) return false;
    r.status = 'delivered';
    r.delivered_at = now;
    return true;
  }

  async retryLater(id: string, owner: string, error: string, nextAttemptAt: number, countAttempt: boolean): Promise<void> {
    const r = this.#mine(id, owner);
    if (!r) return;
    if (countAttempt) {
      r.attempts++;
      r.last_error = error;
    }
    r.next_attempt_at = nextAttemptAt;
  }

  async giveUp(id: string, owner: string, error: string): Promise<void> {
    const r = this.#mine(id, owner);
    if (!r) return;
    r.status = 'failed';
    r.attempts++;
    r.last_error = error;
  }

  async nextDue(provider: string): Promise<number | undefined> {
    let next: number | undefined;
    for (const r of this.rows) {
      if (r.provider !== provider || r.status !== 'pending') continue;
      const at = Math.max(r.next_attempt_at, this.#leases.get(r.id)?.until ?? 0);
      next = next === undefined ? at : Math.min(next, at);
    }
    return next;
  }

  /** Drop delivered and failed rows (memory stays bounded under a long `watch --no-store`). */
  compact(): void {
    for (let i = this.rows.length - 1; i >= 0; i--) if (this.rows[i]!.status !== 'pending') this.rows.splice(i, 1);
  }
}
