/** Turn the parsed config into what one VM needs: its SSH settings and its checks, defaults applied. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { AddressSource } from '../inventory/types.js';
import type { CloneboxConfig, HealthCheck } from './schema.js';

export interface ResolvedSsh {
  user: string;
  port: number;
  identityFile?: string;
  knownHostsFile: string;
  hostKeyPolicy: 'strict' | 'accept-new';
  connectTimeoutMs: number;
  maxSessions: number;
}

export interface ResolvedVm {
  name: string;
  /** From config: bypasses libvirt's address lookup. */
  addressOverride?: string;
  ssh: ResolvedSsh;
  checks: HealthCheck[];
  /** Run guest commands through the QEMU guest agent when SSH cannot reach the VM. */
  agentFallback: boolean;
}

export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
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

export interface ResolveOptions {
  acceptNewHostKeys?: boolean;
}

export function resolveVm(config: CloneboxConfig, name: string, options: ResolveOptions = {}): ResolvedVm {
  const vm = config.vms[name];
  const ssh = { ...config.ssh, ...vm?.ssh };
  const identity = ssh.identity_file ? expandHome(ssh.identity_file) : defaultIdentity();
  const own = vm?.health_checks ?? [];
  const ownNames = new Set(own.map((c) => c.name));
  return {
    name,
    addressOverride: vm?.address,
    ssh: {
      user: ssh.user ?? 'root',
      port: ssh.port ?? 22,
      ...(identity ? { identityFile: identity } : {}),
      knownHostsFile: expandHome(ssh.known_hosts ?? '~/.ssh/known_hosts'),
      hostKeyPolicy: options.acceptNewHostKeys ? 'accept-new' : (ssh.host_key_policy ?? 'strict'),
      connectTimeoutMs: ssh.connect_timeout ?? 10_000,
      maxSessions: ssh.max_sessions ?? 10,
    },
    checks: [...config.health_checks.filter((c) => !ownNames.has(c.name)), ...own],
    agentFallback: vm?.agent_fallback ?? config.libvirt.agent_fallback ?? false,
  };
}

export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

export function libvirtUri(config: CloneboxConfig, flag?: string): string {
  return flag ?? config.libvirt.uri ?? process.env.LIBVIRT_DEFAULT_URI ?? DEFAULT_LIBVIRT_URI;
}

export function addressSources(config: CloneboxConfig): AddressSource[] {
  const s = config.libvirt.address_source;
  if (!s) return ['lease', 'agent', 'arp'];
  return Array.isArray(s) ? s : [s];
}
