/**
 * The real CLI, as a user runs it (`node bin/clonebox.js`, built by `npm test`'s setup): exit codes,
 * the table and the JSON, colour rules, and one clear sentence for every mistake a user can make.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureLab, isRoot, REPO_ROOT, run, type Lab } from '../lab/lab.js';
import { labConfigYaml, writeTempConfig } from '../support/fleet-run.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: CLI tests skipped: the lab needs root (network namespaces)');

function clonebox(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, ...env };
  return run('node', [BIN, ...args], { timeoutMs: 60_000, env: base as NodeJS.ProcessEnv });
}

const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);

suite('clonebox health check (CLI)', () => {
  const L = lab as Lab;

  it('checks the whole demo fleet: table, exit code of the worst VM', async () => {
    const r = await clonebox(['health', 'check', '--all', '--config', L.configPath]);
    expect(r.code).toBe(2); // web-3 answers 503
    expect(r.stdout).toMatch(/web-1 .*HEALTHY/);
    expect(r.stdout).toMatch(/web-3 .*UNHEALTHY/);
    expect(r.stdout).toMatch(/off-1 .*UNKNOWN/);
    expect(r.stdout).toMatch(/cannot evaluate: the VM is shut off/);
    expect(r.stdout).toMatch(/cannot evaluate: the VM is paused/);
    expect(r.stdout).toMatch(/postgres .*HEALTHY/);
    expect(r.stdout).toMatch(/^Fleet UNHEALTHY: 6 VMs/m);
    expect(r.stdout).not.toMatch(/\x1b\[/); // not a TTY: no colour
  });

  it('--json prints the documented shape', async () => {
    const r = await clonebox(['health', 'check', 'web-1', 'off-1', '--json', '--config', L.configPath]);
    expect(r.code).toBe(3); // healthy + unknown → unknown
    const report = JSON.parse(r.stdout);
    expect(report.summary).toMatchObject({ schema_version: 1, overall_status: 'UNKNOWN', vms: { total: 2, healthy: 1, unknown: 1 } });
    const web1 = report.reports.find((x: { vm_name: string }) => x.vm_name === 'web-1');
    expect(web1).toMatchObject({ overall_status: 'HEALTHY', address: L.vms['web-1']!.address, domain_state: 'running' });
    for (const c of web1.checks) {
      expect(Object.keys(c).sort()).toEqual(['critical', 'details', 'duration_ms', 'message', 'name', 'status', 'timestamp', 'transport', 'type']);
    }
    expect(web1.counts.total).toBe(web1.total_checks);
  });

  it('globs, several names and --probe', async () => {
    const r = await clonebox(['health', 'check', 'web-*', 'db-1', '--probe', 'redis-ping', '--probe', 'memory', '--json', '--config', L.configPath]);
    const report = JSON.parse(r.stdout);
    expect(report.reports.map((x: { vm_name: string }) => x.vm_name)).toEqual(['db-1', 'web-1', 'web-2', 'web-3']);
    for (const vm of report.reports) expect(vm.checks.map((c: { name: string }) => c.name)).toEqual(['redis-ping', 'memory']);
    expect(r.code).toBe(0);
  });

  it('--concurrency 1 gives the same verdicts', async () => {
    const r = await clonebox(['health', 'check', '--all', '--concurrency', '1', '--json', '--config', L.configPath]);
    expect(JSON.parse(r.stdout).summary.vms).toMatchObject({ total: 6, healthy: 3, unhealthy: 1, unknown: 2 });
  });

  it('--connect overrides the config\'s libvirt URI', async () => {
    const r = await clonebox(['health', 'check', 'web-1', '--connect', 'test:///nonexistent.xml', '--config', L.configPath]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/cannot connect to libvirt at test:\/\/\/nonexistent\.xml/);
  });

  it('colour on FORCE_COLOR, none with NO_COLOR', async () => {
    expect((await clonebox(['health', 'check', 'web-1', '--config', L.configPath], { FORCE_COLOR: '1' })).stdout).toMatch(/\x1b\[32m/);
    expect((await clonebox(['health', 'check', 'web-1', '--config', L.configPath], { NO_COLOR: '1' })).stdout).not.toMatch(/\x1b\[/);
  });

  describe('mistakes get one clear sentence, exit 3, no stack trace', () => {
    it.each([
      ['a config that is not YAML', 'health_checks: [\n', /invalid config:\n.*\.clonebox\.yaml:2:1: not valid YAML/],
      ['a wrong type', 'health_checks:\n  - {name: a, type: tcp, port: "x"}\n', /\.clonebox\.yaml:2:\d+: health_checks\[0\]\.port: expected number/],
      ['an unknown probe type', 'health_checks:\n  - {name: a, type: htp}\n', /unknown check type "htp".*did you mean "http"/],
      ['a negative timeout', 'health_checks:\n  - {name: a, type: memory, timeout: -1s}\n', /health_checks\[0\]\.timeout: expected a duration/],
    ])('%s', async (_why, yaml, message) => {
      const file = await writeTempConfig(yaml);
      const r = await clonebox(['health', 'check', 'web-1', '--config', file]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(message);
      noStack(r.stderr);
    });

    it('a missing config file', async () => {
      const r = await clonebox(['health', 'check', 'web-1', '--config', '/nonexistent/.clonebox.yaml']);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/\/nonexistent\/\.clonebox\.yaml: config file not found/);
    });

    it('an unknown --probe', async () => {
      const r = await clonebox(['health', 'check', 'web-1', '--probe', 'redis-pong', '--config', L.configPath]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/no check named "redis-pong".*did you mean "redis-ping"/);
    });

    it('an unreachable libvirt with --all', async () => {
      const file = await writeTempConfig(labConfigYaml({ ...L, uri: 'qemu+unix:///system?socket=/nonexistent/sock' }, [{ name: 'm', type: 'memory' }]));
      const r = await clonebox(['health', 'check', '--all', '--config', file]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^clonebox: cannot connect to libvirt at qemu\+unix/);
      noStack(r.stderr);
    });

    it('no VM named', async () => {
      const file = await writeTempConfig('health_checks: []\n');
      const r = await clonebox(['health', 'check', '--config', file]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/name the VMs to check/);
    });

    it('a bad flag', async () => {
      const r = await clonebox(['health', 'check', '--concurrency', 'lots']);
      expect(r.code).toBe(3);
      noStack(r.stderr);
    });
  });

  it('--help and --version answer quickly', async () => {
    const t0 = Date.now();
    const r = await clonebox(['health', 'check', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--probe/);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await clonebox(['--version'])).stdout).toMatch(/clonebox-health\/\d+\.\d+\.\d+/);
  });

  it('a config with an address override runs without libvirt at all', async () => {
    const vm = L.vms['web-1']!;
    const yaml = labConfigYaml({ ...L, uri: 'test:///nonexistent.xml' }, [{ name: 'ping', type: 'command', exec: 'echo PONG', expected_output: 'PONG' }], {
      vms: { 'forwarded-vm': { address: vm.address } },
    });
    const file = await writeTempConfig(yaml);
    await writeFile(file, yaml);
    const r = await clonebox(['health', 'check', 'forwarded-vm', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/forwarded-vm .*HEALTHY/);
  });
});
