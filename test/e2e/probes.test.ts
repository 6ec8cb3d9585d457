/**
 * Every probe type against the real lab, passing and failing for a real reason. No mocks: the
 * "VMs" are network namespaces with their own sshd, nginx, redis and postgres.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLab, isRoot, labExec, labFault, type Lab } from '../lab/lab.js';
import { checkOf, runLab, vmReport } from '../support/fleet-run.js';

const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: probe tests skipped: the lab needs root (network namespaces)');

suite('probes against the lab', () => {
  const L = lab as Lab;

  it.each([
    ['http JSON via the guest tunnel', { type: 'http', url: 'http://localhost:8080/health', expected_json: { status: 'ok', db: { status: 'ok' } } }, 'HEALTHY', /HTTP 200, JSON as expected/],
    ['http dotted JSON path', { type: 'http', url: 'http://localhost:8080/health', expected_json: { 'db.status': 'ok' } }, 'HEALTHY', /JSON as expected/],
    ['http wrong JSON value', { type: 'http', url: 'http://localhost:8080/health', expected_json: { status: 'down' } }, 'UNHEALTHY', /JSON key status is "ok", expected "down"/],
    ['http body substring', { type: 'http', url: 'http://localhost/', expected_body: 'clonebox lab' }, 'HEALTHY', /HTTP 200/],
    ['http body missing', { type: 'http', url: 'http://localhost/', expected_body: 'no such text' }, 'UNHEALTHY', /does not contain "no such text"/],
    ['http wrong status', { type: 'http', url: 'http://localhost:8080/nope' }, 'UNHEALTHY', /HTTP 404 .*expected 200/],
    ['http status list', { type: 'http', url: 'http://localhost:8080/nope', expected_status: [200, 404] }, 'HEALTHY', /HTTP 404/],
    ['http from the host to the VM address', { type: 'http', url: 'http://{{address}}/health', expected_json: { status: 'ok' } }, 'HEALTHY', /HTTP 200/],
    ['http nothing listening in the guest', { type: 'http', url: 'http://localhost:8999/' }, 'UNHEALTHY', /refused/],
    ['tcp redis in the guest', { type: 'tcp', host: 'localhost', port: 6379 }, 'HEALTHY', /connected to localhost:6379 in the guest/],
    ['tcp closed port in the guest', { type: 'tcp', host: 'localhost', port: 6390 }, 'UNHEALTHY', /refused/],
    ['tcp from the host', { type: 'tcp', host: '{{address}}', port: 22 }, 'HEALTHY', /connected/],
    ['command output', { type: 'command', exec: 'redis-cli -h 127.0.0.1 ping', expected_output: 'PONG' }, 'HEALTHY', /contains "PONG"/],
    ['command exit code', { type: 'command', exec: 'exit 3' }, 'UNHEALTHY', /exited with 3 \(expected 0\)/],
    ['command expected non-zero', { type: 'command', exec: 'exit 3', exit_code: 3 }, 'HEALTHY', /exited with 3/],
    ['command wrong output', { type: 'command', exec: 'echo LOADING', expected_output: 'PONG' }, 'UNHEALTHY', /does not contain "PONG" \(got "LOADING"\)/],
    ['script missing', { type: 'script', path: '/nonexistent/check.sh' }, 'UNHEALTHY', /does not exist in the guest/],
    ['disk below warning', { type: 'disk', path: '/', warning_percent: 99, critical_percent: 100 }, 'HEALTHY', /% full$/],
    ['memory below critical', { type: 'memory', warning_percent: 99.9, critical_percent: 100 }, 'HEALTHY', /memory .*% used/],
    ['memory above critical', { type: 'memory', warning_percent: 0, critical_percent: 0 }, 'UNHEALTHY', /critical at 0%/],
  ])('%s', async (_why, spec, status, message) => {
    const report = await runLab(L, ['web-1'], [{ name: 'c', ...spec }]);
    const c = checkOf(report, 'web-1', 'c');
    expect({ status: c.status, message: c.message }).toEqual({ status, message: expect.stringMatching(message) });
  });

  it('a script in the guest runs with its arguments', async () => {
    const script = `${L.dir}/vms/web-1/check.sh`;
    await labExec('web-1', `printf '#!/bin/sh\\necho "args:$1,$2"\\nexit 0\\n' > ${script} && chmod +x ${script}`);
    const report = await runLab(L, ['web-1'], [{ name: 's', type: 'script', path: script, args: ['a b', 'c'], expected_output: 'args:a b,c' }]);
    expect(checkOf(report, 'web-1', 's')).toMatchObject({ status: 'HEALTHY', transport: 'ssh' });
  });

  it('postgres bound to the guest loopback is reached only through the tunnel', async () => {
    const report = await runLab(L, ['db-1'], [
      { name: 'pg-tunnel', type: 'tcp', host: 'localhost', port: 5432 },
      { name: 'pg-host', type: 'tcp', host: '{{address}}', port: 5432 },
      { name: 'pg-ready', type: 'command', exec: 'pg_isready -h 127.0.0.1 -p 5432' },
    ]);
    expect(checkOf(report, 'db-1', 'pg-tunnel')).toMatchObject({ status: 'HEALTHY', transport: 'ssh-tunnel' });
    expect(checkOf(report, 'db-1', 'pg-host')).toMatchObject({ status: 'UNHEALTHY', transport: 'host' });
    expect(checkOf(report, 'db-1', 'pg-ready').status).toBe('HEALTHY');
  });

  describe('disk thresholds on a real filesystem', () => {
    afterAll(() => labFault('web-2', 'disk', '0'));
    it.each([
      [0, 'HEALTHY'],
      [85, 'DEGRADED'],
      [95, 'UNHEALTHY'],
    ] as const)('filled to %i%% → %s', async (percent, status) => {
      await labFault('web-2', 'disk', String(percent));
      const vm = L.vms['web-2']!;
      const report = await runLab(L, ['web-2'], [{ name: 'data', type: 'disk', path: vm.dataDir }]);
      const c = checkOf(report, 'web-2', 'data');
      expect(c.status).toBe(status);
      expect(Math.abs((c.details.percent as number) - percent)).toBeLessThan(3);
    });
  });

  describe('a stopped service', () => {
    beforeAll(() => labFault('web-2', 'stop', 'nginx'));
    afterAll(() => labFault('web-2', 'start', 'nginx'));
    it('makes the http check UNHEALTHY and the VM UNHEALTHY, while other checks still run', async () => {
      const report = await runLab(L, ['web-2'], [
        { name: 'api', type: 'http', url: 'http://localhost:8080/health', critical: true },
        { name: 'ping', type: 'command', exec: 'redis-cli -h 127.0.0.1 ping', expected_output: 'PONG' },
      ]);
      expect(checkOf(report, 'web-2', 'api')).toMatchObject({ status: 'UNHEALTHY', message: expect.stringMatching(/refused/) });
      expect(checkOf(report, 'web-2', 'ping').status).toBe('HEALTHY');
      expect(vmReport(report, 'web-2').overall_status).toBe('UNHEALTHY');
    });
    it('a non-critical check only degrades the VM', async () => {
      const report = await runLab(L, ['web-2'], [{ name: 'api', type: 'http', url: 'http://localhost:8080/health', critical: false }]);
      expect(vmReport(report, 'web-2').overall_status).toBe('DEGRADED');
    });
  });
});
