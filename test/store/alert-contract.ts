/**
 * The alerting half of the store contract, run against SQLite and PostgreSQL: notifications written to the outbox
 * in the round's own transaction, alert states kept across opens, silences, and the outbox's lease (concurrent
 * claimers get disjoint rows; a provider hears one alert's notifications in order).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ALERT_SETTINGS } from '../../src/alerting/decide.js';
import { alertPolicyFromVms } from '../../src/alerting/inputs.js';
import { policyFromVms } from '../../src/engine/state.js';
import { openStore } from '../../src/store/index.js';
import type { HealthStore, RoundAlerting } from '../../src/store/types.js';
import { check, report } from './contract.js';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const MIN = 60_000;

const checks = [{ name: 'http', tags: ['web'], failure_threshold: 1, on_failure: 'systemctl restart nginx' }];
const policy = policyFromVms([{ name: 'web-1', checks }]);
const alerting: RoundAlerting = {
  settings: { ...DEFAULT_ALERT_SETTINGS, repeatIntervalMs: 0 },
  policy: alertPolicyFromVms([{ name: 'web-1', checks }]),
  routes: [],
  providers: ['hook', 'mail'],
};

export function alertStoreContract(name: string, newSpec: () => Promise<string>): void {
  describe(`HealthStore alerting contract: ${name}`, () => {
    const open: HealthStore[] = [];
    let spec = '';
    const fresh = async () => {
      spec = await newSpec();
      const s = await openStore(spec, { retentionMs: 0 });
      open.push(s);
      return s;
    };
    const another = async () => {
      const s = await openStore(spec, { retentionMs: 0 });
      open.push(s);
      return s;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
    });
    const round = (store: HealthStore, status: 'HEALTHY' | 'UNHEALTHY', t: number) =>
      store.advanceRound({ reports: [report('web-1', [check('http', status, t)])], policy, alerting, now: t });

    it('writes a notification per provider to the outbox in the round that makes the hard transition, and keeps alert states', async () => {
      const store = await fresh();
      expect((await round(store, 'HEALTHY', T0)).notifications).toEqual([]);
      const fired = await round(store, 'UNHEALTHY', T0 + MIN);
      expect(fired.notifications.map((n) => [n.event, n.alert_key, n.state, n.status])).toEqual([['firing', 'web-1/http', 'UNHEALTHY', 'firing']]);
      // Still failing: nothing more (no repeat configured).
      expect((await round(store, 'UNHEALTHY', T0 + 2 * MIN)).notifications).toEqual([]);
      // A second handle (another process) sees the same alert state: recovery resolves, once.
      const other = await another();
      const resolved = await round(other, 'HEALTHY', T0 + 3 * MIN);
      expect(resolved.notifications.map((n) => [n.event, n.previous_state, n.state])).toEqual([['resolved', 'UNHEALTHY', 'HEALTHY']]);

      const rows = (await store.outboxRows()).reverse();
      expect(rows.map((r) => [r.notification.event, r.provider, r.status, r.attempts])).toEqual([
        ['firing', 'hook', 'pending', 0],
        ['firing', 'mail', 'pending', 0],
        ['resolved', 'hook', 'pending', 0],
        ['resolved', 'mail', 'pending', 0],
      ]);
      expect(rows[0]!.id).toBe(`${fired.notifications[0]!.id}:hook`);
      expect(rows[0]!.notification).toEqual(fired.notifications[0]);
    });

    it('claims each due row once across handles, in order per alert, with retries and give-up', async () => {
      const store = await fresh();
      const other = await another();
      await round(store, 'UNHEALTHY', T0);
      await round(store, 'HEALTHY', T0 + MIN);
      const now = T0 + 2 * MIN;
      // Two claimers at once: disjoint, and only the head of each alert (the firing), never the resolved before it.
      const [a, b] = await Promise.all([store.outbox.claim('hook', 'A', now, 30_000, 10), other.outbox.claim('hook', 'B', now, 30_000, 10)]);
      const claimed = [...a, ...b];
      expect(claimed.map((r) => r.notification.event)).toEqual(['firing']);
      const [mine, owner] = a.length ? [a[0]!, 'A'] : [b[0]!, 'B'];
      // Leased: nobody else gets it, and the resolved waits behind it.
      expect(await store.outbox.claim('hook', 'C', now + 1000, 30_000, 10)).toEqual([]);
      expect(await store.outbox.nextDue('hook')).toBe(now + 30_000);
      // A failure: back off, counted; the lease is gone.
      await store.outbox.retryLater(mine.id, owner, 'HTTP 503', now + 5000, true);
      expect(await store.outbox.claim('hook', 'C', now + 4000, 30_000, 10)).toEqual([]);
      expect(await store.outbox.nextDue('hook')).toBe(now + 5000);
      const again = await store.outbox.claim('hook', 'C', now + 5000, 30_000, 10);
      expect(again.map((r) => [r.id, r.attempts])).toEqual([[mine.id, 1]]);
      // The old owner's late answer does not count; the new owner's does.
      expect(await store.outbox.delivered(mine.id, owner, now + 5001)).toBe(false);
      expect(await store.outbox.delivered(mine.id, 'C', now + 5002)).toBe(true);
      const next = await other.outbox.claim('hook', 'D', now + 6000, 30_000, 10);
      expect(next.map((r) => r.notification.event)).toEqual(['resolved']);
      await other.outbox.giveUp(next[0]!.id, 'D', 'gone');
      expect(await store.outbox.nextDue('hook')).toBeUndefined();
      const rows = await store.outboxRows();
      expect(rows.filter((r) => r.provider === 'hook').map((r) => [r.notification.event, r.status, r.attempts, r.last_error ?? null])).toEqual([
        ['resolved', 'failed', 1, 'gone'],
        ['firing', 'delivered', 1, 'HTTP 503'],
      ]);
      // The other provider's rows are untouched.
      expect(rows.filter((r) => r.provider === 'mail').map((r) => r.status)).toEqual(['pending', 'pending']);
    });

    it('adds, lists and removes silences; a silenced check is recorded as such, fires nothing and runs no action', async () => {
      const store = await fresh();
      await store.addSilence({ id: 's1', vm: 'web-*', starts_at: T0, ends_at: T0 + 10 * MIN, reason: 'kernel upgrade', created_at: T0 });
      await store.addSilence({ id: 's2', vm: 'db-1', check: 'pg', starts_at: T0, ends_at: T0 + MIN, reason: 'old', created_at: T0 });
      expect((await store.silences(T0 + 2 * MIN)).map((s) => s.id)).toEqual(['s1']);
      expect((await store.silences(T0 + 2 * MIN, true)).map((s) => [s.id, s.check ?? null])).toEqual([
        ['s2', 'pg'],
        ['s1', null],
      ]);

      const out = await round(store, 'UNHEALTHY', T0 + MIN);
      expect(out.notifications).toEqual([]);
      expect(out.actions.map((a) => [a.allowed, a.reason])).toEqual([[false, expect.stringMatching(/silenced until .*s1: kernel upgrade/)]]);
      expect((await store.history({ vm: 'web-1', sinceMs: 0 }))[0]!.details.silenced).toEqual({ id: 's1', until: new Date(T0 + 10 * MIN).toISOString(), reason: 'kernel upgrade' });
      expect(await store.outboxRows()).toEqual([]);

      // Still failing when the silence ends: it fires then.
      expect((await round(store, 'UNHEALTHY', T0 + 11 * MIN)).notifications.map((n) => n.event)).toEqual(['firing']);
      expect(await store.removeSilence('s1')).toBe(true);
      expect(await store.removeSilence('s1')).toBe(false);
    });
  });
}
