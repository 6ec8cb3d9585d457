/** Turn the parsed config into what one VM needs: its SSH settings and its checks, defaults applied. */
import type { AddressSource } from '../inventory/types.js';
import type { CloneboxConfig, HealthCheck } from './schema.js';
import { resolveSsh, type ResolvedSsh, type SshConfigCache } from './resolve-ssh.js';

export { expandHome, describeSsh, SshConfigCache, type ResolvedSsh, type JumpHop } from './resolve-ssh.js';

export interface ResolvedVm {
  name: string;
  /** From config: bypasses libvirt's address lookup. */
  addressOverride?: string;
  ssh: ResolvedSsh;
  checks: HealthCheck[];
  /** Run guest commands through the QEMU guest agent when SSH cannot reach the VM. */
  agentFallback: boolean;
}

export interface ResolveOptions {
  acceptNewHostKeys?: boolean;
  /** The VM's address (from libvirt or vms.NAME.address): the second name matched in ~/.ssh/config. */
  address?: string;
  /** Parsed OpenSSH client configs, read once per run; without it, ~/.ssh/config is not read. */
  sshConfigs?: SshConfigCache;
}

export function resolveVm(config: CloneboxConfig, name: string, options: ResolveOptions = {}): ResolvedVm {
  const vm = config.vms[name];
  const own = vm?.health_checks ?? [];
  const ownNames = new Set(own.map((c) => c.name));
  return {
    name,
    addressOverride: vm?.address,
    ssh: resolveSsh(config, name, options),
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
