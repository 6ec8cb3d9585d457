/**
 * Several hypervisors in one view, for real: the fleet lab and the jump lab are two hypervisors (each a libvirt
 * test-driver URI: no remote libvirtd is available to the tests, see docs/hypervisors.md), a third one is down.
 * VMs are named hv/domain, every output and the store carry the hypervisor, the guests of hv1 are reached through
 * it as their jump host, and the one that is down only makes its own VMs UNKNOWN.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { resolveVm } from '../../src/config/resolve.js';
import { defaultJumpFor, selectorsFor } from '../../src/inventory/hypervisors.js';
import type { FleetReport } from '../../src/report.js';
import { ensureJumpLab, type JumpLab } from '../lab/jump.js';
import { ensureLab, isRoot, REPO_ROOT, run, type Lab } from '../lab/lab.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const labs = isRoot() ? await ensureLab().then(async (fleet) => ({ fleet, jump: await ensureJumpLab() })) : undefined;
const suite = labs ? describe : describe.skip;
const dir = mkdtempSync(path.join(tmpdir(), 'cbx-hv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function clonebox(args: string[]) {
  return run('node', [BIN, ...args], { timeoutMs: 90_000, env: { ...process.env, NO_COLOR: '1' } as NodeJS.ProcessEnv });
}

describe('hypervisors: names, selectors, default jump', () => {
  it.each([
    ['qemu+ssh://root@hv1/system', 'root@hv1'],
    ['qemu+ssh://admin@hv2.example.org:2222/system?keyfile=/k', 'admin@hv2.example.org:2222'],
    ['qemu+tls://hv3/system', 'hv3'],
    ['qemu+tcp://hv4:16509/system', 'hv4'],
    ['qemu:///system', undefined],
    ['test:///default', undefined],
  ])('%s implies the jump host %s', (uri, jump) => {
    expect(defaultJumpFor(uri)).toBe(jump);
  });

  it('selectors: hv/name, a glob for the hypervisor, or a plain name (any hypervisor)', () => {
    const sel = ['hv1/web-*', '*/db-1', 'cache-1', 'hv2/x'];
    expect(selectorsFor('hv1', sel)).toEqual(['web-*', 'db-1', 'cache-1']);
    expect(selectorsFor('hv2', sel)).toEqual(['db-1', 'cache-1', 'x']);
  });

  it('the jump host: vms.NAME.ssh > hypervisors[].jump > ssh: > ~/.ssh/config > what the URI implies', () => {
    const yaml = (extra: string) =>
      parseConfig(`hypervisors:\n  - {name: hv1, uri: "qemu+ssh://root@hv1/system"${extra}}\n  - {name: hv2, uri: "qemu:///system"}\n`, 'x.yaml');
    const jumpOf = (config: ReturnType<typeof parseConfig>, hv: string, jump?: string) => {
      const h = config.hypervisors!.find((x) => x.name === hv)!;
      const ssh = resolveVm(config, `${hv}/web-1`, { domain: 'web-1', hypervisor: h, ...(jump ? { hypervisorJump: jump } : {}) }).ssh;
      return { hops: ssh.jump.map((j) => `${j.user}@${j.host}:${j.port}`), from: ssh.sources.proxy_jump };
    };
    expect(jumpOf(yaml(''), 'hv1', 'root@hv1')).toEqual({ hops: ['root@hv1:22'], from: 'hypervisors[0].uri (hv1 itself)' });
    expect(jumpOf(yaml(', jump: none'), 'hv1', 'none')).toEqual({ hops: [], from: 'hypervisors[0].jump' });
    expect(jumpOf(yaml(''), 'hv2')).toEqual({ hops: [], from: 'default' });
    const withVm = parseConfig(
      'hypervisors:\n  - {name: hv1, uri: "qemu+ssh://root@hv1/system", jump: "ops@hv1:2222"}\nssh: {proxy_jump: global}\nvms:\n  hv1/web-1: {ssh: {proxy_jump: "a,b"}}\n',
      'x.yaml',
    );
    expect(jumpOf(withVm, 'hv1', 'ops@hv1:2222')).toEqual({ hops: ['root@a:22', 'root@b:22'], from: 'vms.hv1/web-1.ssh.proxy_jump' });
    const noVm = parseConfig('hypervisors:\n  - {name: hv1, uri: "qemu+ssh://root@hv1/system", jump: "ops@hv1:2222"}\nssh: {proxy_jump: global}\n', 'x.yaml');
    expect(jumpOf(noVm, 'hv1', 'ops@hv1:2222')).toEqual({ hops: ['ops@hv1:2222'], from: 'hypervisors[0].jump' });
  });
});

suite('several hypervisors with the real CLI', () => {
  const { fleet, jump } = labs as { fleet: Lab; jump: JumpLab };
  const sshConfig = path.join(dir, 'ssh_config');
  writeFileSync(sshConfig, `Host hv1\n  HostName ${jump.jumpHosts.hv1!.address}\nHost hv2\n  HostName ${jump.jumpHosts.hv2!.address}\n`);
  const known = path.join(dir, 'known_hosts');
  writeFileSync(known, readFileSync(fleet.knownHostsFile, 'utf8') + readFileSync(jump.knownHostsFile, 'utf8'));
  const config = path.join(dir, 'clonebox.yaml');
  writeFileSync(
    config,
    stringify({
      hypervisors: [
        { name: 'lab', uri: fleet.uri },
        // The jump lab's guests are only routable from hv1: reached through it (a local test URI implies no jump).
        { name: 'hv1', uri: jump.uri, jump: 'hv1' },
        { name: 'hv3', uri: `test://${dir}/no-such-node.xml`, timeout: '3s' },
      ],
      ssh: { config_file: sshConfig, identity_file: jump.identityFile, known_hosts: known, connect_timeout: '5s' },
      vms: { 'hv1/inner-2': { ssh: { proxy_jump: 'hv1,hv2' } } },
      health_checks: [{ name: 'echo', type: 'command', exec: 'echo ok', expected_output: 'ok' }],
    }),
  );

  it('names VMs hv/domain, carries the hypervisor in JSON and Prometheus, and one hypervisor down only costs its own VMs', async () => {
    const t0 = Date.now();
    const r = await clonebox(['health', 'check', 'lab/web-1', 'lab/web-2', '*/inner-*', 'hv3/*', 'hv9/x', '--json', '--config', config]);
    const wallMs = Date.now() - t0;
    const report = JSON.parse(r.stdout) as FleetReport;
    const rows = report.reports.map((v) => [v.vm_name, v.hypervisor, v.overall_status]);
    expect(rows).toEqual([
      ['hv1/inner-1', 'hv1', 'HEALTHY'],
      ['hv1/inner-2', 'hv1', 'HEALTHY'],
      ['hv1/inner-3', 'hv1', 'HEALTHY'],
      ['hv3/*', 'hv3', 'UNKNOWN'],
      ['hv9/x', undefined, 'UNKNOWN'],
      ['lab/web-1', 'lab', 'HEALTHY'],
      ['lab/web-2', 'lab', 'HEALTHY'],
    ]);
    expect(report.reports.find((v) => v.vm_name === 'hv3/*')!.reason).toMatch(/^hypervisor hv3 unreachable: cannot connect to libvirt.*is the uri of hv3 right\?$/);
    expect(report.reports.find((v) => v.vm_name === 'hv9/x')!.reason).toBe('no hypervisor named "hv9" (hypervisors: lab, hv1, hv3)');
    expect(r.code).toBe(3);
    // hv3 fails fast; nothing waits for it (generous slack for process start-up on a loaded machine).
    expect(report.summary.duration_ms).toBeLessThan(5000);
    expect(wallMs).toBeLessThan(15_000);

    const prom = await clonebox(['health', 'check', 'lab/web-1', 'hv1/inner-2', '-o', 'prometheus', '--config', config]);
    expect(prom.stdout).toContain('clonebox_vm_up{hypervisor="hv1",vm="inner-2"} 1');
    expect(prom.stdout).toContain('clonebox_vm_up{hypervisor="lab",vm="web-1"} 1');
    const tap = await clonebox(['health', 'check', 'hv1/inner-1', '-o', 'tap', '--config', config]);
    expect(tap.stdout).toMatch(/hv1\/inner-1/);
  });

  it('the store and history are keyed by hypervisor and VM', async () => {
    const db = path.join(dir, 'history.db');
    const r = await clonebox(['health', 'check', 'hv1/inner-2', 'lab/web-1', '--store', db, '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    const h = await clonebox(['health', 'history', 'hv1/inner-2', '--store', db, '--json']);
    expect(h.code, h.stderr).toBe(0);
    expect(JSON.parse(h.stdout)).toMatchObject({ vm: 'hv1/inner-2', checks: [{ check: 'echo', results: 1, healthy: 1 }] });
  });
});
