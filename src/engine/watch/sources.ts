/** The real WatchSources: VMs from libvirt and the config, checks over the SSH pool, thresholds by an Advancer. */
import { resolveVm } from '../../config/resolve.js';
import type { CloneboxConfig } from '../../config/schema.js';
import type { LibvirtBackend } from '../../inventory/types.js';
import type { SshPool } from '../../transport/ssh-pool.js';
import { checkVm } from '../check-vm.js';
import { filterProbes, resolveTargets } from '../fleet.js';
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
  pool: SshPool;
  advance: Advancer;
  forget?: (vm: string) => void;
  /** Said with --verbose: e.g. an address a source gave that is not an IP literal, escaped. */
  log?: (msg: string) => void;
}

export function fleetSources(o: FleetSourcesOptions): WatchSources {
  return {
    async discover() {
      const targets = await resolveTargets({
        config: o.config,
        selectors: o.selectors,
        all: o.all,
        concurrency: o.concurrency,
        backend: o.backend,
        pool: o.pool,
        acceptNewHostKeys: o.acceptNewHostKeys,
        ...(o.log ? { log: o.log } : {}),
      });
      const resolved = filterProbes(
        targets.map((t) => resolveVm(o.config, t.name, { acceptNewHostKeys: o.acceptNewHostKeys })),
        o.probes,
      );
      return targets.map((target, i) => ({ target, resolved: resolved[i]! }));
    },
    runCheck: (vm, _check, target, signal) => checkVm(vm, target, { pool: o.pool, signal }),
    advance: o.advance,
    ...(o.forget ? { forget: o.forget } : {}),
  };
}
