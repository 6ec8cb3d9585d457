/**
 * Faults, made for real: nothing hangs, nothing grows without bound, transport trouble is UNKNOWN
 * (never blamed on the service), and secrets stay out of every output.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderTable } from '../../src/outputs/table.js';
import { ensureLab, isRoot, labExec, labFault, type Lab } from '../lab/lab.js';
import { checkOf, runLab, vmReport } from '../support/fleet-run.js';

const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: fault tests skipped: the lab needs root (network namespaces)');

/** A TCP server on the host's loopback that accepts and never says a word (bounded: closed in afterAll). */
async function silentServer(host: string): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, sockets };
}

suite('faults', () => {
  const L = lab as Lab;
  const guest = [
    { name: 'ping', type: 'command', exec: 'echo PONG', expected_output: 'PONG' },
    { name: 'api', type: 'http', url: 'http://localhost:8080/health', critical: true },
  ];

  describe('VMs that cannot be evaluated are UNKNOWN with the reason, and no probe runs', () => {
    it.each([
      ['off-1', /shut off/],
      ['paused-1', /paused/],
      ['no-such-vm', /no domain named "no-such-vm"/],
      ['web-9', /no domain named "web-9".*did you mean "web-\d"/],
    ])('%s', async (vm, reason) => {
      const report = await runLab(L, [vm], guest);
      const r = vmReport(report, vm);
      expect(r.overall_status).toBe('UNKNOWN');
      expect(r.reason).toMatch(reason);
      expect(r.checks.every((c) => c.status === 'UNKNOWN' && c.transport === 'none')).toBe(true);
    });

    it('one VM failing never stops the others', async () => {
      const report = await runLab(L, ['off-1', 'web-1', 'no-such-vm', 'web-3'], guest);
      expect(vmReport(report, 'web-1').overall_status).toBe('HEALTHY');
      expect(vmReport(report, 'web-3').overall_status).toBe('UNHEALTHY');
      expect(report.summary.overall_status).toBe('UNHEALTHY');
      expect(report.summary.vms).toMatchObject({ total: 4, healthy: 1, unhealthy: 1, unknown: 2 });
    });

    it('an unreachable libvirt makes named VMs UNKNOWN with libvirt\'s reason', async () => {
      const report = await runLab({ ...L, uri: 'test:///nonexistent/node.xml' }, ['web-1'], guest);
      expect(vmReport(report, 'web-1').reason).toMatch(/cannot connect to libvirt at test:\/\/\/nonexistent\/node\.xml/);
    });
  });

  describe('sshd stopped', () => {
    beforeAll(() => labFault('web-2', 'stop', 'sshd'));
    afterAll(() => labFault('web-2', 'start', 'sshd'));
    it('guest probes and tunnels are UNKNOWN (refused), host probes still run', async () => {
      const report = await runLab(L, ['web-2'], [...guest, { name: 'host-http', type: 'http', url: 'http://{{address}}/health' }]);
      expect(checkOf(report, 'web-2', 'ping')).toMatchObject({ status: 'UNKNOWN', message: expect.stringMatching(/refused/) });
      expect(checkOf(report, 'web-2', 'api').status).toBe('UNKNOWN');
      expect(checkOf(report, 'web-2', 'host-http').status).toBe('HEALTHY');
      expect(vmReport(report, 'web-2').overall_status).toBe('UNKNOWN');
    });
  });

  describe('host key changed', () => {
    beforeAll(() => labFault('web-3', 'hostkey', 'rotate'));
    afterAll(() => labFault('web-3', 'clear'));
    it('is refused with a clear message, never trusted', async () => {
      const report = await runLab(L, ['web-3'], guest.slice(0, 1), { ssh: { user: 'root', identity_file: L.identityFile, known_hosts: L.knownHostsFile, host_key_policy: 'accept-new' } });
      const c = checkOf(report, 'web-3', 'ping');
      expect(c.status).toBe('UNKNOWN');
      expect(c.message).toMatch(/host key of .* does not match .*man-in-the-middle/);
      expect(c.details.transport_error).toBe('host-key-changed');
      expect(c.message).toContain('web-3');
    });
  });

  it('a refused identity is UNKNOWN naming the user and key', async () => {
    const report = await runLab(L, ['web-1'], guest.slice(0, 1), { ssh: { user: 'nobody', identity_file: L.identityFile, known_hosts: L.knownHostsFile } });
    expect(checkOf(report, 'web-1', 'ping')).toMatchObject({ status: 'UNKNOWN', message: expect.stringMatching(/refused|denied/i) });
  });

  it('an unknown host key is refused under the strict policy', async () => {
    const report = await runLab(L, ['web-1'], guest.slice(0, 1), { ssh: { user: 'root', identity_file: L.identityFile, known_hosts: L.emptyKnownHostsFile } });
    expect(checkOf(report, 'web-1', 'ping')).toMatchObject({ status: 'UNKNOWN', message: expect.stringMatching(/is not in .*known_hosts\.empty.*--accept-new-host-keys/) });
  });

  describe('servers that never answer', () => {
    let silent: Awaited<ReturnType<typeof silentServer>>;
    beforeAll(async () => (silent = await silentServer('127.0.0.9')));
    afterAll(() => {
      for (const s of silent.sockets) s.destroy();
      silent.server.close();
    });

    it('an HTTP server that accepts and never answers: UNHEALTHY within the timeout', async () => {
      const t0 = Date.now();
      const report = await runLab(L, ['web-1'], [{ name: 'h', type: 'http', url: `http://127.0.0.9:${silent.port}/`, timeout: '1s' }]);
      expect(checkOf(report, 'web-1', 'h')).toMatchObject({ status: 'UNHEALTHY', message: expect.stringMatching(/did not finish within 1s/) });
      expect(Date.now() - t0).toBeLessThan(1000 + 1500);
    });

    it('an sshd that never sends its banner: UNKNOWN within the connect timeout', async () => {
      const t0 = Date.now();
      const report = await runLab(L, ['silent'], guest.slice(0, 1), {
        vms: { silent: { address: '127.0.0.9', ssh: { port: silent.port, connect_timeout: '1s' } } },
      });
      expect(checkOf(report, 'silent', 'ping')).toMatchObject({ status: 'UNKNOWN', message: expect.stringMatching(/timed? ?out|did not/i) });
      expect(Date.now() - t0).toBeLessThan(1000 + 1500 + 1000);
    });
  });

  it('a command sleeping past its timeout is UNHEALTHY in time, and the remote command is stopped', async () => {
    // The sleep's own argv identifies it (a command's text is on no command line in the resident session).
    const marker = `sleep 30.${process.pid}${Date.now() % 100_000}`;
    const t0 = Date.now();
    const report = await runLab(L, ['web-1'], [{ name: 'slow', type: 'command', exec: `${marker} && echo done`, timeout: '1s' }]);
    expect(checkOf(report, 'web-1', 'slow')).toMatchObject({ status: 'UNHEALTHY', message: expect.stringMatching(/did not finish within 1s/) });
    expect(Date.now() - t0).toBeLessThan(2500);
    // The guest's process table: nothing of ours is left running.
    let left = '';
    for (let i = 0; i < 20; i++) {
      left = (await labExec('web-1', `pgrep -af '^${marker}' || true`)).stdout.trim();
      if (!left) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe('');
  });

  it('a command printing without end: bounded memory, a verdict at the timeout', async () => {
    const before = process.memoryUsage().rss;
    const report = await runLab(L, ['web-1'], [{ name: 'yes', type: 'command', exec: 'yes', timeout: '2s' }]);
    const c = checkOf(report, 'web-1', 'yes');
    expect(c.status).toBe('UNHEALTHY');
    expect(JSON.stringify(c.details).length).toBeLessThan(12 * 1024);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('a 100 MB body: the verdict comes from the first MiB, memory stays bounded', async () => {
    const before = process.memoryUsage().rss;
    const t0 = Date.now();
    const report = await runLab(L, ['web-1'], [
      { name: 'big', type: 'http', url: 'http://localhost:8080/big', expected_body: 'never-there', timeout: '10s' },
      { name: 'big-json', type: 'http', url: 'http://localhost:8080/big', expected_json: { a: 1 }, timeout: '10s' },
      { name: 'big-status', type: 'http', url: 'http://localhost:8080/big', timeout: '10s' },
    ]);
    expect(checkOf(report, 'web-1', 'big')).toMatchObject({ status: 'UNHEALTHY', message: expect.stringMatching(/first 1048576 bytes/) });
    expect(checkOf(report, 'web-1', 'big-json')).toMatchObject({ status: 'UNHEALTHY', message: expect.stringMatching(/larger than/) });
    expect(checkOf(report, 'web-1', 'big-status').status).toBe('HEALTHY');
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('secrets in headers and URLs never reach the report, the table or an error', async () => {
    const secret = 'S3cr3t-T0ken-xyz';
    const report = await runLab(L, ['web-1'], [
      { name: 'auth', type: 'http', url: `http://admin:${secret}@localhost:8080/health?token=${secret}`, headers: { Authorization: `Bearer ${secret}`, 'X-Api-Key': secret } },
      { name: 'auth-refused', type: 'http', url: `http://admin:${secret}@localhost:8999/x?api_key=${secret}`, headers: { Authorization: `Bearer ${secret}` } },
      { name: 'auth-silent', type: 'http', url: `http://admin:${secret}@{{address}}:8999/`, timeout: '1s' },
    ]);
    expect(checkOf(report, 'web-1', 'auth').status).toBe('HEALTHY');
    const everything = JSON.stringify(report) + renderTable(report, { color: false, verbose: true });
    expect(everything).not.toContain(secret);
  });
});
