/**
 * `health watch` through the real CLI against the lab: connections kept across rounds, thresholds over a real
 * failing service with actions seen inside the guest, reconnect after sshd and its connections go away,
 * Ctrl-C (in-flight probes cancelled in the guest, connections closed, store flushed), /metrics read by promtool
 * and a strict parser, the live table on a real pseudo-terminal, and plain transition lines.
 *
 * Every wait is bounded, and generous: on a loaded 2-core machine a round can take seconds.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ensureLab, isRoot, labExec, labFault, REPO_ROOT, run, type Lab } from '../lab/lab.js';
import { parseExposition } from '../outputs/exposition.js';
import { labConfigYaml, type CheckSpec } from '../support/fleet-run.js';
import { killWatches, watch, WAIT_MS } from '../support/watch-proc.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: watch tests skipped: the lab needs root (network namespaces)');

async function tempConfig(L: Lab, checks: CheckSpec[]): Promise<{ dir: string; config: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-watch-'));
  const config = path.join(dir, '.clonebox.yaml');
  await writeFile(config, labConfigYaml(L, checks));
  return { dir, config };
}

/** The sshd processes in a VM's namespace: the listener plus one (or two) per open connection. */
async function sshdProcesses(L: Lab, vm: string): Promise<number> {
  const { stdout } = await run('ip', ['netns', 'pids', L.vms[vm]!.namespace]);
  let n = 0;
  for (const pid of stdout.split('\n').filter(Boolean)) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => ''); // gone meanwhile: not counted
    if (comm.trim() === 'sshd') n++;
  }
  return n;
}

suite('health watch', { timeout: 150_000 }, () => {
  const L = lab as Lab;

  afterEach(async () => {
    killWatches();
  });
  afterAll(async () => {
    await labFault('web-1', 'clear');
    await labFault('web-2', 'clear');
  });

  it('keeps one connection per VM: no new SSH handshakes after the first round', async () => {
    const w = watch(['web-1', 'web-2', '--config', L.configPath, '--interval', '300ms', '--rounds', '6', '--no-store']);
    expect(await w.exited).toBe(0);
    const rounds = w.events.filter((e) => e.type === 'round');
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rounds.map((r) => r.ssh_connections_opened)).toEqual([2, 2, 2, 2, 2, 2]);
    // Each check said where it stands once, at its first result; nothing changed after.
    const changes = w.events.filter((e) => e.type === 'transition' || e.type === 'status');
    expect(changes).toHaveLength(14);
    expect(changes.every((e) => e.to === 'HEALTHY' && e.from === null)).toBe(true);
    expect(w.events.at(-1)).toMatchObject({ type: 'stop', reason: 'rounds', rounds: 6, status: 'HEALTHY', exit_code: 0 });
  });

  it('counts a real failing service to UNHEALTHY, runs on_failure and on_recovery once each in the guest, and records it all', async () => {
    const marker = `/tmp/clonebox-watch-action-${process.pid}-${Date.now()}`;
    const { dir, config } = await tempConfig(L, [
      {
        name: 'api',
        type: 'http',
        url: 'http://localhost:8080/health',
        timeout: '2s',
        failure_threshold: 2,
        success_threshold: 2,
        on_failure: `echo fail >> ${marker}`,
        on_recovery: `echo recover >> ${marker}`,
      },
    ]);
    const db = path.join(dir, 'health.db');
    const w = watch(['web-2', '--config', config, '--interval', '300ms', '--store', db]);
    const first = await w.next('api HEALTHY', (e) => e.check === 'api' && e.to === 'HEALTHY');
    expect(first.event).toMatchObject({ type: 'transition', from: null, hard: true });

    await labFault('web-2', 'stop', 'nginx');
    const soft = await w.next('soft DEGRADED', (e) => e.type === 'transition' && e.to === 'DEGRADED', first.index);
    expect(soft.event).toMatchObject({ from: 'HEALTHY', hard: false, streak: 'failing 1/2' });
    const hard = await w.next('hard UNHEALTHY', (e) => e.type === 'transition' && e.to === 'UNHEALTHY', soft.index);
    expect(hard.event).toMatchObject({ from: 'DEGRADED', hard: true });
    expect(hard.event.message).toMatch(/refused/);
    const fired = await w.next('on_failure', (e) => e.type === 'action', hard.index);
    expect(fired.event).toMatchObject({ kind: 'on_failure', status: 'ok', exit_code: 0 });
    // Still failing for several more rounds: no second run.
    const later = await w.round((w.events.slice(0, fired.index).filter((e) => e.type === 'round').at(-1)?.round ?? 0) + 4, fired.index);

    await labFault('web-2', 'start', 'nginx');
    const back = await w.next('hard HEALTHY', (e) => e.type === 'transition' && e.to === 'HEALTHY', later.index);
    expect(back.event).toMatchObject({ from: 'UNHEALTHY', hard: true });
    const recovered = await w.next('on_recovery', (e) => e.type === 'action' && e.kind === 'on_recovery', back.index);
    expect(recovered.event).toMatchObject({ status: 'ok' });
    const settle = await w.round((w.events.filter((e) => e.type === 'round').at(-1)?.round ?? 0) + 2, recovered.index);
    expect(settle.event.status).toBe('HEALTHY');

    const stopped = await w.interrupt();
    expect(stopped.code).toBe(0);
    expect(w.events.filter((e) => e.type === 'action').map((e) => e.kind)).toEqual(['on_failure', 'on_recovery']);
    // One soft step and one hard one down; back up only after success_threshold passes ("recovering 1/2" keeps
    // the status UNHEALTHY, so it is no transition).
    expect(w.events.filter((e) => e.type === 'transition').map((e) => `${e.to}${e.hard ? '' : ' (soft)'}`)).toEqual([
      'HEALTHY',
      'DEGRADED (soft)',
      'UNHEALTHY',
      'HEALTHY',
    ]);
    expect((await labExec('web-2', `cat ${marker}; rm -f ${marker}`)).stdout).toBe('fail\nrecover\n');

    // The store was flushed before exit: `health history` reads back the same story.
    const h = await run('node', [BIN, 'health', 'history', 'web-2', '--store', db, '--last', '1h', '--json'], { timeoutMs: 60_000 });
    expect(h.code).toBe(0);
    const api = JSON.parse(h.stdout).checks[0];
    expect(api.check).toBe('api');
    expect(api.outages).toBe(1);
    expect(api.transitions.map((t: { to: string }) => t.to)).toEqual(['HEALTHY', 'DEGRADED', 'UNHEALTHY', 'HEALTHY']);
    expect(api.results).toBeGreaterThanOrEqual(w.events.filter((e) => e.type === 'round').length);
  });

  it('when sshd and its connections go away: UNKNOWN meanwhile (never UNHEALTHY), then one new connection', async () => {
    const w = watch(['web-1', '--probe', 'redis-ping', '--probe', 'api-health', '--config', L.configPath, '--interval', '300ms', '--no-store']);
    const r2 = await w.round(2);
    expect(r2.event.ssh_connections_opened).toBe(1);

    await labFault('web-1', 'drop', 'ssh');
    const unknown = await w.next('UNKNOWN', (e) => e.type === 'status' && e.check === 'redis-ping' && e.to === 'UNKNOWN', r2.index);
    expect(unknown.event.message).toMatch(/refused|closed|reset|SSH/i);
    // A few rounds while it is down: still UNKNOWN, the state stays HEALTHY underneath.
    const down = await w.round((w.events[unknown.index - 1]?.round ?? 2) + 3, unknown.index);
    expect(down.event.status).toBe('UNKNOWN');

    await labFault('web-1', 'start', 'sshd');
    const back = await w.next('redis-ping back', (e) => e.check === 'redis-ping' && e.to === 'HEALTHY', down.index);
    const after = await w.round((w.events.filter((e) => e.type === 'round').at(-1)?.round ?? 0) + 3, back.index);
    expect(after.event.status).toBe('HEALTHY');
    expect(after.event.ssh_connections_opened).toBe(2);

    const stopped = await w.interrupt();
    expect(stopped.code).toBe(0);
    const changes = w.events.filter((e) => e.type === 'transition' || e.type === 'status').map((e) => e.to);
    expect(changes).not.toContain('UNHEALTHY');
    expect(changes).not.toContain('DEGRADED');
    expect(w.events.filter((e) => e.type === 'transition').every((e) => e.from === null)).toBe(true);
  });

  it('Ctrl-C stops at once: in-flight probes are killed in the guest, connections closed, exit code = last state', async () => {
    // The sleep's own argv identifies it (a command's text is on no command line in the resident session);
    // `^sleep` matches it but not the shell running pgrep.
    const tag = `97.${process.pid}`;
    const pgrep = `pgrep -f '^sleep ${tag}'`;
    const { config } = await tempConfig(L, [
      { name: 'api', type: 'http', url: 'http://localhost:8080/health', timeout: '2s', failure_threshold: 2, critical: true },
      // Runs far longer than the test: it is in flight when Ctrl-C comes.
      { name: 'slow', type: 'command', exec: `sleep ${tag}`, timeout: '120s' },
    ]);
    const w = watch(['web-3', '--config', config, '--interval', '300ms', '--no-store']);
    await w.next('api UNHEALTHY', (e) => e.type === 'transition' && e.check === 'api' && e.to === 'UNHEALTHY');
    expect((await labExec('web-3', `${pgrep} >/dev/null && echo running`)).stdout).toBe('running\n');
    expect(await sshdProcesses(L, 'web-3')).toBeGreaterThan(1);

    const stopped = await w.interrupt();
    expect(stopped.code).toBe(2); // api is UNHEALTHY: Nagios critical
    expect(stopped.ms).toBeLessThan(5000);
    expect(w.events.at(-1)).toMatchObject({ type: 'stop', reason: 'interrupted', status: 'UNHEALTHY', exit_code: 2 });
    // The cancelled probe never became a result.
    expect(w.events.some((e) => e.check === 'slow')).toBe(false);
    // In the guest: the slow command is gone and only sshd's listener is left.
    let left = '';
    let sshd = 0;
    for (let i = 0; i < 40; i++) {
      left = (await labExec('web-3', `${pgrep} || true`)).stdout;
      sshd = await sshdProcesses(L, 'web-3');
      if (left === '' && sshd === 1) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(left).toBe('');
    expect(sshd).toBe(1);
  });

  it('serves /metrics while watching: promtool and a strict parser accept it, values follow the checks', async () => {
    const w = watch(['web-1', 'web-3', '--probe', 'api-health', '--probe', 'disk-root', '--config', L.configPath, '--interval', '300ms', '--no-store', '--metrics-port', '0']);
    const url = (await w.stderrMatch(/metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/))[1]!;
    await w.round(1);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const exp = parseExposition(text);
    const value = (name: string, labels: Record<string, string>) =>
      exp.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(value('clonebox_check_up', { vm: 'web-1', check: 'api-health', type: 'http' })).toBe(1);
    expect(value('clonebox_check_up', { vm: 'web-3', check: 'api-health', type: 'http' })).toBe(0);
    expect(value('clonebox_disk_used_percent', { vm: 'web-1', check: 'disk-root', path: '/' })).toBeGreaterThan(0);
    expect(value('clonebox_fleet_vms', { status: 'HEALTHY' })).toBe(1);
    expect(value('process_resident_memory_bytes', {})).toBeGreaterThan(0);
    const rounds = exp.samples.find((s) => s.name.startsWith('clonebox_watch_rounds'));
    expect(rounds?.value).toBeGreaterThanOrEqual(1);

    // Debian's prometheus package (scripts/install-deps.sh) brings promtool.
    if ((await run('bash', ['-c', 'command -v promtool'])).code === 0) {
      const checked = await new Promise<{ code: number; out: string }>((resolve) => {
        const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (out += d.toString()));
        p.on('exit', (code) => resolve({ code: code ?? 1, out }));
        p.stdin.end(text);
      });
      expect(checked.out).toBe('');
      expect(checked.code).toBe(0);
    }

    expect((await fetch(url.replace('/metrics', '/nope'))).status).toBe(404);
    const stopped = await w.interrupt();
    expect(stopped.code).toBeGreaterThan(0); // web-3 is not healthy
    await expect(fetch(url)).rejects.toThrow();
  });

  it('on a terminal: a live table on the alternate screen, the final table left behind', async () => {
    const { config } = await tempConfig(L, [{ name: 'api', type: 'http', url: 'http://localhost:8080/health', timeout: '2s', failure_threshold: 2, critical: true }]);
    // util-linux's script(1) gives the watch a real pseudo-terminal.
    const cmd = `stty cols 100 rows 30; exec node ${BIN} health watch web-1 web-3 --config ${config} --interval 300ms --rounds 4 --no-store`;
    const r = await run('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 90_000, env: { ...process.env, NO_COLOR: '1', TERM: 'xterm' } });
    expect(r.code).toBe(2);
    const out = r.stdout;
    expect(out).toContain('\x1b[?1049h'); // alternate screen on
    expect(out).toContain('\x1b[?1049l'); // and off again
    expect(out).toMatch(/\x1b\[H/); // redrawn in place from the top
    const after = out.slice(out.lastIndexOf('\x1b[?1049l'));
    expect(after).toMatch(/web-1\s+api\s+✔?\s*HEALTHY/);
    expect(after).toMatch(/web-3\s+api\s+✖?\s*UNHEALTHY/);
    expect(after).toMatch(/round 4/);
  });

  it('elsewhere: one plain line per transition', async () => {
    const { config } = await tempConfig(L, [{ name: 'api', type: 'http', url: 'http://localhost:8080/health', timeout: '2s', failure_threshold: 2, critical: true }]);
    const w = watch(['web-3', '--config', config, '--interval', '300ms', '--rounds', '3', '--no-store'], { json: false });
    expect(await w.exited).toBe(2);
    expect(w.lines).toHaveLength(2);
    expect(w.lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ web-3\/api \(new\) → DEGRADED \(soft: failing 1\/2\): HTTP 503/);
    expect(w.lines[1]).toMatch(/^\S+ web-3\/api DEGRADED → UNHEALTHY: HTTP 503/);
  });
});
