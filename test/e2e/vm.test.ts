/**
 * End to end on a real VM: a QEMU guest (TCG here) under a real libvirtd, with its address from a
 * libvirt network's DHCP, reached over SSH. Everything runs inside network namespace cbx-vmlab
 * (test/lab/vm/up.sh); nothing leaves the machine.
 *
 * These tests prove the lab itself is real, so that CLI tests built on it prove something:
 * libvirt knows the guest's lease, the guest answers SSH with its own host key, and it serves what
 * .clonebox.yaml checks (a tmpfs root, /proc/meminfo, an httpd on its 127.0.0.1 only).
 * Set CLONEBOX_VMLAB_KEEP=1 to leave the lab up afterwards; CLONEBOX_VMLAB=0 skips this file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { FleetReport } from '../../src/report.js';
import { REPO_ROOT as REPO } from '../lab/lab.js';
import { bootVmLab, execInLabNs, guestSsh, guestSshArgs, stopVmLab, vmLabAvailable, type VmLabState } from '../lab/vm/vmlab.js';

const lab = vmLabAvailable();

if (!lab.ok) {
  console.warn(`[e2e/vm] VM lab skipped: ${lab.why}`);
  describe('VM lab (real libvirt guest)', () => {
    it.skip(`skipped: ${lab.why}`, () => {});
  });
}

describe.runIf(lab.ok)('VM lab: a real libvirt guest in netns cbx-vmlab', () => {
  let state: VmLabState;

  beforeAll(async () => {
    state = await bootVmLab({ timeoutMs: 160_000, bootTimeoutS: 90 });
    const t = state.timings;
    console.info(
      `[e2e/vm] ${state.vm} at ${state.address} (${state.accel}): libvirtd ${t.libvirtdStartMs} ms` +
        ` (capabilities cache ${t.capabilitiesCached ? 'kept' : 'cold'}), boot to lease ${t.bootToLeaseMs} ms,` +
        ` boot to SSH ${t.bootToSshMs} ms, up.sh ${t.upTotalMs} ms`,
    );
  }, 170_000);

  afterAll(async () => {
    if (process.env.CLONEBOX_VMLAB_KEEP !== '1') await stopVmLab();
  }, 60_000);

  const virsh = (...args: string[]) => execInLabNs(['virsh', '-c', state.uri, '-q', ...args]);

  it('libvirt reports the running guest and its DHCP lease', async () => {
    const list = await virsh('list', '--all', '--name');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort()).toEqual([state.offVm, state.vm].sort());

    const leases = await virsh('domifaddr', state.vm, '--source', 'lease', '--full');
    expect(leases.code, leases.stderr).toBe(0);
    // "vnet0  52:54:00:cb:00:01  ipv4  192.168.150.150/24", one line per address
    const [, mac, family, cidr] = leases.stdout.trim().split(/\s+/);
    expect({ mac, family, cidr }).toEqual({ mac: state.mac, family: 'ipv4', cidr: `${state.address}/24` });
  });

  it('the shut-off domain has no address: "domain is not running"', async () => {
    const off = await virsh('domifaddr', state.offVm, '--source', 'lease', '--full');
    expect(off.code).toBe(1);
    expect(off.stderr).toContain('domain is not running');
    expect((await virsh('domstate', state.offVm)).stdout.trim()).toBe('shut off');
  });

  it('answers SSH as root with the key from state.json; the root filesystem is a tmpfs', async () => {
    const df = await guestSsh(state, 'df -P /');
    expect(df.code, df.stderr).toBe(0);
    // Filesystem 1024-blocks Used Available Capacity Mounted on / tmpfs 65536 10672 54864 16% /
    const row = df.stdout.trim().split('\n')[1]?.split(/\s+/) ?? [];
    expect(row[0]).toBe('tmpfs');
    expect(row[5]).toBe('/');
    expect(Number(row[1])).toBeGreaterThan(0);
    expect(row[4]).toMatch(/^\d+%$/);
  });

  it('/proc/meminfo has MemTotal and MemAvailable', async () => {
    const mem = await guestSsh(state, 'cat /proc/meminfo');
    expect(mem.code, mem.stderr).toBe(0);
    expect(mem.stdout).toMatch(/^MemTotal:\s+\d+ kB$/m);
    expect(mem.stdout).toMatch(/^MemAvailable:\s+\d+ kB$/m);
  });

  it('runs commands through /bin/sh (echo, sh -c, exit codes)', async () => {
    const out = await guestSsh(state, `echo PONG; sh -c 'echo $((6 * 7))'`);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('PONG\n42\n');
    expect((await guestSsh(state, 'exit 3')).code).toBe(3);
  });

  it('refuses a guest whose host key is not in known_hosts (strict checking is real)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cbx-vmlab-'));
    try {
      writeFileSync(join(dir, 'known_hosts'), '');
      const out = await execInLabNs(guestSshArgs({ ...state, knownHosts: join(dir, 'known_hosts') }).concat('true'));
      expect(out.code).toBe(255);
      expect(out.stderr).toMatch(/Host key verification failed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves GET /health on port 80 to the hypervisor side', async () => {
    // (busybox 1.35's wget crashes with -T: execInLabNs's timeout bounds it instead.)
    const get = await execInLabNs(['busybox', 'wget', '-q', '-O', '-', `http://${state.address}:${state.guestPorts.http}/health`]);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toEqual({ status: 'ok' });
  });

  it('serves /health on the guest\'s own 127.0.0.1:8080 only, reachable through an SSH tunnel', async () => {
    // From the hypervisor side the port is closed...
    const direct = await execInLabNs(['busybox', 'wget', '-q', '-O', '-', `http://${state.address}:${state.guestPorts.httpLoopback}/health`]);
    expect(direct.code).toBe(1);
    expect(direct.stderr).toContain('Connection refused');
    // ...but a direct-tcpip channel (what ssh2's forwardOut opens) reaches it as the guest sees it.
    // "localhost" is resolved by the guest's sshd, so the guest needs its /etc/hosts.
    for (const host of ['127.0.0.1', 'localhost']) {
      const tunnel = await execInLabNs(guestSshArgs(state, ['-W', `${host}:${state.guestPorts.httpLoopback}`]), {
        input: 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n',
      });
      expect(tunnel.code, `${host}: ${tunnel.stderr}`).toBe(0);
      const [head, body] = tunnel.stdout.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.[01] 200 /);
      expect(JSON.parse(body ?? '')).toEqual({ status: 'ok' });
    }
  });

  it('the guest agent answers: libvirt reports the same address with --source agent', async (ctx) => {
    if (!state.guestAgent) ctx.skip('the image has no qemu-ga (apt-get install qemu-guest-agent, then rebuild)');
    // libvirt learns that the agent connected from a QEMU event: give it a few seconds after boot.
    let agent = await virsh('domifaddr', state.vm, '--source', 'agent', '--full');
    for (let i = 0; i < 10 && agent.code !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      agent = await virsh('domifaddr', state.vm, '--source', 'agent', '--full');
    }
    expect(agent.code, agent.stderr).toBe(0);
    expect(agent.stdout).toContain(`${state.address}/24`);
  });

  it('writes a .clonebox.yaml for the CLI that the config loader accepts', async () => {
    const config = await loadConfig(state.configFile);
    expect(config.libvirt).toMatchObject({ uri: state.uri, address_source: 'lease' });
    expect(config.ssh).toMatchObject({ user: 'root', identity_file: state.sshKey, known_hosts: state.knownHosts, host_key_policy: 'strict' });
    expect(config.health_checks.map((c) => `${c.type}:${c.name}`)).toEqual([
      'command:echo-pong',
      'disk:disk-root',
      'memory:memory',
      'http:guest-http',
      'tcp:guest-ssh',
    ]);
  });

  // The product itself, through the real path: libvirt lease → address → SSH → every probe type.
  const clonebox = (args: string[]) =>
    execInLabNs(['node', join(REPO, 'bin', 'clonebox.js'), 'health', 'check', ...args, '--connect', state.uri], { timeoutMs: 90_000 });

  it.each(['native', 'virsh'])('clonebox health check on the real guest (%s libvirt backend)', async (backend) => {
    const r = await clonebox([state.vm, state.offVm, '--config', state.configFile, '--json', '--libvirt-backend', backend]);
    const report = JSON.parse(r.stdout) as FleetReport;
    const vm = report.reports.find((x) => x.vm_name === state.vm)!;
    expect(vm, r.stderr).toMatchObject({ overall_status: 'HEALTHY', address: state.address, domain_state: 'running' });
    expect(Object.fromEntries(vm.checks.map((c) => [c.name, `${c.status}/${c.transport}`]))).toEqual({
      'echo-pong': 'HEALTHY/ssh',
      'disk-root': 'HEALTHY/ssh',
      memory: 'HEALTHY/ssh',
      'guest-http': 'HEALTHY/ssh-tunnel',
      'guest-ssh': 'HEALTHY/ssh-tunnel',
    });
    expect(vm.checks.find((c) => c.name === 'disk-root')!.details).toMatchObject({ filesystem: expect.any(String), mount: '/' });
    const off = report.reports.find((x) => x.vm_name === state.offVm)!;
    expect(off).toMatchObject({ overall_status: 'UNKNOWN', reason: 'the VM is shut off' });
    expect(r.code).toBe(3);
  });

  it('with SSH closed, guest probes fall back to the guest agent when allowed, and say so', async (ctx) => {
    if (!state.guestAgent) ctx.skip('the image has no qemu-ga (apt-get install qemu-guest-agent, then rebuild)');
    const dir = mkdtempSync(join(tmpdir(), 'clonebox-vm-'));
    try {
      const file = join(dir, '.clonebox.yaml');
      // Port 2 has nothing listening: SSH is refused, as on a guest whose sshd is down.
      writeFileSync(
        file,
        `${readFileSync(state.configFile, 'utf8')}\nvms:\n  ${state.vm}:\n    agent_fallback: true\n    ssh: {port: 2}\n`,
      );
      const r = await clonebox([state.vm, '--config', file, '--json', '--probe', 'echo-pong', '--probe', 'disk-root', '--probe', 'memory', '--probe', 'guest-http']);
      const vm = (JSON.parse(r.stdout) as FleetReport).reports[0]!;
      expect(Object.fromEntries(vm.checks.map((c) => [c.name, `${c.status}/${c.transport}`])), r.stderr).toEqual({
        'echo-pong': 'HEALTHY/agent',
        'disk-root': 'HEALTHY/agent',
        memory: 'HEALTHY/agent',
        'guest-http': 'UNKNOWN/ssh-tunnel',
      });
      // `health watch` honours it too: with SSH refused, only the agent can make these checks HEALTHY.
      const w = await execInLabNs(
        ['node', join(REPO, 'bin', 'clonebox.js'), 'health', 'watch', state.vm, '--config', file, '--json', '--no-store', '--rounds', '1', '--interval', '5s', '--probe', 'echo-pong', '--probe', 'memory', '--connect', state.uri],
        { timeoutMs: 90_000 },
      );
      const round = w.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; checks?: { total: number; healthy: number } })
        .find((e) => e.type === 'round');
      expect(round?.checks, w.stdout + w.stderr).toMatchObject({ total: 2, healthy: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
