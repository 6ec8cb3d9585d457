/**
 * ~/.ssh/config end to end: the real CLI against the fleet lab's real sshd, with an OpenSSH client config that
 * picks keys per Host pattern. Several IdentityFile are tried in order; a wrong key is a clear UNKNOWN;
 * StrictHostKeyChecking no is refused; `-v` says where each setting came from.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureLab, isRoot, REPO_ROOT, run, type Lab } from '../lab/lab.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;

const dir = mkdtempSync(path.join(tmpdir(), 'cbx-sshcfg-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function clonebox(args: string[]) {
  return run('node', [BIN, ...args], { timeoutMs: 60_000, env: { ...process.env, NO_COLOR: '1' } as NodeJS.ProcessEnv });
}

suite('~/.ssh/config with the real CLI and the fleet lab', () => {
  const L = lab as Lab;
  const wrongKey = path.join(dir, 'wrong_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'not-authorized', '-f', wrongKey]);
  const sshConfig = path.join(dir, 'ssh_config');
  const included = path.join(dir, 'conf.d', 'web3.conf');
  execFileSync('mkdir', ['-p', path.dirname(included)]);
  writeFileSync(
    sshConfig,
    [
      '# clonebox test client config',
      `Include ${path.join(dir, 'conf.d')}/*.conf`,
      'Host web-1',
      `  IdentityFile ${wrongKey}`,
      `  IdentityFile ${L.identityFile}`,
      '  IdentitiesOnly yes',
      'Host web-2',
      `  IdentityFile ${wrongKey}`,
      '  IdentitiesOnly yes',
      'Host web-* !web-2',
      '  ConnectTimeout 4',
      'Host *',
      `  UserKnownHostsFile ${L.knownHostsFile}`,
      '  User root',
      '',
    ].join('\n'),
  );
  writeFileSync(included, `Host web-3\n  IdentityFile ${L.identityFile}\n  StrictHostKeyChecking no\n`);
  const config = path.join(dir, 'clonebox.yaml');
  writeFileSync(
    config,
    stringify({
      libvirt: { uri: L.uri },
      ssh: { config_file: sshConfig },
      vms: { 'db-1': { ssh: { identity_file: L.identityFile } } },
      health_checks: [{ name: 'echo', type: 'command', exec: 'echo ok', expected_output: 'ok' }],
    }),
  );

  it('tries several IdentityFile in order, refuses a wrong key and StrictHostKeyChecking no, each clearly', async () => {
    const r = await clonebox(['health', 'check', 'web-1', 'web-2', 'web-3', 'db-1', '--json', '-v', '--config', config]);
    const report = JSON.parse(r.stdout) as { reports: Array<{ vm_name: string; overall_status: string; reason?: string }> };
    const vm = (name: string) => report.reports.find((x) => x.vm_name === name)!;
    // web-1: the first key is refused, the second logs in.
    expect(vm('web-1')).toMatchObject({ overall_status: 'HEALTHY' });
    // web-2: only the wrong key (IdentitiesOnly): UNKNOWN, naming the key and the user.
    expect(vm('web-2').overall_status).toBe('UNKNOWN');
    expect(vm('web-2').reason).toContain(`refused the key ${wrongKey} for user root`);
    // web-3: refused before any connection, naming the included file and its line.
    expect(vm('web-3').overall_status).toBe('UNKNOWN');
    expect(vm('web-3').reason).toBe(
      `${included} line 3: StrictHostKeyChecking no would turn host key checks off, which clonebox never does; remove it for this host, or set ssh.host_key_policy (strict or accept-new) in the clonebox config`,
    );
    // db-1: vms.NAME.ssh over ~/.ssh/config; known_hosts and user from `Host *`.
    expect(vm('db-1').overall_status).toBe('HEALTHY');
    expect(r.code).toBe(3);
    // -v: where each setting came from, per VM.
    expect(r.stderr).toContain(`VM web-1: ssh address ${L.vms['web-1']!.address} (libvirt); user root (${sshConfig} line 14)`);
    expect(r.stderr).toContain(`identity ${wrongKey}, ${L.identityFile} (${sshConfig} line 4, ${sshConfig} line 5)`);
    expect(r.stderr).toContain(`connect timeout 4s (${sshConfig} line 11)`);
    expect(r.stderr).toMatch(/VM web-2: ssh .*connect timeout 10s \(default\)/);
    expect(r.stderr).toMatch(new RegExp(`VM db-1: ssh .*identity ${L.identityFile} \\(vms\\.db-1\\.ssh\\.identity_file\\)`));
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
  });

  it('use_ssh_config: false ignores the file', async () => {
    const off = path.join(dir, 'off.yaml');
    writeFileSync(
      off,
      stringify({
        libvirt: { uri: L.uri },
        ssh: { config_file: sshConfig, use_ssh_config: false, identity_file: L.identityFile, known_hosts: L.knownHostsFile },
        health_checks: [{ name: 'echo', type: 'command', exec: 'echo ok' }],
      }),
    );
    const r = await clonebox(['health', 'check', 'web-2', 'web-3', '--json', '--config', off]);
    expect(r.code).toBe(0);
  });
});
