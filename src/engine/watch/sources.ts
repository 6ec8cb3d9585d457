/** The real WatchSources: VMs from libvirt and the config, checks over the SSH pool, thresholds by an Advancer. */
import { describeSsh, SshConfigCache, type ResolvedVm } from '../../config/resolve.js';
import type { CloneboxConfig, HypervisorSettings } from '../../config/schema.js';
import type { VmTarget } from '../../inventory/discover.js';
import type { LibvirtBackend } from '../../inventory/types.js';
import type { SshPool } from '../../transport/ssh-pool.js';
import { checkVmEach } from '../check-vm.js';
import { backendOf, filterProbes, resolveAll, resolveTargets } from '../fleet.js';
import type { Advancer } from './advance.js';
import type { WatchSources } from './loop.js';

export interface FleetSourcesOptions {
  config: CloneboxConfig;
  /** VM names and globs. */
  selectors: readonly string[];
  all: boolean;
  /** Only these checks (by name). */
  probes?: readonly string[];
  /** Address lookups at once. */
  concurrency: number;
  acceptNewHostKeys: boolean;
  /** Opened on first need, and again after a failure. */
  backend: () => Promise<LibvirtBackend>;
  /** With `hypervisors:` in the config: each one's libvirt connection, kept for the whole watch. */
  backendFor?: (hv: HypervisorSettings) => Promise<LibvirtBackend>;
  pool: SshPool;
  advance: Advancer;
  forget?: (vm: string) => void;
  /** Said with --verbose: e.g. an address a source gave that is not an IP literal, escaped. */
  log?: (msg: string) => void;
}

export function fleetSources(o: FleetSourcesOptions): WatchSources {
  // ~/.ssh/config is read once, at start; each VM's SSH settings are said (with --verbose) when first seen or changed.
  const sshConfigs = new SshConfigCache();
  const said = new Map<string, string>();
  // The config and ~/.ssh/config do not change during a watch: a VM is resolved again only when libvirt says something
  // new about it (its address, domain or hypervisor). At N=200 resolving every VM every 30 s was a tenth of the round.
  const resolvedBy = new Map<string, { key: string; vm: ResolvedVm }>();
  const keyOf = (t: VmTarget): string => `${t.address ?? ''}\0${t.domain ?? ''}\0${t.hypervisor ?? ''}`;
  return {
    async discover() {
      const targets = await resolveTargets({
        config: o.config,
        selectors: o.selectors,
        all: o.all,
        concurrency: o.concurrency,
        backend: o.backend,
        ...(o.backendFor ? { backendFor: o.backendFor } : {}),
        pool: o.pool,
        acceptNewHostKeys: o.acceptNewHostKeys,
        ...(o.log ? { log: o.log } : {}),
      });
      const changed = targets.filter((t) => resolvedBy.get(t.name)?.key !== keyOf(t));
      const fresh = resolveAll(o.config, changed, {
        acceptNewHostKeys: o.acceptNewHostKeys,
        sshConfigs,
        onResolved: (vm, t) => {
          const line = describeSsh(vm.name, vm.ssh, t.address);
          if (said.get(vm.name) !== line) o.log?.(line);
          said.set(vm.name, line);
        },
      });
      changed.forEach((t, i) => resolvedBy.set(t.name, { key: keyOf(t), vm: fresh[i]! }));
      const names = new Set(targets.map((t) => t.name));
      for (const name of resolvedBy.keys()) if (!names.has(name)) resolvedBy.delete(name);
      const resolved = filterProbes(
        targets.map((t) => resolvedBy.get(t.name)!.vm),
        o.probes,
      );
      return targets.map((target, i) => ({ target, resolved: resolved[i]! }));
    },
    runChecks: async (vm, target, signal, onReport) => {
      // The libvirt connection is there for `agent_fallback` (guest commands through the guest agent when SSH fails).
      await checkVmEach(vm, target, { pool: o.pool, signal, onReport, backend: backendOf(o, target) });
    },
    advance: o.advance,
    ...(o.forget ? { forget: o.forget } : {}),
  };
}
