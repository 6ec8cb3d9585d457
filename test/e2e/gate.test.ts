/**
 * The CI gate (`--wait`) and file outputs, through the real CLI against the lab: services that start
 * late, a VM that never becomes healthy, and an output file a concurrent reader never sees half-written.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureLab, isRoot, labExec, labFault, REPO_ROOT, run, type Lab } from '../lab/lab.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: gate tests skipped: the lab needs root (network namespaces)');

const clonebox = (args: string[]) => run('node', [BIN, ...args], { timeoutMs: 90_000 });

suite('--wait: the CI gate', () => {
  const L = lab as Lab;
  afterAll(async () => {
    await labFault('web-2', 'clear');
  });

  it('a service that starts late: the gate passes as soon as it serves (exit 0)', async () => {
    await labFault('web-2', 'stop', 'nginx');
    // The precondition, checked inside the guest: nothing answers on its 127.0.0.1:8080 any more.
    const probe = `curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:8080/health || true`;
    let answer = '';
    for (let i = 0; i < 20; i++) {
      answer = (await labExec('web-2', probe)).stdout.trim();
      if (answer === '000') break;
      await labFault('web-2', 'stop', 'nginx');
    }
    expect(answer, 'web-2 still answers on 127.0.0.1:8080 after nginx was stopped').toBe('000');
    const t0 = Date.now();
    const gate = clonebox(['health', 'check', 'web-2', '--probe', 'api-health', '--wait', '60s', '--wait-interval', '500ms', '--config', L.configPath]);
    await new Promise((r) => setTimeout(r, 3000));
    const startedAt = Date.now() - t0;
    await labFault('web-2', 'start', 'nginx');
    const r = await gate;
    const took = Date.now() - t0;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/waiting for web-2 \(api-health: connection to localhost:8080 refused/);
    expect(r.stderr).toMatch(/gate passed after/);
    expect(r.stdout).toMatch(/web-2 .*HEALTHY/);
    expect(took).toBeGreaterThan(startedAt);
    expect(took).toBeLessThan(startedAt + 8000);
  });

  it('an SSH server that comes up late counts as "not yet", not as a failure', async () => {
    await labFault('web-2', 'stop', 'sshd');
    const t0 = Date.now();
    const gate = clonebox(['health', 'check', 'web-2', '--probe', 'redis-ping', '--wait', '60s', '--wait-interval', '500ms', '--config', L.configPath]);
    await new Promise((r) => setTimeout(r, 3000));
    await labFault('web-2', 'start', 'sshd');
    const r = await gate;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/refused/);
    expect(Date.now() - t0).toBeLessThan(3000 + 8000);
  });

  it('never healthy: exit 2 at the deadline, within a second of it', async () => {
    const t0 = Date.now();
    const r = await clonebox(['health', 'check', 'web-3', '--probe', 'api-health', '--wait', '4s', '--wait-interval', '1s', '--config', L.configPath]);
    const took = Date.now() - t0;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gave up after .*web-3 \(api-health: HTTP 503/);
    // Node's own start (~0.3-1 s on a loaded machine) is part of `took`.
    expect(took).toBeGreaterThanOrEqual(4000);
    expect(took).toBeLessThan(4000 + 1000 + 1500);
  });

  it('--fail-on unhealthy lets a degraded fleet through; unknown never passes', async () => {
    const nonCritical = await clonebox(['health', 'check', 'off-1', '--wait', '2s', '--wait-interval', '500ms', '--fail-on', 'unhealthy', '--config', L.configPath]);
    expect(nonCritical.code).toBe(3);
  });
});

suite('--output and --output-file', () => {
  const L = lab as Lab;
  it('several outputs in one run: table to stdout, JUnit and Prometheus to files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-out-'));
    const junit = path.join(dir, 'r.xml');
    const prom = path.join(dir, 'clonebox.prom');
    const r = await clonebox(['health', 'check', 'web-1', 'web-3', '-o', 'table', '-o', 'junit', '-o', 'prometheus', '--output-file', junit, '--output-file', prom, '--config', L.configPath]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/web-3 .*UNHEALTHY/);
    expect(await readFile(junit, 'utf8')).toMatch(/<testsuite name="web-3"/);
    expect(await readFile(prom, 'utf8')).toMatch(/clonebox_vm_up\{vm="web-1"\} 1/);
  });

  it('nagios: one status line, exit code 2', async () => {
    const r = await clonebox(['health', 'check', 'web-1', 'web-3', '-o', 'nagios', '--config', L.configPath]);
    expect(r.code).toBe(2);
    expect(r.stdout.split('\n')[0]).toMatch(/^CLONEBOX CRITICAL - /);
  });

  it('an unwritable output file is one sentence and exit 3', async () => {
    const r = await clonebox(['health', 'check', 'web-1', '-o', 'json', '--output-file', '/nonexistent/dir/r.json', '--config', L.configPath]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot write output file \/nonexistent\/dir\/r\.json/);
  });
});
