/**
 * ProxyJump for real: guests that only their "hypervisor" can reach (test/lab/jump.sh), one and two hops, one
 * pooled connection per jump host shared by the VMs behind it and kept across rounds, host keys at every hop,
 * and a jump host that is down or silent making its VMs UNKNOWN, said once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { SshConfigCache } from '../../src/config/resolve.js';
import { checkFleet } from '../../src/engine/fleet.js';
import { VirshBackend } from '../../src/inventory/virsh.js';
import type { FleetReport } from '../../src/report.js';
import { SshPool } from '../../src/transport/ssh-pool.js';
import { ensureJumpLab, jumpFault, type JumpLab } from '../lab/jump.js';
import { ensureLab, isRoot, REPO_ROOT, run } from '../lab/lab.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
// The fleet lab first: it owns the lab's name prefix and keeps `unreachable NET/16` on the host.
const jump = isRoot() ? await ensureLab().then(() => ensureJumpLab()) : undefined;
const suite = jump ? describe : describe.skip;
const dir = mkdtempSync(path.join(tmpdir(), 'cbx-jump-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** An OpenSSH client config naming the jump hosts, and a clonebox config for the jump lab that uses it. */
function configs(J: JumpLab, opts: { knownHosts?: string; extraSsh?: string[]; keysFor?: string; checks?: unknown[]; vms?: Record<string, unknown> } = {}): { yaml: string; sshConfig: string } {
  const sshConfig = path.join(dir, `ssh_config.${++n}`);
  writeFileSync(
    sshConfig,
    [
      ...(opts.extraSsh ?? []),
      'Host hv1',
      `  HostName ${J.jumpHosts.hv1!.address}`,
      'Host hv2',
      `  HostName ${J.jumpHosts.hv2!.address}`,
      'Host inner-* !inner-2',
      '  ProxyJump hv1',
      'Host inner-2',
      '  ProxyJump hv1,hv2',
      `Host ${opts.keysFor ?? '*'}`,
      `  IdentityFile ${J.identityFile}`,
      'Host *',
      `  UserKnownHostsFile ${opts.knownHosts ?? J.knownHostsFile}`,
      '  User root',
      '',
    ].join('\n'),
  );
  const checks = opts.checks ?? [
    { name: 'where', type: 'command', exec: 'ip -4 -o addr show dev eth0' },
    { name: 'sshd-local', type: 'tcp', host: 'localhost', port: 22 },
  ];
  const yaml = stringify({ libvirt: { uri: J.uri }, ssh: { config_file: sshConfig }, health_checks: checks, ...(opts.vms ? { vms: opts.vms } : {}) });
  return { yaml, sshConfig };
}

function inProcess(yaml: string, pool: SshPool): Promise<FleetReport> {
  return checkFleet({
    config: parseConfig(yaml, 'jump.yaml'),
    selectors: [],
    all: true,
    concurrency: 8,
    backend: async () => new VirshBackend(parseConfig(yaml, 'jump.yaml').libvirt.uri!),
    pool,
    sshConfigs: new SshConfigCache(),
  });
}

const vm = (r: FleetReport, name: string) => r.reports.find((x) => x.vm_name === name)!;
const accepted = (log: string) => (readFileSync(log, 'utf8').match(/Accepted publickey for root/g) ?? []).length;

function clonebox(args: string[]) {
  return run('node', [BIN, ...args], { timeoutMs: 90_000, env: { ...process.env, NO_COLOR: '1' } as NodeJS.ProcessEnv });
}

suite('ProxyJump through the jump lab', () => {
  const J = jump as JumpLab;

  it('the guests have no route from here: only their jump hosts reach them', () => {
    for (const g of Object.values(J.guests)) {
      expect(() => execFileSync('ip', ['route', 'get', g.address], { stdio: 'pipe' })).toThrow();
    }
    expect(() => execFileSync('ip', ['route', 'get', J.jumpHosts.hv2!.address], { stdio: 'pipe' })).toThrow();
  });

  it('one and two hops; one connection per jump host shared by its VMs, kept across rounds', async () => {
    const vms = Object.fromEntries(
      Object.entries(J.guests).map(([name, g]) => [name, { health_checks: [{ name: 'me', type: 'command', exec: 'ip -4 -o addr show dev eth0', expected_output: `${g.address}/30` }] }]),
    );
    const { yaml } = configs(J, { vms });
    const pool = new SshPool();
    const hv1Before = accepted(J.jumpHosts.hv1!.sshdLog);
    try {
      const first = await inProcess(yaml, pool);
      for (const name of Object.keys(J.guests)) {
        // `me` ran in the guest itself (its own address); `sshd-local` went through a tunnel inside the jumped connection.
        expect(vm(first, name), JSON.stringify(vm(first, name))).toMatchObject({ overall_status: 'HEALTHY' });
      }
      // hv1, hv2 and three guests.
      expect(pool.stats().connectionsOpened).toBe(5);
      const second = await inProcess(yaml, pool);
      expect(second.summary.overall_status).toBe('HEALTHY');
      expect(pool.stats().connectionsOpened).toBe(5); // nothing new in a steady round
    } finally {
      await pool.close();
    }
    // hv1 saw one login for all three guests (inner-2 goes through hv1 to hv2) and both rounds.
    expect(accepted(J.jumpHosts.hv1!.sshdLog) - hv1Before).toBe(1);
  });

  it('checks host keys at every hop', async () => {
    const known = readFileSync(J.knownHostsFile, 'utf8').split('\n');
    const withoutHv2 = path.join(dir, 'kh-no-hv2');
    writeFileSync(withoutHv2, known.filter((l) => !l.startsWith(`${J.jumpHosts.hv2!.address} `)).join('\n'));
    const otherKey = readFileSync(path.join(path.dirname(J.knownHostsFile), 'hostkeys', 'hv2.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    const hv1Changed = path.join(dir, 'kh-hv1-changed');
    writeFileSync(hv1Changed, known.map((l) => (l.startsWith(`${J.jumpHosts.hv1!.address} `) ? `${J.jumpHosts.hv1!.address} ${otherKey}` : l)).join('\n'));

    const pool = new SshPool();
    try {
      const r = await inProcess(configs(J, { knownHosts: withoutHv2 }).yaml, pool);
      expect(vm(r, 'inner-1').overall_status).toBe('HEALTHY');
      expect(vm(r, 'inner-2').overall_status).toBe('UNKNOWN');
      expect(vm(r, 'inner-2').reason).toMatch(new RegExp(`^jump host hv2 not reachable: the host key of ${J.jumpHosts.hv2!.address.replaceAll('.', '\\.')}:22 \\(ssh-ed25519 SHA256:.*\\) is not in ${withoutHv2}`));
    } finally {
      await pool.close();
    }
    const pool2 = new SshPool();
    try {
      const r = await inProcess(configs(J, { knownHosts: hv1Changed }).yaml, pool2);
      for (const name of Object.keys(J.guests)) {
        expect(vm(r, name).overall_status).toBe('UNKNOWN');
        expect(vm(r, name).reason).toMatch(/^jump host hv1 not reachable: the host key of .* does not match .* line \d+; this may be a man-in-the-middle attack/);
      }
    } finally {
      await pool2.close();
    }
  });

  it('a wrong key for a jump host is a clear UNKNOWN naming the key', async () => {
    const wrong = path.join(dir, 'wrong_ed25519');
    rmSync(wrong, { force: true });
    rmSync(`${wrong}.pub`, { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'not-authorized', '-f', wrong]);
    const pool = new SshPool();
    try {
      const r = await inProcess(configs(J, { extraSsh: ['Host hv1', `  IdentityFile ${wrong}`, '  IdentitiesOnly yes'], keysFor: '* !hv1' }).yaml, pool);
      // IdentityFile accumulates across blocks (as in ssh): `Host * !hv1` keeps the lab key from hv1.
      expect(vm(r, 'inner-1').reason).toBe(
        `jump host hv1 not reachable: sshd at ${J.jumpHosts.hv1!.address}:22 refused the key ${wrong} for user root; add its public key to ~root/.ssh/authorized_keys on the jump host`,
      );
    } finally {
      await pool.close();
    }
  });

  it('the CLI: two hops, -v names each hop once', async () => {
    const file = path.join(dir, 'ok.yaml');
    writeFileSync(file, configs(J).yaml);
    const r = await clonebox(['health', 'check', '--all', '-v', '--config', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr.match(/^clonebox: jump host hv1: SSH connection to .* ready/gm)).toHaveLength(1);
    expect(r.stderr.match(/^clonebox: jump host hv2: SSH connection to .* via hv1 ready/gm)).toHaveLength(1);
    expect(r.stderr).toMatch(/VM inner-2: ssh .*jump hv1 \(root@[\d.]+:22\) → hv2 \(root@[\d.]+:22\) \(.* line 8\)/);
    expect(r.stdout).toMatch(/inner-2 .*HEALTHY/);
  });

  it('a jump host that is down makes its VMs UNKNOWN, said once', async () => {
    const file = path.join(dir, 'down.yaml');
    writeFileSync(file, configs(J).yaml);
    await jumpFault('hv1', 'stop');
    try {
      const r = await clonebox(['health', 'check', '--all', '-v', '--json', '--config', file]);
      expect(r.code).toBe(3);
      const report = JSON.parse(r.stdout) as FleetReport;
      for (const name of Object.keys(J.guests)) {
        expect(vm(report, name).overall_status).toBe('UNKNOWN');
        expect(vm(report, name).reason).toMatch(new RegExp(`^jump host hv1 not reachable: nothing accepts SSH connections at ${J.jumpHosts.hv1!.address.replaceAll('.', '\\.')}:22`));
      }
      // One attempt at the jump host for all its VMs, said once.
      expect(r.stderr.match(/^clonebox: jump host hv1: nothing accepts SSH connections/gm)).toHaveLength(1);
    } finally {
      await jumpFault('hv1', 'start');
    }
  });

  it('a deadline while reaching the jump host is "guest not reached" in phase jump', async () => {
    const checks = [{ name: 'where', type: 'command', exec: 'true', timeout: '1s' }];
    await jumpFault('hv1', 'link', 'down');
    const pool = new SshPool();
    try {
      const r = await inProcess(configs(J, { checks }).yaml, pool);
      for (const name of Object.keys(J.guests)) {
        const v = vm(r, name);
        expect(v.overall_status).toBe('UNKNOWN');
        // Link down: no TCP connection, or (if the kernel gave up first) unreachable; either way the jump host is named.
        expect(v.reason).toMatch(/^(guest not reached within 1s: jump host hv1 not reached: |jump host hv1 not reachable: )/);
        const c = v.checks[0]!;
        if (c.details.transport_error === 'timeout') expect(c.details.transport_phase).toBe('jump');
      }
      // No run outlives its checks' deadlines (generous slack for a loaded machine).
      expect(r.summary.duration_ms).toBeLessThan(1000 + 5000);
    } finally {
      await pool.close();
      await jumpFault('hv1', 'clear');
    }
  });
});
