/** Turn the parsed config into what one VM needs: its SSH settings and its checks, defaults applied. */
import type { AddressSource } from '../inventory/types.js';
import type { CloneboxConfig, HealthCheck, HypervisorSettings } from './schema.js';
import { resolveSsh, type ResolvedSsh, type SshConfigCache } from './resolve-ssh.js';

export { describeSsh, SshConfigCache, type ResolvedSsh, type JumpHop } from './resolve-ssh.js';

export interface ResolvedVm {
  /** As shown everywhere: `web-1`, or `hv1/web-1` with several hypervisors. */
  name: string;
  /** The libvirt domain name (differs from `name` when that carries the hypervisor). */
  domain: string;
  hypervisor?: string;
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
  /** The VM's hypervisor (with `hypervisors:` in the config) and its libvirt domain name. */
  hypervisor?: HypervisorSettings;
  domain?: string;
  /** The ProxyJump the hypervisor implies (its `jump`, else its remote URI's host); see inventory/hypervisors.ts. */
  hypervisorJump?: string;
}

/** The `vms:` entry for a VM: by its full name (`hv1/web-1`), else by its domain name on any hypervisor. */
export function vmKeyFor(config: CloneboxConfig, name: string, domain: string): string {
  return config.vms[name] || name === domain || !config.vms[domain] ? name : domain;
}

export function resolveVm(config: CloneboxConfig, name: string, options: ResolveOptions = {}): ResolvedVm {
  const domain = options.domain ?? name;
  const vmKey = vmKeyFor(config, name, domain);
  const vm = config.vms[vmKey];
  const hv = options.hypervisor;
  const hvIndex = hv ? (config.hypervisors ?? []).findIndex((h) => h.name === hv.name) : -1;
  const hypervisorJump =
    hv && options.hypervisorJump
      ? { value: options.hypervisorJump, source: hv.jump ? `hypervisors[${hvIndex}].jump` : `hypervisors[${hvIndex}].uri (${hv.name} itself)`, implied: !hv.jump }
      : undefined;
  const own = vm?.health_checks ?? [];
  const ownNames = new Set(own.map((c) => c.name));
  return {
    name,
    domain,
    ...(hv ? { hypervisor: hv.name } : {}),
    addressOverride: vm?.address,
    ssh: resolveSsh(config, name, {
      ...(options.acceptNewHostKeys !== undefined ? { acceptNewHostKeys: options.acceptNewHostKeys } : {}),
      ...(options.address ? { address: options.address } : {}),
      ...(options.sshConfigs ? { sshConfigs: options.sshConfigs } : {}),
      domain,
      vmKey,
      ...(hypervisorJump ? { hypervisorJump } : {}),
    }),
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
