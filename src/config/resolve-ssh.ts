/**
 * A VM's effective SSH settings and where each came from. Precedence, highest first (docs/ssh.md):
 * command-line flags > `vms.NAME.ssh` > `ssh:` > the OpenSSH client config (~/.ssh/config) > defaults.
 * A jump host's own settings: its ProxyJump spec (`user@host:port`) > ~/.ssh/config for that host > `ssh:` > defaults.
 */
import type { JumpHopTarget } from '../transport/connect.js';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { expandHome } from '../util/home.js';
import { formatDuration } from './duration.js';
import { ConfigError } from './errors.js';
import type { CloneboxConfig, SshSettings } from './schema.js';
import {
  defaultSshConfigFile,
  loadSshClientConfig,
  parseProxyJump,
  resolveSshForVm,
  resolveSshHost,
  whereWritten,
  type SshClientConfig,
  type SshConfigValue,
  type SshHostConfig,
} from './ssh-config.js';

export type HostKeyPolicy = 'strict' | 'accept-new';

/** One jump host, resolved: exactly what the transport dials (connect.ts), handed over as it is. */
export type JumpHop = JumpHopTarget;

export type SshSettingName = 'address' | 'user' | 'port' | 'identity' | 'agent' | 'known_hosts' | 'host_key_policy' | 'connect_timeout' | 'keepalive' | 'proxy_jump' | 'max_sessions' | 'resident_session';

export interface ResolvedSsh {
  /** HostName from ~/.ssh/config: connect here instead of the address libvirt reported. */
  host?: string;
  user: string;
  port: number;
  /** Private keys tried in order. */
  identityFiles: string[];
  /** The first of identityFiles (kept for callers that use one key). */
  identityFile?: string;
  useAgent?: boolean;
  agentSocket?: string;
  knownHostsFile: string;
  hostKeyPolicy: HostKeyPolicy;
  connectTimeoutMs: number;
  /** ServerAliveInterval; unset: the pool's default. */
  keepaliveMs?: number;
  maxSessions: number;
  /** The resident command session (transport/resident.ts); false: a channel per round. */
  residentSession: boolean;
  /** Jump hosts, first hop first; empty for a direct connection. */
  jump: JumpHop[];
  /** Where each effective setting came from: `flag --accept-new-host-keys`, `vms.web-1.ssh.user`, `~/.ssh/config line 4`, `default`. */
  sources: Partial<Record<SshSettingName, string>>;
  /** Why SSH cannot be used for this VM as configured (one sentence naming the file and line). */
  problem?: string;
  /** Things skipped while reading ~/.ssh/config (for verbose output). */
  notes: string[];
}

/** Without an identity file or an agent, fall back to the keys OpenSSH itself would try. */
function defaultIdentity(): string | undefined {
  if (process.env.SSH_AUTH_SOCK) return undefined;
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const file = join(homedir(), '.ssh', name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Parsed OpenSSH client configs by file, read once per run (a watch reads them at start). */
export class SshConfigCache {
  readonly #files = new Map<string, { config?: SshClientConfig; error?: string }>();

  get(file: string): { config?: SshClientConfig; error?: string } {
    let got = this.#files.get(file);
    if (!got) {
      try {
        const config = loadSshClientConfig(file);
        got = config ? { config } : {};
      } catch (err) {
        got = { error: err instanceof ConfigError ? err.message.replace(/\n/g, '; ') : `cannot read ${file}: ${(err as Error).message}` };
      }
      this.#files.set(file, got);
    }
    return got;
  }
}

interface Layer {
  source: string;
  settings: SshSettings | undefined;
}

/** The first layer that sets `key`, with its name (`vms.web-1.ssh.user`). */
function fromLayers<K extends keyof SshSettings>(layers: Layer[], key: K): { value: NonNullable<SshSettings[K]>; source: string } | undefined {
  for (const l of layers) {
    const v = l.settings?.[key];
    if (v !== undefined) return { value: v as NonNullable<SshSettings[K]>, source: `${l.source}.${key}` };
  }
  return undefined;
}

const fromFile = <T>(v: SshConfigValue<T> | undefined): { value: T; source: string } | undefined =>
  v === undefined ? undefined : { value: v.value, source: whereWritten(v) };

function pick<T>(...candidates: Array<{ value: T; source: string } | undefined>): { value: T; source: string } | undefined {
  return candidates.find((c) => c !== undefined);
}

export interface ResolveSshOptions {
  acceptNewHostKeys?: boolean;
  address?: string;
  sshConfigs?: SshConfigCache;
  /** The libvirt domain name, when the VM's name carries its hypervisor (`hv1/web-1` → `web-1`). */
  domain?: string;
  /** Which `vms:` entry applies (`hv1/web-1`, or `web-1` for that domain on any hypervisor). */
  vmKey?: string;
  /** The hypervisor's jump host (hypervisors[].jump, or what its URI implies), with where it came from. */
  hypervisorJump?: { value: string; source: string; implied: boolean };
}

/** Which OpenSSH client config applies to a VM, and whether one is used at all. */
function clientConfigFor(layers: Layer[], cache: SshConfigCache | undefined): { config?: SshClientConfig; problem?: string } {
  if (!cache) return {};
  const use = fromLayers(layers, 'use_ssh_config');
  if (use?.value === false) return {};
  const file = fromLayers(layers, 'config_file');
  const path = file ? expandHome(file.value) : defaultSshConfigFile();
  const got = cache.get(path);
  if (got.error) return { problem: got.error };
  if (!got.config && file) return { problem: `the OpenSSH client config ${file.value} (${file.source}) does not exist; fix the path or remove ${file.source}` };
  return got.config ? { config: got.config } : {};
}

export function resolveSsh(config: CloneboxConfig, name: string, options: ResolveSshOptions = {}): ResolvedSsh {
  const key = options.vmKey ?? name;
  const domain = options.domain ?? name;
  const vm = config.vms[key];
  const layers: Layer[] = [
    { source: `vms.${key}.ssh`, settings: vm?.ssh },
    { source: 'ssh', settings: config.ssh },
  ];
  const sources: ResolvedSsh['sources'] = {};
  const problems: string[] = [];
  const client = clientConfigFor(layers, options.sshConfigs);
  if (client.problem) problems.push(client.problem);
  const file: SshHostConfig = client.config ? resolveSshForVm(client.config, domain, options.address) : { identityFiles: [], problems: [], notes: [] };
  problems.push(...file.problems);
  const notes = [...(client.config?.notes ?? []), ...file.notes];

  const set = <T>(key: SshSettingName, got: { value: T; source: string } | undefined, fallback: T): T => {
    sources[key] = got?.source ?? 'default';
    return got?.value ?? fallback;
  };

  let host: string | undefined;
  if (vm?.address) sources.address = `vms.${key}.address`;
  else if (file.hostName) {
    host = file.hostName.value;
    sources.address = whereWritten(file.hostName);
  } else sources.address = 'libvirt';

  const user = set('user', pick(fromLayers(layers, 'user'), fromFile(file.user)), 'root');
  const port = set('port', pick(fromLayers(layers, 'port'), fromFile(file.port)), 22);

  // Identity: one setting. ssh.identity_file (one key) or every IdentityFile that applied, in order.
  let identityFiles: string[] = [];
  const own = fromLayers(layers, 'identity_file');
  if (own) {
    identityFiles = [expandHome(own.value)];
    sources.identity = own.source;
  } else if (file.identityFiles.length) {
    identityFiles = file.identityFiles.map((f) => f.value);
    sources.identity = file.identityFiles.map((f) => whereWritten(f)).join(', ');
  } else {
    const d = defaultIdentity();
    if (d) identityFiles = [d];
    sources.identity = 'default';
  }

  let useAgent: boolean | undefined;
  let agentSocket: string | undefined;
  if (file.identitiesOnly?.value === true) {
    useAgent = false;
    sources.agent = whereWritten(file.identitiesOnly);
  } else if (file.identityAgent) {
    sources.agent = whereWritten(file.identityAgent);
    if (file.identityAgent.value === 'none') useAgent = false;
    else {
      useAgent = true;
      if (file.identityAgent.value !== 'SSH_AUTH_SOCK') agentSocket = file.identityAgent.value;
    }
  } else sources.agent = 'default';

  const knownFile = fromFile(file.userKnownHostsFiles);
  const knownHostsFile = expandHome(
    set('known_hosts', pick(fromLayers(layers, 'known_hosts'), knownFile && { value: knownFile.value[0] ?? '~/.ssh/known_hosts', source: knownFile.source }), '~/.ssh/known_hosts'),
  );

  let hostKeyPolicy: HostKeyPolicy;
  const ownPolicy = fromLayers(layers, 'host_key_policy');
  if (options.acceptNewHostKeys) {
    hostKeyPolicy = 'accept-new';
    sources.host_key_policy = 'flag --accept-new-host-keys';
  } else if (ownPolicy) {
    hostKeyPolicy = ownPolicy.value;
    sources.host_key_policy = ownPolicy.source;
  } else if (file.strictHostKeyChecking) {
    const v = file.strictHostKeyChecking;
    sources.host_key_policy = whereWritten(v);
    hostKeyPolicy = v.value === 'accept-new' ? 'accept-new' : 'strict';
    if (v.value === 'no') {
      problems.push(
        `${whereWritten(v)}: StrictHostKeyChecking no would turn host key checks off, which clonebox never does; remove it for this host, or set ssh.host_key_policy (strict or accept-new) in the clonebox config`,
      );
    }
  } else {
    hostKeyPolicy = 'strict';
    sources.host_key_policy = 'default';
  }
  if (hostKeyPolicy === 'accept-new' && knownHostsFile === '/dev/null') {
    problems.push(`known_hosts /dev/null (${sources.known_hosts}) with accept-new would accept any host key every time; name a real known_hosts file`);
  }

  const timeoutFile = file.connectTimeoutMs?.value === undefined ? undefined : { value: file.connectTimeoutMs.value, source: whereWritten(file.connectTimeoutMs) };
  const connectTimeoutMs = set('connect_timeout', pick(fromLayers(layers, 'connect_timeout'), timeoutFile), 10_000);
  const keepaliveMs = file.serverAliveIntervalMs?.value;
  sources.keepalive = file.serverAliveIntervalMs ? whereWritten(file.serverAliveIntervalMs) : 'default';
  const maxSessions = set('max_sessions', fromLayers(layers, 'max_sessions'), 10);
  const residentSession = set('resident_session', fromLayers(layers, 'resident_session'), true);

  // A hypervisor's own `jump` ranks between the VM's and the global ssh: settings; the jump its remote URI only
  // implies ranks just above the defaults (below ~/.ssh/config).
  const hj = options.hypervisorJump;
  const jumpSetting = pick(
    fromLayers(layers.slice(0, 1), 'proxy_jump'),
    hj && !hj.implied ? hj : undefined,
    fromLayers(layers.slice(1), 'proxy_jump'),
    fromFile(file.proxyJump),
    hj?.implied ? hj : undefined,
  );
  sources.proxy_jump = jumpSetting?.source ?? 'default';
  let jump: JumpHop[] = [];
  if (jumpSetting) {
    try {
      jump = parseProxyJump(jumpSetting.value).map((spec) => {
        const hop = client.config ? resolveSshHost(client.config, spec.host) : undefined;
        for (const p of hop?.problems ?? []) problems.push(p);
        return resolveHop(spec, hop, config.ssh, options.acceptNewHostKeys ?? false);
      });
    } catch (err) {
      problems.push(`${jumpSetting.source}: ${(err as Error).message}`);
    }
  } else if (file.proxyCommand) {
    problems.push(`${whereWritten(file.proxyCommand)}: ProxyCommand is not supported by clonebox; use ProxyJump (or ssh.proxy_jump) for this host`);
  }

  return {
    ...(host ? { host } : {}),
    user,
    port,
    identityFiles,
    ...(identityFiles[0] ? { identityFile: identityFiles[0] } : {}),
    ...(useAgent !== undefined ? { useAgent } : {}),
    ...(agentSocket ? { agentSocket } : {}),
    knownHostsFile,
    hostKeyPolicy,
    connectTimeoutMs,
    ...(keepaliveMs ? { keepaliveMs } : {}),
    maxSessions,
    residentSession,
    jump,
    sources,
    ...(problems.length ? { problem: problems[0] } : {}),
    notes,
  };
}

/** A jump host: its spec, then ~/.ssh/config for it, then `ssh:` (the guests' settings, as defaults), then defaults. */
function resolveHop(spec: ReturnType<typeof parseProxyJump>[number], file: SshHostConfig | undefined, ssh: SshSettings, acceptNew: boolean): JumpHop {
  const identityFiles = file?.identityFiles.length ? file.identityFiles.map((f) => f.value) : ssh.identity_file ? [expandHome(ssh.identity_file)] : [defaultIdentity()].filter((f): f is string => !!f);
  const strict = file?.strictHostKeyChecking?.value;
  const known = file?.userKnownHostsFiles?.value[0] ?? ssh.known_hosts ?? '~/.ssh/known_hosts';
  return {
    name: spec.host,
    host: file?.hostName?.value ?? spec.host,
    port: spec.port ?? file?.port?.value ?? ssh.port ?? 22,
    user: spec.user ?? file?.user?.value ?? ssh.user ?? 'root',
    identityFiles,
    ...(file?.identitiesOnly?.value ? { useAgent: false } : file?.identityAgent ? { useAgent: file.identityAgent.value !== 'none' } : {}),
    ...(file?.identityAgent && !['none', 'SSH_AUTH_SOCK'].includes(file.identityAgent.value) ? { agentSocket: file.identityAgent.value } : {}),
    knownHostsFile: expandHome(known),
    // `StrictHostKeyChecking no` for a jump host is treated as strict (host keys are never skipped).
    hostKeyPolicy: acceptNew ? 'accept-new' : strict === 'accept-new' ? 'accept-new' : strict ? 'strict' : (ssh.host_key_policy ?? 'strict'),
    connectTimeoutMs: file?.connectTimeoutMs?.value ?? ssh.connect_timeout ?? 10_000,
    ...(file?.serverAliveIntervalMs ? { keepaliveMs: file.serverAliveIntervalMs.value } : {}),
  };
}

/** One line per VM for `health check -v`: each effective setting and where it came from. */
export function describeSsh(name: string, ssh: ResolvedSsh, address: string | undefined): string {
  const s = ssh.sources;
  const at = (src: string | undefined) => `(${src ?? 'default'})`;
  const parts = [
    `address ${ssh.host ?? address ?? '-'} ${at(s.address)}`,
    `user ${ssh.user} ${at(s.user)}`,
    `port ${ssh.port} ${at(s.port)}`,
    `identity ${ssh.identityFiles.length ? ssh.identityFiles.join(', ') : 'ssh-agent'} ${at(s.identity)}`,
    ...(s.agent !== 'default' ? [`agent ${ssh.useAgent === false ? 'no' : (ssh.agentSocket ?? '$SSH_AUTH_SOCK')} ${at(s.agent)}`] : []),
    `known_hosts ${ssh.knownHostsFile} ${at(s.known_hosts)}`,
    `host keys ${ssh.hostKeyPolicy} ${at(s.host_key_policy)}`,
    `connect timeout ${formatDuration(ssh.connectTimeoutMs)} ${at(s.connect_timeout)}`,
    ...(ssh.keepaliveMs ? [`keepalive ${formatDuration(ssh.keepaliveMs)} ${at(s.keepalive)}`] : []),
    `max sessions ${ssh.maxSessions} ${at(s.max_sessions)}`,
    `command session ${ssh.residentSession && ssh.maxSessions > 1 ? 'resident' : 'a channel per round'} ${at(s.resident_session)}`,
    `jump ${ssh.jump.length ? ssh.jump.map((h) => `${h.name} (${h.user}@${h.host}:${h.port})`).join(' → ') : 'none'} ${at(s.proxy_jump)}`,
  ];
  return `VM ${name}: ssh ${parts.join('; ')}`;
}
