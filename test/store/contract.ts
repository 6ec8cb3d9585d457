/**
 * The one store test suite, run against every backend (sqlite.test.ts, postgres.test.ts): what any HealthStore
 * must do, including under concurrent writers in separate OS processes and a writer killed with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ActionGuard, policyFromVms } from '../../src/engine/state.js';
import { openStore } from '../../src/store/index.js';
import type { HealthStore } from '../../src/store/types.js';
import type { CheckResult, HealthStatus, VMHealthReport } from '../../src/report.js';
import { transpileClosure } from './transpile.js';

export interface ContractTarget {
  /** A spec for `openStore` naming a new, empty store. */
  newSpec(): Promise<string>;
  /** "ok" when the store behind `spec` is sound (run after its writers are gone). */
  integrity(spec: string): Promise<string>;
}

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const MIN = 60_000;

export function check(name: string, status: HealthStatus, ts: number, extra: Partial<CheckResult> = {}): CheckResult {
  return {
    name,
    type: 'http',
    status,
    timestamp: new Date(ts).toISOString(),
    duration_ms: 12.5,
    message: status === 'HEALTHY' ? 'HTTP 200 in 12ms' : 'connect ECONNREFUSED 127.0.0.1:80',
    critical: true,
    transport: 'ssh-tunnel',
    details: { url: 'http://localhost/health', status_code: status === 'HEALTHY' ? 200 : null },
    ...extra,
  };
}

export function report(vm: string, checks: CheckResult[]): VMHealthReport {
  return {
    vm_name: vm,
    overall_status: 'HEALTHY',
    timestamp: checks[0]?.timestamp ?? new Date(T0).toISOString(),
    duration_ms: 20,
    checks,
    counts: { total: checks.length, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 },
    total_checks: checks.length,
    healthy_checks: 0,
    unhealthy_checks: 0,
    degraded_checks: 0,
  };
}

function runChild(args: Record<string, unknown>): { child: ChildProcess; lines: () => number; done: Promise<number | null> } {
  const child = spawn(process.execPath, [resolve(import.meta.dirname, 'writer-child.mjs'), JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let count = 0;
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (count += b.toString().split('\n').length - 1));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<number | null>((res, rej) =>
    child.on('exit', (code, signal) => (code === 0 || signal ? res(code) : rej(new Error(`writer exited ${code}: ${stderr}`)))),
  );
  return { child, lines: () => count, done };
}

export function storeContract(name: string, target: () => ContractTarget): void {
  describe(`HealthStore contract: ${name}`, () => {
    const open: HealthStore[] = [];
    let spec = '';
    const fresh = async (options = {}) => {
      spec = await target().newSpec();
      const s = await openStore(spec, { retentionMs: 0, ...options });
      open.push(s);
      return s;
    };
    const reopen = async (options = {}) => {
      const s = await openStore(spec, { retentionMs: 0, ...options });
      open.push(s);
      return s;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
    });

    it('records results and reads them back, in order, filtered by VM, check and time', async () => {
      const store = await fresh();
      const unicode = 'ответ «ok» ✓ — 200';
      await store.recordRound([
        report('web-1', [check('http', 'HEALTHY', T0, { message: unicode, details: { nested: { a: [1, 'two', null] } } }), check('tcp', 'UNHEALTHY', T0 + 1)]),
        report('db-1', [check('http', 'HEALTHY', T0)]),
      ]);
      await store.recordRound([report('web-1', [check('http', 'DEGRADED', T0 + MIN)])]);

      const rows = await store.history({ vm: 'web-1', sinceMs: 0 });
      expect(rows.map((r) => [r.check, r.status, r.ts])).toEqual([
        ['http', 'HEALTHY', T0],
        ['tcp', 'UNHEALTHY', T0 + 1],
        ['http', 'DEGRADED', T0 + MIN],
      ]);
      expect(rows[0]).toEqual({
        ts: T0,
        vm: 'web-1',
        check: 'http',
        type: 'http',
        status: 'HEALTHY',
        state: null,
        duration_ms: 12.5,
        message: unicode,
        details: { nested: { a: [1, 'two', null] } },
      });
      expect(await store.history({ vm: 'web-1', sinceMs: 0, check: 'http' })).toHaveLength(2);
      expect(await store.history({ vm: 'web-1', sinceMs: T0 + 2, untilMs: T0 + MIN + 1 })).toHaveLength(1);
      expect(await store.history({ vm: 'nope', sinceMs: 0 })).toEqual([]);
      expect(await store.knownVms()).toEqual(['db-1', 'web-1']);
    });

    it('never stores headers, and keeps only scalars of oversized details', async () => {
      const store = await fresh();
      const huge = { body: 'x'.repeat(40_000), status_code: 200, url: 'http://localhost/health' };
      await store.advanceRound({
        reports: [
          report('web-1', [
            check('http', 'HEALTHY', T0, { details: { status_code: 200, headers: { Authorization: 'Bearer s3cret' }, request_headers: { Cookie: 'a=b' } } }),
            check('big', 'HEALTHY', T0, { details: huge }),
          ]),
        ],
      });
      const rows = await store.history({ vm: 'web-1', sinceMs: 0 });
      expect(rows.find((r) => r.check === 'http')!.details).toEqual({ status_code: 200 });
      expect(rows.find((r) => r.check === 'big')!.details).toEqual({ status_code: 200, url: 'http://localhost/health', details_truncated: true });
    });

    it('saves and loads check states exactly', async () => {
      const store = await fresh();
      const s = {
        state: 'UNHEALTHY' as const,
        hard: false,
        consecutive_failures: 0,
        consecutive_successes: 1,
        last_result_status: 'HEALTHY' as const,
        last_result_at: new Date(T0 + 1234).toISOString(),
        last_change: new Date(T0).toISOString(),
        last_message: 'HTTP 200',
      };
      await store.saveStates(new Map([['web-1', new Map([['http', s]])]]));
      await store.saveStates(new Map([['web-1', new Map([['tcp', { ...s, hard: true }]])]]));
      const loaded = await store.loadStates(['web-1', 'other']);
      expect(loaded.get('web-1')?.get('http')).toEqual(s);
      expect(loaded.get('web-1')?.get('tcp')).toEqual({ ...s, hard: true });
      expect(loaded.has('other')).toBe(false);
      expect((await store.loadStates([])).size).toBe(0);
    });

    it('cron: separate runs reach UNHEALTHY at the third failure, act once, and recover', async () => {
      await fresh();
      const policy = policyFromVms([{ name: 'web-1', checks: [{ name: 'http', failure_threshold: 3, success_threshold: 2, on_failure: 'systemctl restart nginx', on_recovery: 'logger recovered' }] }]);
      const seen: string[] = [];
      const fired: string[] = [];
      const history: HealthStatus[] = ['UNHEALTHY', 'UNHEALTHY', 'UNKNOWN', 'UNHEALTHY', 'UNHEALTHY', 'HEALTHY', 'HEALTHY'];
      for (const [i, status] of history.entries()) {
        const store = await reopen(); // a new process each minute, as from cron
        const out = await store.advanceRound({ reports: [report('web-1', [check('http', status, T0 + i * MIN)])], policy, now: T0 + i * MIN });
        seen.push(out.reports[0]!.checks[0]!.status);
        for (const a of out.actions) {
          fired.push(`${a.kind}@${i}:${a.allowed}`);
          await store.finishAction(a.id, { status: 'ok', exit_code: 0, output: 'done', duration_ms: 50, finished_ts: T0 + i * MIN + 50 });
        }
        await store.close();
      }
      expect(seen).toEqual(['DEGRADED', 'DEGRADED', 'UNKNOWN', 'UNHEALTHY', 'UNHEALTHY', 'UNHEALTHY', 'HEALTHY']);
      expect(fired).toEqual(['on_failure@3:true', 'on_recovery@6:true']);

      const store = await reopen();
      const transitions = await store.transitions({ vm: 'web-1', sinceMs: 0 });
      expect(transitions.map((t) => [t.from, t.to, t.hard, t.ts])).toEqual([
        [null, 'DEGRADED', false, T0],
        ['DEGRADED', 'UNHEALTHY', true, T0 + 3 * MIN],
        ['UNHEALTHY', 'HEALTHY', true, T0 + 6 * MIN],
      ]);
      const rows = await store.history({ vm: 'web-1', sinceMs: 0 });
      expect(rows.map((r) => r.state)).toEqual(['DEGRADED', 'DEGRADED', 'DEGRADED', 'UNHEALTHY', 'UNHEALTHY', 'UNHEALTHY', 'HEALTHY']);
      expect(rows.map((r) => r.status)).toEqual(history);
      const actions = await store.actions({ vm: 'web-1', sinceMs: 0 });
      expect(actions).toEqual([
        { id: actions[0]!.id, ts: T0 + 3 * MIN, vm: 'web-1', check: 'http', action: 'on_failure', command: 'systemctl restart nginx', status: 'ok', exit_code: 0, output: 'done', duration_ms: 50, finished_ts: T0 + 3 * MIN + 50 },
        { id: actions[1]!.id, ts: T0 + 6 * MIN, vm: 'web-1', check: 'http', action: 'on_recovery', command: 'logger recovered', status: 'ok', exit_code: 0, output: 'done', duration_ms: 50, finished_ts: T0 + 6 * MIN + 50 },
      ]);
      const state = (await store.loadStates(['web-1'])).get('web-1')!.get('http')!;
      expect(state).toMatchObject({ state: 'HEALTHY', hard: true, consecutive_successes: 2, last_change: new Date(T0 + 6 * MIN).toISOString() });
    });

    it('the action guard holds across runs: a flapping check restarts at most 3 times per 10 minutes', async () => {
      const store = await fresh();
      const policy = policyFromVms([{ name: 'web-1', checks: [{ name: 'http', failure_threshold: 1, success_threshold: 1, on_failure: 'systemctl restart nginx' }] }]);
      const guard = new ActionGuard({ max_runs: 3, window_ms: 10 * MIN });
      const outcomes: string[] = [];
      for (let i = 0; i < 10; i++) {
        const status: HealthStatus = i % 2 === 0 ? 'UNHEALTHY' : 'HEALTHY';
        const out = await store.advanceRound({ reports: [report('web-1', [check('http', status, T0 + i * MIN)])], policy, guard, now: T0 + i * MIN });
        for (const a of out.actions) outcomes.push(`${i}:${a.allowed ? 'run' : 'suppressed'}`);
      }
      // Failures at minutes 0, 2, 4, 6, 8: three runs, then suppressed until minute 10.
      expect(outcomes).toEqual(['0:run', '2:run', '4:run', '6:suppressed', '8:suppressed']);
      const rows = await store.actions({ vm: 'web-1', sinceMs: 0 });
      expect(rows.map((r) => r.status)).toEqual(['pending', 'pending', 'pending', 'suppressed', 'suppressed']);
      expect(rows[3]!.reason).toMatch(/^on_failure suppressed: it already ran 3 times in the last 10m/);
      // Suppressed attempts do not count: at minute 10 the run from minute 0 has left the window.
      const out = await store.advanceRound({ reports: [report('web-1', [check('http', 'UNHEALTHY', T0 + 10 * MIN)])], policy, guard, now: T0 + 10 * MIN + 1 });
      expect(out.actions.map((a) => a.allowed)).toEqual([true]);
    });

    it('prunes by age, and applies retention automatically at most once an hour', async () => {
      const store = await fresh();
      const policy = policyFromVms([{ name: 'web-1', checks: [{ name: 'http', failure_threshold: 1, success_threshold: 1, on_failure: 'true' }] }]);
      for (let day = 0; day < 5; day++) {
        const t = T0 + day * 86_400_000;
        await store.advanceRound({ reports: [report('web-1', [check('http', day % 2 ? 'HEALTHY' : 'UNHEALTHY', t)])], policy, now: t });
      }
      const counts = await store.prune(T0 + 2 * 86_400_000);
      expect(counts).toEqual({ results: 2, transitions: 2, actions: 1, states: 0, alerting: 0 });
      expect((await store.history({ vm: 'web-1', sinceMs: 0 })).map((r) => r.ts)).toEqual([2, 3, 4].map((d) => T0 + d * 86_400_000));
      expect(await store.prune(T0 + 10 * 86_400_000)).toEqual({ results: 3, transitions: 3, actions: 2, states: 1, alerting: 0 });

      // Automatic: a process's first write prunes (after its own insert); the next one within the hour does not.
      const auto = await reopen({ retentionMs: 86_400_000 });
      const now = Date.now();
      await auto.recordRound([report('web-2', [check('http', 'HEALTHY', now - 2 * 86_400_000), check('tcp', 'HEALTHY', now)])]);
      expect((await auto.history({ vm: 'web-2', sinceMs: 0 })).map((r) => r.check)).toEqual(['tcp']);
      await auto.recordRound([report('web-2', [check('http', 'HEALTHY', now - 2 * 86_400_000)])]);
      await auto.advanceRound({ reports: [report('web-2', [check('http', 'HEALTHY', now + 1000)])] });
      expect(await auto.history({ vm: 'web-2', sinceMs: 0 })).toHaveLength(3);
    });

    it('in one process, separate connections advancing the same check lose no update', async () => {
      await fresh();
      const stores = await Promise.all(Array.from({ length: 4 }, () => reopen()));
      const perStore = 25;
      await Promise.all(
        stores.map(async (s, k) => {
          for (let i = 0; i < perStore; i++) {
            await s.advanceRound({ reports: [report('web-1', [check('http', 'UNHEALTHY', T0 + k * 1000 + i)])] });
          }
        }),
      );
      const state = (await stores[0]!.loadStates(['web-1'])).get('web-1')!.get('http')!;
      expect(state.consecutive_failures).toBe(4 * perStore);
      expect(await stores[0]!.history({ vm: 'web-1', sinceMs: 0 })).toHaveLength(4 * perStore);
      // Exactly one transition to UNHEALTHY, however the rounds interleaved. The rows are ordered by
      // the results' own timestamps, which concurrent writers commit out of order: compare as a set.
      expect((await stores[0]!.transitions({ vm: 'web-1', sinceMs: 0 })).map((t) => t.to).sort()).toEqual(['DEGRADED', 'UNHEALTHY']);
    });

    describe('separate OS processes', () => {
      let module = '';
      let built = '';
      beforeAll(() => {
        built = transpileClosure(['src/store/index.ts']);
        module = resolve(built, 'src/store/index.js');
      });
      afterAll(() => rmSync(built, { recursive: true, force: true }));

      it('4 writer processes × 50 rounds on one check: no lost update, one action, a sound store', async () => {
        await fresh();
        const writers = Array.from({ length: 4 }, () => runChild({ module, spec, vm: 'web-1', check: 'http', count: 50, status: 'UNHEALTHY' }));
        await Promise.all(writers.map((w) => w.done));
        const store = await reopen();
        const state = (await store.loadStates(['web-1'])).get('web-1')!.get('http')!;
        expect(state.consecutive_failures).toBe(200);
        expect(state.state).toBe('UNHEALTHY');
        const rows = await store.history({ vm: 'web-1', sinceMs: 0 });
        expect(rows).toHaveLength(200);
        expect(new Set(rows.map((r) => r.message)).size).toBe(200);
        expect((await store.transitions({ vm: 'web-1', sinceMs: 0 })).map((t) => t.to)).toEqual(['DEGRADED', 'UNHEALTHY']);
        await store.close();
        expect(await target().integrity(spec)).toBe('ok');
      }, 60_000);

      it('a writer killed with SIGKILL mid-loop leaves a consistent store', async () => {
        await fresh();
        for (let round = 0; round < 3; round++) {
          const killed = runChild({ module, spec, vm: 'web-1', check: 'http', count: -1, status: 'UNHEALTHY' });
          const steady = runChild({ module, spec, vm: 'web-1', check: 'http', count: 20, status: 'UNHEALTHY' });
          // Kill while it is busy writing: after a few committed rounds, at a moment of its own choosing.
          const want = 10 + round * 7;
          while (killed.lines() < want) await new Promise((r) => setTimeout(r, 2));
          killed.child.kill('SIGKILL');
          await killed.done;
          await steady.done;
        }
        const store = await reopen();
        const state = (await store.loadStates(['web-1'])).get('web-1')!.get('http')!;
        const rows = await store.history({ vm: 'web-1', sinceMs: 0 });
        // Every committed round moved the state and wrote its result together; no half-written round.
        expect(state.consecutive_failures).toBe(rows.length);
        expect(rows.length).toBeGreaterThanOrEqual(3 * 20 + 10 + 17 + 24);
        // A further write works.
        await store.advanceRound({ reports: [report('web-1', [check('http', 'HEALTHY', Date.now())])] });
        await store.close();
        expect(await target().integrity(spec)).toBe('ok');
      }, 60_000);
    });

    it('measures a round of 100 VMs × 5 checks', async () => {
      const store = await fresh();
      const reports = (t: number) =>
        Array.from({ length: 100 }, (_, v) =>
          report(`vm-${String(v).padStart(3, '0')}`, ['http', 'tcp', 'disk', 'memory', 'ssh'].map((c) => check(c, 'HEALTHY', t))),
        );
      const time = async (fn: (i: number) => Promise<unknown>) => {
        const samples: number[] = [];
        for (let i = 0; i < 7; i++) {
          const t0 = performance.now();
          await fn(i);
          samples.push(performance.now() - t0);
        }
        samples.sort((a, b) => a - b);
        return `${samples[3]!.toFixed(1)} ms (best ${samples[0]!.toFixed(1)})`;
      };
      const record = await time((i) => store.recordRound(reports(T0 + i * MIN)));
      const advance = await time((i) => store.advanceRound({ reports: reports(T0 + (10 + i) * MIN), now: T0 + (10 + i) * MIN }));
      const read = await time(() => store.history({ vm: 'vm-050', sinceMs: 0 }));
      console.log(`[${name}] 100 VMs × 5 checks, median of 7: recordRound ${record}, advanceRound ${advance}, history of 1 VM ${read}`);
    });
  });
}
