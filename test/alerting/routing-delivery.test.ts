/** Routes (first match wins, `continue`, the rest to everyone) and the deliverer's retries over the in-memory outbox. */
import { describe, expect, it } from 'vitest';
import { backoffMs, Deliverer } from '../../src/alerting/delivery.js';
import { MemoryOutbox, outboxRows } from '../../src/alerting/outbox.js';
import { routeNotification } from '../../src/alerting/routing.js';
import { DeliveryError, PAYLOAD_VERSION, type AlertNotification, type NotificationProvider } from '../../src/alerting/types.js';
import { AlertingSettings } from '../../src/config/schema.js';

const routes = AlertingSettings.parse({
  providers: [
    { name: 'pager', type: 'webhook', url: 'http://127.0.0.1:1/p' },
    { name: 'chat', type: 'slack', url: 'http://127.0.0.1:1/c' },
    { name: 'audit', type: 'command', command: 'true' },
  ],
  routes: [
    { match: { tags: ['db'] }, providers: ['pager'], continue: true },
    { match: { vm: 'db-*' }, providers: ['audit'] },
    { match: { vm: ['web-*'], check: 'api-*' }, providers: ['chat', 'pager'] },
    { providers: ['chat'] },
  ],
}).routes;
const ALL = ['pager', 'chat', 'audit'];

describe('routes', () => {
  it.each<[string, { vm: string; check?: string; tags: string[] }, string[]]>([
    ['tag db → pager, and continue to the VM glob', { vm: 'db-1', check: 'pg', tags: ['db'] }, ['pager', 'audit']],
    ['a db-tagged check elsewhere: pager, then the catch-all', { vm: 'web-1', check: 'redis', tags: ['db'] }, ['pager', 'chat']],
    ['VM and check globs together', { vm: 'web-2', check: 'api-health', tags: [] }, ['chat', 'pager']],
    ['the rest → chat', { vm: 'web-2', check: 'disk', tags: [] }, ['chat']],
    ['a VM-level alert has no check: check routes skip it', { vm: 'web-2', tags: [] }, ['chat']],
  ])('%s', (_why, n, expected) => {
    expect(routeNotification(n, routes, ALL)).toEqual(expected);
  });

  it('no routes: every provider', () => expect(routeNotification({ vm: 'x', tags: [] }, [], ALL)).toEqual(ALL));
});

describe('backoff', () => {
  it('doubles from the initial wait and stops at the cap (jitter takes at most 10 % off)', () => {
    const p = { initialBackoffMs: 1000, maxBackoffMs: 30_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffMs(n, p, () => 0))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(backoffMs(3, p, () => 0.999)).toBeGreaterThanOrEqual(3600);
  });
});

function notification(key: string, event: 'firing' | 'resolved', at: number): AlertNotification {
  return {
    version: PAYLOAD_VERSION, id: `${key}-${event}-${at}`, event, status: event, alertname: 'CloneboxCheckFailing', alert_key: key, scope: 'check',
    vm: key.split('/')[0]!, check: key.split('/')[1]!, tags: [], severity: 'critical', state: event === 'firing' ? 'UNHEALTHY' : 'HEALTHY',
    previous_state: null, message: 'm', since: new Date(at).toISOString(), at: new Date(at).toISOString(), repeat: 0, links: {},
  };
}

/** An in-process receiver whose availability the test switches: what the deliverer does about failures, not HTTP. */
function receiver(name: string) {
  const got: string[] = [];
  let up = false;
  let calls = 0;
  const p: NotificationProvider = {
    name,
    type: 'webhook',
    timeoutMs: 1000,
    secrets: ['s3cret-token'],
    send: async (n) => {
      calls++;
      if (!up) throw new DeliveryError('HTTP 503 from https://hooks.example/s3cret-token');
      got.push(`${n.alert_key}:${n.event}`);
    },
  };
  return { p, got, setUp: (v: boolean) => (up = v), calls: () => calls };
}

describe('Deliverer', () => {
  it('retries with backoff while a provider is down, logs once per failure streak, keeps order, scrubs secrets', async () => {
    let now = 1_000_000;
    const outbox = new MemoryOutbox();
    const r = receiver('hook');
    const ok = receiver('ok');
    ok.setUp(true);
    const logs: string[] = [];
    const d = new Deliverer({ outbox, providers: [r.p, ok.p], retry: { initialBackoffMs: 1000, maxBackoffMs: 4000, giveUpAfterMs: 3_600_000 }, log: (m) => logs.push(m), now: () => now });
    outbox.insert(outboxRows([notification('web-1/api', 'firing', now)], [], ['hook', 'ok'], now));
    outbox.insert(outboxRows([notification('web-1/api', 'resolved', now + 1)], [], ['hook', 'ok'], now + 1));
    outbox.insert(outboxRows([notification('web-2/api', 'firing', now + 2)], [], ['hook', 'ok'], now + 2));
    now += 10;

    for (let i = 0; i < 6; i++) {
      await d.deliverDue();
      now += 5000;
    }
    // The healthy provider got everything at once, in order per alert; the down one nothing.
    expect(ok.got).toEqual(['web-1/api:firing', 'web-2/api:firing', 'web-1/api:resolved']);
    expect(r.got).toEqual([]);
    expect(logs.filter((l) => l.includes('failed'))).toHaveLength(1);
    expect(logs.join('\n')).not.toContain('s3cret-token');
    // Backed off: far fewer attempts than rounds × rows.
    const failedCalls = r.calls();
    expect(failedCalls).toBeLessThanOrEqual(6);

    r.setUp(true);
    now += 5000;
    await d.deliverDue();
    expect(r.got).toEqual(['web-1/api:firing', 'web-2/api:firing', 'web-1/api:resolved']);
    expect(logs.filter((l) => l.includes('delivers again'))).toHaveLength(1);
    // Nothing is delivered twice.
    await d.deliverDue();
    expect(r.got).toHaveLength(3);
    expect(ok.got).toHaveLength(3);
  });

  it('gives up after give_up_after and says so once', async () => {
    let now = 0;
    const outbox = new MemoryOutbox();
    const r = receiver('hook');
    const logs: string[] = [];
    const d = new Deliverer({ outbox, providers: [r.p], retry: { initialBackoffMs: 1000, maxBackoffMs: 1000, giveUpAfterMs: 5000 }, log: (m) => logs.push(m), now: () => now });
    outbox.insert(outboxRows([notification('web-1/api', 'firing', 0)], [], ['hook'], 0));
    for (let i = 0; i < 10; i++) {
      await d.deliverDue();
      now += 1000;
    }
    expect(outbox.rows[0]!.status).toBe('failed');
    expect(logs.filter((l) => l.startsWith('alerting: gave up'))).toHaveLength(1);
  });

  it('a hanging provider is cut at its timeout and never delays another', async () => {
    const outbox = new MemoryOutbox();
    const hang: NotificationProvider = { name: 'hang', type: 'webhook', timeoutMs: 300, secrets: [], send: (_n, signal) => new Promise((_, rej) => signal.addEventListener('abort', () => rej(new DeliveryError('no answer in time')))) };
    const fast = receiver('fast');
    fast.setUp(true);
    const order: string[] = [];
    const d = new Deliverer({ outbox, providers: [hang, fast.p], log: () => undefined, onDelivery: (x) => order.push(x.provider) });
    outbox.insert(outboxRows([notification('web-1/api', 'firing', Date.now())], [], ['hang', 'fast'], Date.now()));
    const records = await d.deliverDue();
    expect(records.find((x) => x.provider === 'hang')).toMatchObject({ ok: false, error: 'no answer in time' });
    expect(fast.got).toHaveLength(1);
    // The fast one was done while the hanging one still waited.
    expect(order).toEqual(['fast', 'hang']);
  });
});
