/**
 * Alerting end to end against the lab and real receivers: a real service fault in a lab VM, stateful
 * `health check --store` runs (in-process, or real CLI processes where concurrency matters) and `health watch`,
 * delivering to Debian's Alertmanager, an HTTP receiver process (webhook and Slack format), an SMTP server process
 * and a command. Covers the issue's list: firing/resolved with the right labels, nothing during a silence, a
 * receiver down then up (every alert once), two concurrent cron runs (one delivery), a shut-off VM (one VM
 * alert, not one per check), a flapping service (one flapping notice), and a slow provider that delays no check.
 *
 * No fixed sleeps before asserts: every wait polls with a generous deadline.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AlertNotification } from '../../src/alerting/types.js';
import { runSilenceAdd, runSilenceRemove } from '../../src/cli/alerting.js';
import { runCheck, type CommandIO } from '../../src/cli/check.js';
import { runHistory } from '../../src/cli/history.js';
import { openStore } from '../../src/store/index.js';
import { ensureLab, isRoot, labFault, REPO_ROOT, type Lab } from '../lab/lab.js';
import { labConfigYaml, type CheckSpec } from '../support/fleet-run.js';
import { alertmanagerInstalled, startAlertmanager, startReceiver, until, type Alertmanager, type Receiver } from '../support/receivers.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const ready = lab && alertmanagerInstalled();
if (!ready) console.warn('clonebox: alerting e2e tests skipped: they need root (the lab) and Debian\'s prometheus-alertmanager');

const API: CheckSpec = { name: 'api-health', type: 'http', url: 'http://localhost:8080/health', expected_json: { status: 'ok' }, tags: ['web'], timeout: '3s', critical: true };

interface Setup {
  dir: string;
  config: string;
  store: string;
}

/** A config for the lab: the given checks and alerting to the given receivers. */
function setup(L: Lab, checks: CheckSpec[], providers: Record<string, unknown>[], alerting: Record<string, unknown> = {}): Setup {
  const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-alerting-'));
  const config = path.join(dir, '.clonebox.yaml');
  const store = path.join(dir, 'health.db');
  writeFileSync(
    config,
    labConfigYaml(L, checks, {
      history: { store },
      alerting: { retry: { initial_backoff: '200ms', max_backoff: '1s' }, ...alerting, providers },
    }),
  );
  return { dir, config, store };
}

const quiet: CommandIO = { stdout: { write: () => true }, stderr: { write: () => true } };

/** One stateful `health check --store` run, in-process (the real lab, store and receivers; no process start). */
async function cron(s: Setup, vms: string[], io: CommandIO = quiet): Promise<number> {
  const r = await runCheck(
    { vms, config: s.config, all: false, json: true, concurrency: 8, verbose: true, acceptNewHostKeys: false, libvirtBackend: 'virsh' },
    io,
    new AbortController().signal,
  );
  return r.exitCode;
}

/** The notifications a webhook receiver got (its payload is the notification itself). */
function hooked(r: Receiver, pathPrefix = '/hook'): (AlertNotification & { received_at: number })[] {
  return r
    .received()
    .filter((x) => x.path?.startsWith(pathPrefix))
    .map((x) => ({ ...(x.body as AlertNotification), received_at: x.ts }));
}

const events = (list: AlertNotification[]) => list.map((n) => `${n.event}:${n.alert_key}`);

describe.skipIf(!ready)('alerting end to end (lab + real receivers)', () => {
  const L = lab!;
  let http: Receiver;
  let smtp: Receiver;
  let am: Alertmanager;
  beforeAll(async () => {
    [http, smtp] = await Promise.all([startReceiver('http'), startReceiver('smtp')]);
    am = await startAlertmanager(`${http.url}/am`);
  }, 120_000);
  afterAll(async () => {
    await am?.close();
    await Promise.all([http?.close(), smtp?.close()]);
  });
  afterEach(async () => {
    await labFault('web-1', 'clear');
  }, 60_000);

  it('a scripted outage (fault on, 3 rounds, fault off): firing then resolved at every receiver, once, with the right labels', async () => {
    const commandLog = path.join(mkdtempSync(path.join(tmpdir(), 'clonebox-command-')), 'got.jsonl');
    const s = setup(L, [{ ...API, failure_threshold: 2 }], [
      { name: 'am', type: 'alertmanager', url: am.url },
      { name: 'hook', type: 'webhook', url: `${http.url}/hook/outage`, headers: { Authorization: 'Bearer hook-s3cret' } },
      { name: 'chat', type: 'slack', url: `${http.url}/slack/outage` },
      { name: 'mail', type: 'email', host: '127.0.0.1', port: smtp.port, insecure: true, from: 'clonebox@lab.test', to: 'ops@lab.test' },
      { name: 'script', type: 'command', command: `{ date +%s%3N; cat; } >> ${commandLog}` },
    ], { hypervisor: 'lab-hv', details_url: 'http://status.lab/vm/{{vm}}' });
    const timeline: string[] = [];
    const mark = (what: string) => timeline.push(`${new Date().toISOString()} ${what}`);
    const t0 = Date.now();
    expect(await cron(s, ['web-1'])).toBe(0);
    mark('round 0 (healthy)');
    await labFault('web-1', 'stop', 'nginx');
    mark('fault on: nginx stopped in web-1');
    for (let i = 1; i <= 3; i++) {
      await cron(s, ['web-1']);
      mark(`round ${i}`);
      if (i === 2) {
        // The hard transition happened in round 2 (failure_threshold 2): Alertmanager lists the alert.
        const alerts = await until('the alert in Alertmanager', async () => {
          const list = (await am.alerts()).filter((a) => a.labels.vm === 'web-1' && a.labels.check === 'api-health');
          return list.length ? list : undefined;
        });
        expect(alerts[0]!.labels).toEqual({ alertname: 'CloneboxCheckFailing', vm: 'web-1', check: 'api-health', type: 'http', severity: 'critical', hypervisor: 'lab-hv' });
        expect(alerts[0]!.annotations).toMatchObject({ state: 'UNHEALTHY', details_url: 'http://status.lab/vm/web-1' });
      }
    }
    await labFault('web-1', 'start', 'nginx');
    mark('fault off: nginx started');
    await cron(s, ['web-1']);
    mark('round 4 (recovered)');
    await until('Alertmanager to drop the resolved alert', async () => (await am.alerts()).filter((a) => a.labels.vm === 'web-1').length === 0);

    const hook = hooked(http, '/hook/outage');
    expect(events(hook)).toEqual(['firing:web-1/api-health', 'resolved:web-1/api-health']);
    expect(hook.map((n) => [n.version, n.state, n.previous_state])).toEqual([[1, 'UNHEALTHY', null], [1, 'HEALTHY', 'UNHEALTHY']]);
    expect(new Set(hook.map((n) => n.id)).size).toBe(2);
    const slack = http.received().filter((x) => x.path === '/slack/outage');
    expect(slack.map((x) => (x.body as { text: string }).text)).toEqual([
      expect.stringMatching(/^UNHEALTHY: web-1\/api-health/),
      expect.stringMatching(/^Resolved: web-1\/api-health/),
    ]);
    const mails = smtp.received().filter((m) => m.subject?.includes('web-1/api-health'));
    expect(mails.map((m) => m.subject)).toEqual(['[clonebox] UNHEALTHY: web-1/api-health', '[clonebox] Resolved: web-1/api-health']);
    // The command wrote its arrival time (ms), then the payload it read on stdin.
    const lines = readFileSync(commandLog, 'utf8').trim().split('\n');
    const commanded = lines.filter((_, i) => i % 2 === 1).map((l, i) => ({ ...(JSON.parse(l) as AlertNotification), received_at: Number(lines[2 * i]) }));
    expect(events(commanded)).toEqual(['firing:web-1/api-health', 'resolved:web-1/api-health']);
    expect(commanded.map((n) => n.id)).toEqual(hook.map((n) => n.id));
    const amSaw = await until('Alertmanager to notify firing and resolved', () => {
      const s2 = http.received().filter((x) => x.path === '/am' && JSON.stringify(x.body).includes('api-health')).map((x) => (x.body as { status: string }).status);
      return s2.includes('resolved') ? s2 : undefined;
    });
    expect(amSaw[0]).toBe('firing');

    // What arrived where, with times (the issue's closing note).
    const rel = (ts: number) => `+${((ts - t0) / 1000).toFixed(1)}s`;
    const arrivals = ([
      ...hook.map((n) => [n.received_at, `webhook  ${n.event} ${n.alert_key} ${n.state} id=${n.id}`]),
      ...slack.map((x) => [x.ts, `slack    ${(x.body as { text: string }).text}`]),
      ...mails.map((m) => [m.ts, `email    ${m.subject} ${m.messageId}`]),
      ...commanded.map((n) => [n.received_at, `command  ${n.event} ${n.alert_key} id=${n.id}`]),
      ...http.received().filter((x) => x.path === '/am' && JSON.stringify(x.body).includes('api-health')).map((x) => [x.ts, `alertmanager's own webhook: ${(x.body as { status: string }).status}`]),
    ] as [number, string][])
      .sort((a, b) => a[0] - b[0])
      .map(([ts, what]) => `${rel(ts)} ${what}`);
    console.info(`scripted outage, t0 = ${new Date(t0).toISOString()}\n${timeline.map((l) => `  ${l}`).join('\n')}\narrivals:\n${arrivals.map((l) => `  ${l}`).join('\n')}`);
    // The outbox dump holds no secret.
    const store = await openStore(s.store);
    try {
      expect(JSON.stringify(await store.outboxRows())).not.toContain('hook-s3cret');
      expect((await store.outboxRows()).every((r) => r.status === 'delivered')).toBe(true);
    } finally {
      await store.close();
    }
  }, 180_000);

  it('during a silence nothing is sent (Alertmanager lists nothing), results are marked; still failing when it ends: it fires', async () => {
    const s = setup(L, [{ ...API, failure_threshold: 1, on_failure: { command: `touch ${path.join(tmpdir(), 'never')}`, where: 'host' } }], [
      { name: 'am', type: 'alertmanager', url: am.url },
      { name: 'hook', type: 'webhook', url: `${http.url}/hook/silence` },
    ]);
    const out: string[] = [];
    const io = { stdout: { write: (x: string) => out.push(x) }, stderr: { write: (x: string) => out.push(x) } };
    await runSilenceAdd({ vm: 'web-*', forMs: 3_600_000, reason: 'kernel upgrade', json: false, config: s.config }, io);
    const id = /silenced: ([0-9a-f]{8})/.exec(out.join(''))![1]!;
    await labFault('web-1', 'stop', 'nginx');
    const stderr: string[] = [];
    const cronIo = { stdout: { write: () => true }, stderr: { write: (x: string) => stderr.push(x) } };
    expect(await cron(s, ['web-1'], cronIo)).toBe(2);
    await cron(s, ['web-1'], cronIo);
    expect(hooked(http, '/hook/silence')).toEqual([]);
    expect((await am.alerts()).filter((a) => a.labels.vm === 'web-1')).toEqual([]);
    expect(stderr.join('')).toMatch(/on_failure suppressed: silenced until .*kernel upgrade/);
    const store = await openStore(s.store);
    try {
      const rows = await store.history({ vm: 'web-1', sinceMs: 0 });
      expect(rows.map((r) => (r.details.silenced as { id: string } | undefined)?.id)).toEqual([id, id]);
      expect(await store.outboxRows()).toEqual([]);
    } finally {
      await store.close();
    }
    // `health history` shows them as silenced.
    const shown: string[] = [];
    await runHistory({ vm: 'web-1', lastMs: 3_600_000, json: false, store: s.store, utc: true }, { stdout: { write: (x: string) => shown.push(x) }, stderr: quiet.stderr });
    expect(shown.join('')).toMatch(/2 silenced/);
    expect(shown.join('')).toContain(`silenced ${id} until`);
    await runSilenceRemove({ id, config: s.config }, io);
    await cron(s, ['web-1']);
    expect(events(hooked(http, '/hook/silence'))).toEqual(['firing:web-1/api-health']);
    await until('the alert in Alertmanager', async () => (await am.alerts()).some((a) => a.labels.vm === 'web-1'));
    await labFault('web-1', 'start', 'nginx');
    await cron(s, ['web-1']);
    expect(events(hooked(http, '/hook/silence'))).toEqual(['firing:web-1/api-health', 'resolved:web-1/api-health']);
  }, 120_000);

  it('a receiver down for a while, then up: every alert arrives once, in order', async () => {
    const down = await startReceiver('http');
    try {
      const s = setup(L, [{ ...API, failure_threshold: 1 }], [{ name: 'hook', type: 'webhook', url: `${down.url}/hook/down`, timeout: '2s' }]);
      await down.stop();
      await labFault('web-1', 'stop', 'nginx');
      await cron(s, ['web-1']);
      await cron(s, ['web-1']);
      await labFault('web-1', 'start', 'nginx');
      await cron(s, ['web-1']);
      const store = await openStore(s.store);
      try {
        const rows = await store.outboxRows();
        expect(rows.map((r) => [r.notification.event, r.status])).toEqual([['resolved', 'pending'], ['firing', 'pending']]);
        expect(rows.find((r) => r.notification.event === 'firing')!.attempts).toBeGreaterThanOrEqual(1);
      } finally {
        await store.close();
      }
      await down.start();
      // The next cron runs deliver the backlog (each run delivers what is due).
      await until('both notifications at the receiver', async () => {
        await cron(s, ['web-1']);
        return hooked(down, '/hook/down').length >= 2;
      }, 60_000, 500);
      await cron(s, ['web-1']);
      const got = hooked(down, '/hook/down');
      expect(events(got)).toEqual(['firing:web-1/api-health', 'resolved:web-1/api-health']);
    } finally {
      await down.close();
    }
  }, 120_000);

  it('two concurrent cron runs (real processes): one delivery per alert and provider', async () => {
    const slow = await startReceiver('http', { delayMs: 1500 });
    try {
      const s = setup(L, [{ ...API, failure_threshold: 1 }], [{ name: 'hook', type: 'webhook', url: `${slow.url}/hook/concurrent` }]);
      await cron(s, ['web-1']);
      await labFault('web-1', 'stop', 'nginx');
      const both = () =>
        Promise.all(
          [0, 1].map(
            () =>
              new Promise<number>((resolve) => {
                const c = spawn('node', [BIN, 'health', 'check', 'web-1', '--config', s.config, '--store', s.store, '--libvirt-backend', 'virsh'], { stdio: 'ignore' });
                c.on('exit', (code) => resolve(code ?? -1));
              }),
          ),
        );
      expect(await both()).toEqual([2, 2]);
      await labFault('web-1', 'start', 'nginx');
      expect(await both()).toEqual([0, 0]);
      const got = hooked(slow, '/hook/concurrent');
      expect(events(got)).toEqual(['firing:web-1/api-health', 'resolved:web-1/api-health']);
    } finally {
      await slow.close();
    }
  }, 120_000);

  it('a shut-off VM: one VM-level alert after unreachable_after, not one per check', async () => {
    const checks: CheckSpec[] = [
      API,
      { name: 'web-root', type: 'http', url: 'http://localhost:80/', expected_body: 'clonebox lab' },
      { name: 'redis', type: 'tcp', host: 'localhost', port: 6379 },
      { name: 'redis-ping', type: 'command', exec: 'redis-cli -h 127.0.0.1 ping', expected_output: 'PONG', tags: ['db'] },
      { name: 'disk-root', type: 'disk', path: '/' },
      { name: 'memory', type: 'memory' },
      { name: 'uptime', type: 'command', exec: 'true' },
    ];
    const s = setup(L, checks, [
      { name: 'am', type: 'alertmanager', url: am.url },
      { name: 'hook', type: 'webhook', url: `${http.url}/hook/off` },
    ], { unreachable_after: '1s' });
    expect(await cron(s, ['off-1'])).toBe(3);
    const first = Date.now();
    await until('unreachable_after to pass', () => Date.now() - first > 1200, 5000, 100);
    await cron(s, ['off-1']);
    await cron(s, ['off-1']);
    const got = hooked(http, '/hook/off');
    expect(got.map((n) => [n.event, n.scope, n.alertname, n.vm, n.check ?? null, n.state])).toEqual([['firing', 'vm', 'CloneboxVMUnreachable', 'off-1', null, 'UNKNOWN']]);
    expect(got[0]!.message).toMatch(/shut off/);
    expect(got[0]!.tags).toEqual(['db', 'web']);
    const alerts = await until('the VM alert in Alertmanager', async () => {
      const list = (await am.alerts()).filter((a) => a.labels.vm === 'off-1');
      return list.length ? list : undefined;
    });
    expect(alerts.map((a) => a.labels)).toEqual([{ alertname: 'CloneboxVMUnreachable', vm: 'off-1', severity: 'critical' }]);
  }, 120_000);

  it('a flapping service (stopped and started every round): one flapping notice, then nothing per flap', async () => {
    const s = setup(L, [{ ...API, failure_threshold: 1 }], [{ name: 'hook', type: 'webhook', url: `${http.url}/hook/flap` }]);
    for (let i = 0; i < 14; i++) {
      await labFault('web-1', i % 2 ? 'start' : 'stop', 'nginx');
      await cron(s, ['web-1']);
    }
    const got = hooked(http, '/hook/flap');
    const flapAt = got.findIndex((n) => n.event === 'flapping');
    expect(got.filter((n) => n.event === 'flapping')).toHaveLength(1);
    expect(got.slice(flapAt + 1)).toEqual([]);
    // Before it was seen flapping, individual transitions went out as usual.
    expect(got.slice(0, flapAt).every((n) => n.event === 'firing' || n.event === 'resolved')).toBe(true);
    expect(got[flapAt]!.flap_percent).toBeGreaterThanOrEqual(50);
  }, 180_000);

  it('health watch: a slow provider delays no round, a down one gets its alert when it is back', async () => {
    const hook = await startReceiver('http');
    const slow = await startReceiver('http', { delayMs: 10_000 });
    try {
      const s = setup(L, [{ ...API, failure_threshold: 1, interval: '1s' }], [
        { name: 'hook', type: 'webhook', url: `${hook.url}/hook/watch` },
        { name: 'slow', type: 'webhook', url: `${slow.url}/hook/slow`, timeout: '15s' },
      ]);
      await hook.stop();
      const child = spawn('node', [BIN, 'health', 'watch', 'web-1', '--config', s.config, '--json', '--libvirt-backend', 'virsh'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: { type: string; round?: number; ts?: string; notification?: AlertNotification }[] = [];
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as never));
      const guard = setTimeout(() => child.kill('SIGKILL'), 170_000);
      try {
        await until('round 1', () => lines.some((l) => l.type === 'round'), 45_000);
        await labFault('web-1', 'stop', 'nginx');
        const alertAt = await until('the alert event', () => lines.findIndex((l) => l.type === 'alert') + 1 || undefined, 45_000);
        const alertTs = Date.parse(lines[alertAt - 1]!.ts!);
        // While the slow provider holds its delivery for 10 s, rounds go on.
        await until('the slow delivery to finish', () => slow.received().length > 0, 45_000);
        const roundsDuring = lines.filter((l) => l.type === 'round' && Date.parse(l.ts!) > alertTs && Date.parse(l.ts!) < slow.received()[0]!.ts);
        expect(roundsDuring.length).toBeGreaterThanOrEqual(3);
        // The down receiver comes back: it gets the alert (once).
        expect(hooked(hook, '/hook/watch')).toEqual([]);
        await hook.start();
        await until('the alert at the receiver that was down', () => hooked(hook, '/hook/watch').length > 0, 45_000);
        await labFault('web-1', 'start', 'nginx');
        await until('the resolved notification', () => hooked(hook, '/hook/watch').length >= 2, 45_000);
        expect(stderr).toMatch(/provider hook failed: .*ECONNREFUSED/);
        expect(stderr.match(/provider hook failed/g)).toHaveLength(1);
      } finally {
        child.kill('SIGINT');
        await new Promise((r) => child.once('exit', r));
        clearTimeout(guard);
      }
      expect(events(hooked(hook, '/hook/watch'))).toEqual(['firing:web-1/api-health', 'resolved:web-1/api-health']);
      expect(existsSync(s.store)).toBe(true);
    } finally {
      await Promise.all([hook.close(), slow.close()]);
    }
  }, 180_000);

  it('health watch --no-store alerts from memory', async () => {
    const s = setup(L, [{ ...API, failure_threshold: 1, interval: '1s' }], [{ name: 'hook', type: 'webhook', url: `${http.url}/hook/nostore` }]);
    await labFault('web-1', 'stop', 'nginx');
    const child = spawn('node', [BIN, 'health', 'watch', 'web-1', '--config', s.config, '--no-store', '--json', '--libvirt-backend', 'virsh'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const guard = setTimeout(() => child.kill('SIGKILL'), 100_000);
    try {
      await until('the firing notification', () => hooked(http, '/hook/nostore').length > 0, 45_000);
      await labFault('web-1', 'start', 'nginx');
      await until('the resolved notification', () => hooked(http, '/hook/nostore').length > 1, 45_000);
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      clearTimeout(guard);
    }
    expect(events(hooked(http, '/hook/nostore'))).toEqual(['firing:web-1/api-health', 'resolved:web-1/api-health']);
    expect(existsSync(s.store)).toBe(false);
  }, 120_000);
});
