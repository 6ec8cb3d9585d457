/**
 * Delivering the outbox: one worker per provider, so a slow or hanging provider never delays another (nor the
 * checks: nothing here is awaited by a round). Each delivery has the provider's own deadline; a failure is retried
 * with capped exponential backoff until `give_up_after`; a failing provider is logged once per failure streak.
 */
import { randomBytes } from 'node:crypto';
import { formatDuration } from '../config/duration.js';
import { scrubSecrets } from '../util/redact.js';
import type { Outbox, OutboxRow } from './outbox.js';
import type { NotificationProvider } from './types.js';

export interface RetryPolicy {
  initialBackoffMs: number;
  maxBackoffMs: number;
  giveUpAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialBackoffMs: 5000, maxBackoffMs: 5 * 60_000, giveUpAfterMs: 24 * 3_600_000 };

/** Rows leased per claim; the lease covers delivering all of them one after another. */
const CLAIM_LIMIT = 20;
const LEASE_MARGIN_MS = 10_000;

/** The wait before attempt n+1 after n failed ones: initial · 2^(n-1), capped, with up to 10 % taken off (jitter). */
export function backoffMs(failures: number, p: Pick<RetryPolicy, 'initialBackoffMs' | 'maxBackoffMs'>, random = Math.random): number {
  const exp = p.initialBackoffMs * 2 ** Math.min(30, Math.max(0, failures - 1));
  const capped = Math.min(p.maxBackoffMs, exp);
  return Math.max(1, Math.round(capped * (1 - 0.1 * random())));
}

export interface DeliveryRecord {
  id: string;
  provider: string;
  event: string;
  alert_key: string;
  ok: boolean;
  /** Why not (secrets scrubbed). */
  error?: string;
  gaveUp?: boolean;
  duration_ms: number;
}

export interface DelivererOptions {
  outbox: Outbox;
  providers: readonly NotificationProvider[];
  retry?: RetryPolicy;
  /** One line for a person: provider failures (once per streak), recoveries, give-ups. */
  log: (msg: string) => void;
  /** Told about every attempt (watch's JSON lines, tests). */
  onDelivery?: (r: DeliveryRecord) => void;
  now?: () => number;
}

export class Deliverer {
  readonly owner = `${process.pid}-${randomBytes(4).toString('hex')}`;
  readonly #opts: DelivererOptions;
  readonly #retry: RetryPolicy;
  readonly #now: () => number;
  /** provider → the error that began its current failure streak. */
  readonly #failing = new Map<string, string>();
  #running: Promise<void> | undefined;
  #stopped = false;
  /** Aborts deliveries under way when the deliverer stops (Ctrl-C must not wait for a hanging provider). */
  readonly #stop = new AbortController();
  readonly #wakers = new Map<string, () => void>();

  constructor(opts: DelivererOptions) {
    this.#opts = opts;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    this.#now = opts.now ?? Date.now;
  }

  get providers(): readonly NotificationProvider[] {
    return this.#opts.providers;
  }

  /**
   * Every provider's due rows, delivered now; resolves when each provider is done. With `budgetMs` no delivery
   * starts after that long, so the whole call ends within the budget plus one provider timeout (cron runs).
   */
  async deliverDue(opts: { budgetMs?: number } = {}): Promise<DeliveryRecord[]> {
    const until = opts.budgetMs !== undefined ? performance.now() + opts.budgetMs : Infinity;
    const all = await Promise.all(this.#opts.providers.map((p) => this.#drain(p, until)));
    return all.flat();
  }

  /** Deliver one provider's due rows until none is left, it fails, or `until` (performance.now()) passes. */
  async #drain(p: NotificationProvider, until = Infinity): Promise<DeliveryRecord[]> {
    const out: DeliveryRecord[] = [];
    for (let pass = 0; pass < 1000 && !this.#stopped && performance.now() < until; pass++) {
      const now = this.#now();
      let rows: OutboxRow[];
      try {
        rows = await this.#opts.outbox.claim(p.name, this.owner, now, CLAIM_LIMIT * p.timeoutMs + LEASE_MARGIN_MS, CLAIM_LIMIT);
      } catch (err) {
        this.#opts.log(`alerting: cannot read the outbox for ${p.name}: ${(err as Error).message}`);
        return out;
      }
      if (rows.length === 0) return out;
      let failedAt: number | undefined;
      for (const row of rows) {
        if (failedAt === undefined && performance.now() >= until) failedAt = this.#now(); // out of time: leave it for the next run
        if (failedAt !== undefined) {
          // Not tried (an earlier notification to this provider just failed, or time is up): it waits, uncounted.
          await this.#opts.outbox.retryLater(row.id, this.owner, '', failedAt, false);
          continue;
        }
        const { record: r, retryAt } = await this.#deliverOne(p, row);
        out.push(r);
        this.#opts.onDelivery?.(r);
        if (retryAt !== undefined) failedAt = retryAt;
      }
      if (failedAt !== undefined) return out;
    }
    return out;
  }

  async #deliverOne(p: NotificationProvider, row: OutboxRow): Promise<{ record: DeliveryRecord; retryAt?: number }> {
    const t0 = performance.now();
    const base = { id: row.id, provider: p.name, event: row.notification.event, alert_key: row.alert_key };
    const signal = AbortSignal.any([AbortSignal.timeout(p.timeoutMs), this.#stop.signal]);
    try {
      await p.send(row.notification, signal);
    } catch (err) {
      const error = scrubSecrets((err as Error).message, p.secrets);
      const now = this.#now();
      if (this.#stopped) {
        // Cut short by stop(): not the provider's failure; the next run tries again at once.
        await this.#opts.outbox.retryLater(row.id, this.owner, '', now, false);
        return { record: { ...base, ok: false, error: 'stopped before it finished', duration_ms: Math.round(performance.now() - t0) } };
      }
      const failures = row.attempts + 1;
      if (!this.#failing.has(p.name)) {
        this.#failing.set(p.name, error);
        this.#opts.log(`alerting: provider ${p.name} failed: ${error}; retrying with backoff (at most every ${formatDuration(this.#retry.maxBackoffMs)})`);
      }
      if (now - row.created_at >= this.#retry.giveUpAfterMs) {
        await this.#opts.outbox.giveUp(row.id, this.owner, error);
        this.#opts.log(`alerting: gave up on ${row.notification.event} ${row.alert_key} to ${p.name} after ${failures} attempts: ${error}`);
        return { record: { ...base, ok: false, error, gaveUp: true, duration_ms: Math.round(performance.now() - t0) } };
      }
      const retryAt = now + backoffMs(failures, this.#retry);
      await this.#opts.outbox.retryLater(row.id, this.owner, error, retryAt, true);
      return { record: { ...base, ok: false, error, duration_ms: Math.round(performance.now() - t0) }, retryAt };
    }
    const still = await this.#opts.outbox.delivered(row.id, this.owner, this.#now());
    if (!still) this.#opts.log(`alerting: ${row.id} was delivered after its lease ran out; another run may deliver it again (same id)`);
    if (this.#failing.has(p.name)) {
      this.#failing.delete(p.name);
      this.#opts.log(`alerting: provider ${p.name} delivers again`);
    }
    return { record: { ...base, ok: true, duration_ms: Math.round(performance.now() - t0) } };
  }

  /** `health watch`: a worker per provider, delivering as rows become due, until `stop()`. */
  start(): void {
    if (this.#running) return;
    this.#running = Promise.all(this.#opts.providers.map((p) => this.#loop(p))).then(() => undefined);
  }

  /** New rows were written: deliver them now rather than at the next due time. */
  kick(): void {
    for (const w of [...this.#wakers.values()]) w();
  }

  async #loop(p: NotificationProvider): Promise<void> {
    while (!this.#stopped) {
      await this.#drain(p);
      if (this.#stopped) break;
      let next: number | undefined;
      try {
        next = await this.#opts.outbox.nextDue(p.name);
      } catch {
        next = undefined;
      }
      const wait = Math.max(50, Math.min(60_000, (next ?? Infinity) - this.#now()));
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, wait);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.#wakers.set(p.name, () => {
          this.#wakers.delete(p.name);
          done();
        });
      });
    }
  }

  /** Stop the workers; a delivery under way is cut short and left in the outbox, uncounted. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stop.abort(new Error('stopped'));
    this.kick();
    await this.#running;
  }
}
