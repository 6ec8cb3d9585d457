/**
 * Deadlines of checks started together (src/engine/run-checks.ts): checks with the same timeout share one deadline,
 * yet each keeps exactly its own; results come as they finish; nothing is left running. The probes are plugin probes,
 * the product's own way to add a probe type, so each can be told how to behave.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../src/config/schema.js';
import { runChecks } from '../../src/engine/run-checks.js';
import { registerProbe, unregisterProbes } from '../../src/probes/plugins.js';
import type { ProbeTarget } from '../../src/probes/types.js';
import type { CheckResult } from '../../src/report.js';
import { TransportError } from '../../src/transport/types.js';

afterEach(() => unregisterProbes());

const target: ProbeTarget = {
  vm: 'vm-1',
  address: '127.0.0.1',
  exec: () => Promise.reject(new TransportError('VM vm-1: no SSH in this test', 'refused')),
  connect: () => Promise.reject(new TransportError('VM vm-1: no SSH in this test', 'refused')),
};

/** `answer` ms after it starts, HEALTHY; without it, it waits for its signal (a service that never answers). */
beforeEach(() => registerProbe('after', {
  schema: (z) => ({ answer: z.number().optional() }),
  run: (c, _t, signal) =>
    new Promise((resolve, reject) => {
      const { answer } = c as unknown as { answer?: number };
      const timer = answer === undefined ? undefined : setTimeout(() => resolve({ status: 'HEALTHY', message: `answered after ${answer}ms` }), answer);
      signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
    }),
}));

const check = (name: string, timeout: number, answer?: number) =>
  ({ name, type: 'after', timeout, critical: false, ...(answer === undefined ? {} : { answer }) }) as unknown as HealthCheck;

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('checks started together', () => {
  it('share a deadline per timeout, yet each check keeps its own; results come as they finish; no timer is left', async () => {
    const before = timers();
    const order: string[] = [];
    const t0 = performance.now();
    const at: Record<string, number> = {};
    const running = Promise.all(
      runChecks(
        [
          check('fast', 1500, 50), // same timeout as `hangs`: finishes long before that deadline
          check('short', 300), // its own 300 ms deadline passes
          check('mid', 1500, 700), // answers after `short`'s deadline: not cut by it
          check('hangs', 1500), // its (shared) 1.5 s deadline passes
        ],
        () => target,
        new AbortController().signal,
        (r: CheckResult) => {
          order.push(r.name);
          at[r.name] = performance.now() - t0;
          return r;
        },
      ),
    );
    // Two timeouts, two deadlines: a deadline and a backstop timer each (4), not two per check (8); besides them each
    // plugin check's own grace timer (4) and the two answers (2).
    expect(timers() - before).toBe(10);
    const results = await running;
    const by = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(order).toEqual(['fast', 'short', 'mid', 'hangs']);
    expect(by.fast).toMatchObject({ status: 'HEALTHY', message: 'answered after 50ms' });
    expect(by.short).toMatchObject({ status: 'UNHEALTHY', message: 'after did not finish within 300ms' });
    expect(by.mid).toMatchObject({ status: 'HEALTHY', message: 'answered after 700ms' });
    expect(by.hangs).toMatchObject({ status: 'UNHEALTHY', message: 'after did not finish within 1.5s' });
    expect(at.fast!).toBeLessThan(280);
    expect(at.short!).toBeGreaterThanOrEqual(290);
    expect(at.hangs!).toBeGreaterThanOrEqual(1490);
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it('a cancelled run says so (UNKNOWN), a check already HEALTHY keeps its result', async () => {
    const parent = new AbortController();
    setTimeout(() => parent.abort(new Error('stop')), 200);
    const results = await Promise.all(runChecks([check('quick', 2000, 20), check('slow', 2000)], () => target, parent.signal, (r) => r));
    expect(results.map((r) => [r.name, r.status, r.message])).toEqual([
      ['quick', 'HEALTHY', 'answered after 20ms'],
      ['slow', 'UNKNOWN', 'cancelled before it finished'],
    ]);
  });

  it('a dozen checks on one deadline draw no listener-leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const checks = Array.from({ length: 12 }, (_, i) => check(`c${i}`, 1000, 10));
      const results = await Promise.all(runChecks(checks, () => target, new AbortController().signal, (r) => r));
      expect(results.every((r) => r.status === 'HEALTHY')).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
