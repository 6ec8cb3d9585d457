/**
 * `health check --store` from cron, and `health history`, through the real CLI against the lab:
 * thresholds count across separate processes, actions fire once on the hard transition (their
 * effect is seen inside the guest), overlapping runs neither corrupt nor double-count.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureLab, isRoot, labExec, labFault, REPO_ROOT, run, type Lab } from '../lab/lab.js';
import { labConfigYaml } from '../support/fleet-run.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: history tests skipped: the lab needs root (network namespaces)');

const clonebox = (args: string[]) => run('node', [BIN, ...args], { timeoutMs: 60_000 });

suite('stateful check and history', { timeout: 120_000 }, () => {
  const L = lab as Lab;
  afterAll(() => labFault('web-2', 'clear'));

  it('cron-style runs reach UNHEALTHY after failure_threshold runs, fire on_failure once, recover once', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-cron-'));
    const db = path.join(dir, 'health.db');
    const marker = `/tmp/clonebox-action-${process.pid}-${Date.now()}`;
    const config = path.join(dir, '.clonebox.yaml');
    await writeFile(
      config,
      labConfigYaml(L, [
        {
          name: 'api',
          type: 'http',
          critical: true,
          url: 'http://localhost:8080/health',
          failure_threshold: 3,
          on_failure: `echo fail >> ${marker}`,
          on_recovery: `echo recover >> ${marker}`,
          timeout: '2s',
        },
      ]),
    );
    const check = () => clonebox(['health', 'check', 'web-2', '--config', config, '--store', db, '--json']);
    const statusOf = (stdout: string) => JSON.parse(stdout).reports[0].checks[0].status as string;
    await labFault('web-2', 'stop', 'nginx');
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await check());
    expect(runs.map((r) => statusOf(r.stdout))).toEqual(['DEGRADED', 'DEGRADED', 'UNHEALTHY', 'UNHEALTHY']);
    expect(runs.map((r) => r.code)).toEqual([1, 1, 2, 2]);
    expect(JSON.parse(runs[0]!.stdout).reports[0].checks[0].message).toMatch(/soft: failing 1\/3/);
    expect(runs[2]!.stderr).toMatch(/action web-2\/api: on_failure .* ok/);
    expect((await labExec('web-2', `cat ${marker}`)).stdout).toBe('fail\n');

    await labFault('web-2', 'start', 'nginx');
    const back = await check();
    expect(statusOf(back.stdout)).toBe('HEALTHY');
    expect(back.code).toBe(0);
    expect((await labExec('web-2', `cat ${marker}; rm -f ${marker}`)).stdout).toBe('fail\nrecover\n');

    const h = await clonebox(['health', 'history', 'web-2', '--store', db, '--last', '1h']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/api/);
    expect(h.stdout).toMatch(/UNHEALTHY/);
    const json = JSON.parse((await clonebox(['health', 'history', 'web-2', '--store', db, '--last', '90m', '--json'])).stdout);
    expect(json.checks[0]).toMatchObject({ check: 'api', failures: 4, outages: 1 });
    expect(json.checks[0].transitions.map((t: { to: string }) => t.to)).toEqual(['DEGRADED', 'UNHEALTHY', 'HEALTHY']);

    // --probe is repeatable: the checks named, and only those.
    const some = JSON.parse((await clonebox(['health', 'history', 'web-2', '--store', db, '--probe', 'api', '--probe', 'other', '--json'])).stdout);
    expect(some.checks.map((c: { check: string }) => c.check)).toEqual(['api']);
    const none = JSON.parse((await clonebox(['health', 'history', 'web-2', '--store', db, '--probe', 'other', '--json'])).stdout);
    expect(none.checks).toEqual([]);

    // Two overlapping runs: both recorded, the store stays sound.
    const [a, b] = await Promise.all([check(), check()]);
    expect([statusOf(a.stdout), statusOf(b.stdout)]).toEqual(['HEALTHY', 'HEALTHY']);
    const after = JSON.parse((await clonebox(['health', 'history', 'web-2', '--store', db, '--json'])).stdout);
    expect(after.checks[0].results).toBe(7);
  });

  it('history of a VM with no records says so in one sentence', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-hist-'));
    const r = await clonebox(['health', 'history', 'web-9', '--store', path.join(dir, 'h.db')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^clonebox: no history for VM "web-9"/);
  });

  it('a bad --last is one sentence', async () => {
    const r = await clonebox(['health', 'history', 'web-1', '--last', 'forever']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--last expects a duration/);
  });
});
