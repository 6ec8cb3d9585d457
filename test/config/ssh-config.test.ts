/**
 * ~/.ssh/config resolution, compared with what OpenSSH itself says (`ssh -F FILE -G HOST`) for a table of cases,
 * then the precedence rows (flags > vms.NAME.ssh > ssh: > ~/.ssh/config > defaults) and the refusals.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { describeSsh, resolveVm, SshConfigCache } from '../../src/config/resolve.js';
import { expandPathTokens, loadSshClientConfig, parseProxyJump, resolveSshForVm, resolveSshHost } from '../../src/config/ssh-config.js';

const dir = mkdtempSync(join(tmpdir(), 'cbx-sshcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** Write a config (and files it includes) and return its path. */
function writeConfig(text: string, includes: Record<string, string> = {}): string {
  const base = join(dir, `case${++n}`);
  mkdirSync(base, { recursive: true });
  for (const [name, body] of Object.entries(includes)) {
    mkdirSync(join(base, name, '..'), { recursive: true });
    writeFileSync(join(base, name), body.replaceAll('@DIR@', base));
  }
  const file = join(base, 'config');
  writeFileSync(file, text.replaceAll('@DIR@', base));
  return file;
}

let hasSsh = true;
try {
  execFileSync('ssh', ['-V'], { stdio: 'ignore' });
} catch {
  hasSsh = false;
}

/** `ssh -G`'s view of the keys clonebox reads. */
function sshG(file: string, host: string): Record<string, string[]> {
  const out = execFileSync('ssh', ['-F', file, '-G', host], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const got: Record<string, string[]> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ');
    if (i < 0) continue;
    (got[line.slice(0, i)] ??= []).push(line.slice(i + 1));
  }
  return got;
}

const DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'].map((k) => `~/.ssh/${k}`);

/** Our resolution in `ssh -G`'s words. */
function ours(file: string, host: string): Record<string, string | string[]> {
  const cfg = loadSshClientConfig(file)!;
  const r = resolveSshHost(cfg, host);
  const strict = r.strictHostKeyChecking?.value;
  return {
    hostname: r.hostName?.value ?? host.toLowerCase(),
    user: r.user?.value ?? userInfo().username,
    port: String(r.port?.value ?? 22),
    identityfile: r.identityFiles.map((f) => f.value),
    proxyjump: r.proxyJump && r.proxyJump.value !== 'none' ? r.proxyJump.value : '',
    stricthostkeychecking: strict === undefined ? 'ask' : strict === 'yes' ? 'true' : strict === 'no' ? 'false' : strict,
    connecttimeout: r.connectTimeoutMs?.value === undefined ? 'none' : String(r.connectTimeoutMs.value / 1000),
    serveraliveinterval: String((r.serverAliveIntervalMs?.value ?? 0) / 1000),
    identitiesonly: r.identitiesOnly?.value ? 'yes' : 'no',
    userknownhostsfile: r.userKnownHostsFiles?.value.join(' ') ?? '',
  };
}

function theirs(file: string, host: string): Record<string, string | string[]> {
  const g = sshG(file, host);
  const hostname = g.hostname?.[0] ?? '';
  const user = g.user?.[0] ?? '';
  const port = Number(g.port?.[0] ?? 22);
  const ids = (g.identityfile ?? []).filter((f) => !DEFAULT_IDENTITIES.includes(f) || (g.identityfile ?? []).length !== DEFAULT_IDENTITIES.length);
  const tokens = { host: hostname, original: host, port, user, localUser: userInfo().username };
  const known = g.userknownhostsfile?.[0] ?? '';
  return {
    hostname,
    user,
    port: String(port),
    // ssh -G prints IdentityFile as written; ssh(1) expands it when loading the key, as clonebox does at once.
    identityfile: ids.map((f) => expandPathTokens(f, tokens)),
    proxyjump: g.proxyjump?.[0] ?? '',
    stricthostkeychecking: g.stricthostkeychecking?.[0] ?? '',
    connecttimeout: g.connecttimeout?.[0] ?? '',
    serveraliveinterval: g.serveraliveinterval?.[0] ?? '',
    identitiesonly: g.identitiesonly?.[0] ?? '',
    // The default (unset in ours) is ~/.ssh/known_hosts ~/.ssh/known_hosts2.
    userknownhostsfile: /^\S+\/\.ssh\/known_hosts \S+\/\.ssh\/known_hosts2$/.test(known) ? '' : known,
  };
}

interface Case {
  why: string;
  config: string;
  includes?: Record<string, string>;
  hosts: string[];
}

const CASES: Case[] = [
  {
    why: 'Host patterns with * and ?, first value wins',
    config: 'Host web-?\n  User alice\n  Port 2201\nHost web-*\n  User bob\n  IdentityFile /k/web\nHost *\n  User carol\n  Port 2299\n',
    hosts: ['web-1', 'web-12', 'db-1'],
  },
  {
    why: 'a negated pattern excludes the host even when another pattern matches',
    config: 'Host web-* !web-9\n  ProxyJump hv1\nHost *\n  ProxyJump none\n',
    hosts: ['web-1', 'web-9', 'other'],
  },
  {
    why: 'several IdentityFile accumulate in order, across blocks, without duplicates',
    config: 'Host web-1\n  IdentityFile /k/one\n  IdentityFile /k/two\nHost web-*\n  IdentityFile /k/three\n  IdentityFile /k/one\n',
    hosts: ['web-1', 'web-2'],
  },
  {
    why: 'Include with a glob, in lexical order; an Include inside a non-matching block never applies',
    config: 'Include @DIR@/conf.d/*.conf\nHost nomatch\n  Include @DIR@/never.conf\nHost *\n  User fallback\n',
    includes: {
      'conf.d/10-web.conf': 'Host web-*\n  User from-10\n  HostName 10.1.1.1\n',
      'conf.d/20-all.conf': 'Host *\n  User from-20\n  Port 2020\n',
      'never.conf': 'Host *\n  ConnectTimeout 77\n',
    },
    hosts: ['web-1', 'db-1'],
  },
  {
    why: 'a Host line in an included file does not change the state of the including file',
    config: 'Host web-*\n  Include @DIR@/inc.conf\n  User still-web\nHost *\n  User other\n',
    includes: { 'inc.conf': 'Host db-*\n  Port 2222\n' },
    hosts: ['web-1', 'db-1'],
  },
  {
    why: 'Match host sees the HostName set before it; Match originalhost sees the name given',
    config: 'Host web-1\n  HostName 10.9.0.5\nMatch host 10.9.*\n  Port 2209\nMatch originalhost web-*\n  User orig\n',
    hosts: ['web-1', '10.9.0.7', 'web-2'],
  },
  {
    why: 'Match user sees User set earlier, and negation of a criterion',
    config: 'Host a\n  User deploy\nMatch user deploy\n  Port 2300\nMatch !user deploy\n  Port 2400\n',
    hosts: ['a', 'b'],
  },
  {
    why: 'Match final: a second pass where Host lines match the HostName',
    config: 'Host c\n  HostName 10.0.0.1\nHost 10.0.0.1\n  Port 99\nMatch final host 10.*\n  User fin\n',
    hosts: ['c', 'd'],
  },
  {
    why: 'the keys clonebox reads, with their syntax variants (= separator, quoted values, units)',
    config:
      'Host k\n  StrictHostKeyChecking=accept-new\n  ConnectTimeout 7\n  ServerAliveInterval 1m\n  IdentitiesOnly yes\n  IdentityFile "/k/with space"\n  UserKnownHostsFile /kh/one /kh/two\nHost y\n  StrictHostKeyChecking yes\nHost n\n  StrictHostKeyChecking no\n',
    hosts: ['k', 'y', 'n'],
  },
  {
    why: 'tokens in HostName and IdentityFile',
    config: 'Host t-*\n  HostName %h.example\n  User tok\n  Port 2022\n  IdentityFile /k/%h-%r-%p-%n\n',
    hosts: ['t-1'],
  },
];

describe.skipIf(!hasSsh)('~/.ssh/config resolves as `ssh -G` resolves it', () => {
  for (const c of CASES) {
    it(c.why, () => {
      const file = writeConfig(c.config, c.includes);
      for (const host of c.hosts) expect({ host, ...ours(file, host) }).toEqual({ host, ...theirs(file, host) });
    });
  }
});

describe('~/.ssh/config details', () => {
  it('keeps the file and line of each value, through Include', () => {
    const file = writeConfig('# top\n\nHost web-*\n  User alice\nInclude @DIR@/more.conf\n', { 'more.conf': '\n\nHost *\n  Port 2222\n' });
    const r = resolveSshHost(loadSshClientConfig(file)!, 'web-1');
    expect(r.user).toMatchObject({ value: 'alice', file, line: 4 });
    expect(r.port).toMatchObject({ value: 2222, file: join(file, '..', 'more.conf'), line: 4 });
  });

  it('never runs Match exec: the block does not apply, and a note says so', () => {
    const file = writeConfig(`Match exec "touch ${dir}/ran"\n  User ran\n`);
    const r = resolveSshHost(loadSshClientConfig(file)!, 'x');
    expect(r.user).toBeUndefined();
    expect(r.notes.join()).toMatch(/Match exec is not evaluated by clonebox/);
    expect(() => execFileSync('test', ['-e', `${dir}/ran`])).toThrow();
  });

  it('matches the domain name first, then the address (or HostName) for what is still unset', () => {
    const file = writeConfig('Host web-1\n  User by-name\nHost 10.5.*\n  User by-address\n  Port 2205\n  IdentityFile /k/net\nHost web-*\n  IdentityFile /k/name\n');
    const r = resolveSshForVm(loadSshClientConfig(file)!, 'web-1', '10.5.0.2');
    expect(r.user?.value).toBe('by-name');
    expect(r.port?.value).toBe(2205);
    expect(r.identityFiles.map((f) => f.value)).toEqual(['/k/name', '/k/net']);
  });

  it('parses ProxyJump hops', () => {
    expect(parseProxyJump('hv1,admin@hv2:2222,ssh://u@[fd00::1]:22')).toEqual([
      { spec: 'hv1', host: 'hv1' },
      { spec: 'admin@hv2:2222', user: 'admin', host: 'hv2', port: 2222 },
      { spec: 'ssh://u@[fd00::1]:22', user: 'u', host: 'fd00::1', port: 22 },
    ]);
    expect(parseProxyJump('none')).toEqual([]);
    expect(() => parseProxyJump('a b')).toThrow(/not a jump host/);
  });
});

describe('precedence: flags > vms.NAME.ssh > ssh: > ~/.ssh/config > defaults', () => {
  const sshConfig = writeConfig(
    'Host web-*\n  User cfg-user\n  Port 2200\n  IdentityFile /k/cfg\n  ConnectTimeout 3\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile /kh/cfg\n  ProxyJump cfg-hv\n',
  );
  const resolve = (yaml: string, options: { acceptNewHostKeys?: boolean } = {}) =>
    resolveVm(parseConfig(`ssh:\n  config_file: ${sshConfig}\n${yaml}`, 'test.yaml'), 'web-1', { ...options, sshConfigs: new SshConfigCache(), address: '10.1.0.2' }).ssh;

  const rows: Array<{ why: string; yaml: string; flags?: { acceptNewHostKeys?: boolean }; want: Record<string, unknown>; from: Record<string, string> }> = [
    {
      why: '~/.ssh/config over the defaults',
      yaml: '',
      want: { user: 'cfg-user', port: 2200, identityFiles: ['/k/cfg'], connectTimeoutMs: 3000, hostKeyPolicy: 'accept-new', knownHostsFile: '/kh/cfg' },
      from: { user: 'line 2', port: 'line 3', identity: 'line 4', connect_timeout: 'line 5', host_key_policy: 'line 6', known_hosts: 'line 7', proxy_jump: 'line 8', max_sessions: 'default' },
    },
    {
      why: 'ssh: over ~/.ssh/config',
      yaml: '  user: top\n  port: 2300\n  identity_file: /k/top\n  connect_timeout: 4s\n  host_key_policy: strict\n  known_hosts: /kh/top\n  proxy_jump: none\n',
      want: { user: 'top', port: 2300, identityFiles: ['/k/top'], connectTimeoutMs: 4000, hostKeyPolicy: 'strict', knownHostsFile: '/kh/top', jump: [] },
      from: { user: 'ssh.user', port: 'ssh.port', identity: 'ssh.identity_file', connect_timeout: 'ssh.connect_timeout', host_key_policy: 'ssh.host_key_policy', proxy_jump: 'ssh.proxy_jump' },
    },
    {
      why: 'vms.NAME.ssh over ssh:',
      yaml: '  user: top\n  port: 2300\nvms:\n  web-1:\n    ssh:\n      user: own\n      port: 2400\n      proxy_jump: own-hv:2222\n',
      want: { user: 'own', port: 2400 },
      from: { user: 'vms.web-1.ssh.user', port: 'vms.web-1.ssh.port', proxy_jump: 'vms.web-1.ssh.proxy_jump' },
    },
    {
      why: 'a flag over everything',
      yaml: '  host_key_policy: strict\nvms:\n  web-1:\n    ssh:\n      host_key_policy: strict\n',
      flags: { acceptNewHostKeys: true },
      want: { hostKeyPolicy: 'accept-new' },
      from: { host_key_policy: 'flag --accept-new-host-keys' },
    },
    {
      why: 'use_ssh_config: false leaves the defaults',
      yaml: '  use_ssh_config: false\n',
      want: { user: 'root', port: 22, connectTimeoutMs: 10_000, hostKeyPolicy: 'strict', jump: [] },
      from: { user: 'default', port: 'default', proxy_jump: 'default' },
    },
  ];
  for (const row of rows) {
    it(row.why, () => {
      const ssh = resolve(row.yaml, row.flags);
      expect(ssh.problem).toBeUndefined();
      expect(ssh).toMatchObject(row.want);
      for (const [key, source] of Object.entries(row.from)) expect(ssh.sources[key as keyof typeof ssh.sources]).toContain(source);
    });
  }

  it("resident_session: true by default; false for all or per VM, the VM's word first; -v says which", () => {
    const pick = (yaml: string, vm = 'web-1') => resolveVm(parseConfig(yaml, 'x.yaml'), vm, { sshConfigs: new SshConfigCache() }).ssh;
    expect(pick('ssh:\n  use_ssh_config: false\n')).toMatchObject({ residentSession: true, sources: { resident_session: 'default' } });
    const yaml = 'ssh:\n  use_ssh_config: false\n  resident_session: false\nvms:\n  web-1:\n    ssh:\n      resident_session: true\n';
    expect(pick(yaml, 'web-1').residentSession).toBe(true);
    expect(pick(yaml, 'web-2')).toMatchObject({ residentSession: false });
    expect(pick(yaml, 'web-2').sources.resident_session).toContain('resident_session');
    expect(describeSsh('web-2', pick(yaml, 'web-2'), '10.0.0.2')).toContain('command session a channel per round');
    expect(describeSsh('web-1', pick(yaml, 'web-1'), '10.0.0.1')).toContain('command session resident');
  });

  it('resolves each jump host through ~/.ssh/config for that host', () => {
    const file = writeConfig('Host hv1\n  HostName 10.0.0.1\n  User admin\n  Port 2222\n  IdentityFile /k/hv\nHost web-*\n  ProxyJump hv1,ops@hv2:2200\n');
    const ssh = resolveVm(parseConfig(`ssh:\n  config_file: ${file}\n  identity_file: /k/guest\n`, 'x.yaml'), 'web-1', { sshConfigs: new SshConfigCache() }).ssh;
    expect(ssh.jump).toMatchObject([
      { name: 'hv1', host: '10.0.0.1', user: 'admin', port: 2222, identityFiles: ['/k/hv'] },
      { name: 'hv2', host: 'hv2', user: 'ops', port: 2200, identityFiles: ['/k/guest'] },
    ]);
    expect(ssh.identityFiles).toEqual(['/k/guest']);
  });

  it('refuses StrictHostKeyChecking no with one sentence naming the file and line', () => {
    const file = writeConfig('Host *\n  User x\n  StrictHostKeyChecking no\n');
    const ssh = resolveVm(parseConfig(`ssh:\n  config_file: ${file}\n`, 'x.yaml'), 'web-1', { sshConfigs: new SshConfigCache() }).ssh;
    expect(ssh.problem).toBe(
      `${file} line 3: StrictHostKeyChecking no would turn host key checks off, which clonebox never does; remove it for this host, or set ssh.host_key_policy (strict or accept-new) in the clonebox config`,
    );
    expect(ssh.hostKeyPolicy).toBe('strict');
    // Overridden by the clonebox config, it is not in effect and not refused.
    const over = resolveVm(parseConfig(`ssh:\n  config_file: ${file}\n  host_key_policy: strict\n`, 'x.yaml'), 'web-1', { sshConfigs: new SshConfigCache() }).ssh;
    expect(over.problem).toBeUndefined();
  });

  it('says when ssh.config_file does not exist', () => {
    const ssh = resolveVm(parseConfig(`ssh:\n  config_file: ${dir}/nope\n`, 'x.yaml'), 'web-1', { sshConfigs: new SshConfigCache() }).ssh;
    expect(ssh.problem).toMatch(/does not exist; fix the path or remove ssh.config_file/);
  });
});
