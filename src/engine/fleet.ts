/** One round over a fleet: discover, then check each VM (bounded by p-limit), then summarise. */
import pLimit from 'p-limit';
import { didYouMean } from '../util/did-you-mean.js';
import { addressSources, resolveVm, type ResolvedVm, type SshConfigCache } from '../config/resolve.js';
import type { CloneboxConfig, HypervisorSettings } from '../config/schema.js';
import { discover, type VmTarget } from '../inventory/discover.js';
import { discoverHypervisors, hypervisorJump } from '../inventory/hypervisors.js';
import { openBackend } from '../inventory/open.js';
import type { LibvirtBackend } from '../inventory/types.js';
import type { FleetReport, VMHealthReport } from '../report.js';
import type { SshPool } from '../transport/ssh-pool.js';
import { buildFleetReport } from './aggregate.js';
import { checkVm } from './check-vm.js';

/** A mistake in how the tool was called (not a VM's health): one sentence, exit 3 at the CLI. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface FleetRunOptions {
  config: CloneboxConfig;
  /** VM names and globs. */
  selectors: readonly string[];
  all: boolean;
  /** Only these checks (by name). */
  probes?: readonly string[];
  concurrency: number;
  /** Opened on first need: a run whose VMs all have address overrides never touches libvirt. */
  backend: () => Promise<LibvirtBackend>;
  /** With `hypervisors:` in the config: each one's libvirt connection (cached by the caller across rounds). */
  backendFor?: (hv: HypervisorSettings) => Promise<LibvirtBackend>;
  pool: SshPool;
  signal?: AbortSignal;
  acceptNewHostKeys?: boolean;
  /** OpenSSH client configs (~/.ssh/config), read once per run; without it none is read. */
  sshConfigs?: SshConfigCache;
  /** Told each VM's resolved settings (for `-v`: where each SSH setting came from). */
  onResolved?: (vm: ResolvedVm, target: VmTarget) => void;
  /** Verbose notes from discovery (an address libvirt reported that is not used). */
  log?: (msg: string) => void;
  /** Told how many VMs the round has and as each one's checks start and finish (the CLI's progress line). */
  onProgress?: (event: FleetProgress) => void;
}

/** How far a round is: its VMs once found, then each VM as its checks start (past `--concurrency`) and end. */
export type FleetProgress =
  | { kind: 'targets'; total: number }
  | { kind: 'vm-started'; vm: string }
  | { kind: 'vm-finished'; vm: string };

/** Resolve every target's settings: its address is the second name matched in ~/.ssh/config. */
export function resolveAll(config: CloneboxConfig, targets: readonly VmTarget[], opts: Pick<FleetRunOptions, 'acceptNewHostKeys' | 'sshConfigs' | 'onResolved'>): ResolvedVm[] {
  return targets.map((t) => {
    const hv = t.hypervisor ? config.hypervisors?.find((h) => h.name === t.hypervisor) : undefined;
    const jump = hv ? hypervisorJump(hv) : undefined;
    const vm = resolveVm(config, t.name, {
      acceptNewHostKeys: opts.acceptNewHostKeys ?? false,
      ...(t.address ? { address: t.address } : {}),
      ...(opts.sshConfigs ? { sshConfigs: opts.sshConfigs } : {}),
      ...(t.domain ? { domain: t.domain } : {}),
      ...(hv ? { hypervisor: hv } : {}),
      ...(jump ? { hypervisorJump: jump } : {}),
    });
    opts.onResolved?.(vm, t);
    return vm;
  });
}

/** The VMs to look at when none are named: those the config lists under `vms:`. */
function defaultSelectors(config: CloneboxConfig): string[] {
  return Object.keys(config.vms);
}

export function filterProbes(vms: ResolvedVm[], probes: readonly string[] | undefined): ResolvedVm[] {
  if (!probes || probes.length === 0) return vms;
  const known = new Set(vms.flatMap((v) => v.checks.map((c) => c.name)));
  for (const p of probes) {
    if (!known.has(p)) {
      const hint = didYouMean(p, known);
      throw new UsageError(
        `no check named "${p}" in the config${hint ? `; did you mean "${hint}"?` : known.size ? ` (checks: ${[...known].join(', ')})` : ''}`,
      );
    }
  }
  const wanted = new Set(probes);
  return vms.map((v) => ({ ...v, checks: v.checks.filter((c) => wanted.has(c.name)) }));
}

export async function resolveTargets(opts: FleetRunOptions): Promise<VmTarget[]> {
  const selectors = opts.selectors.length || opts.all ? opts.selectors : defaultSelectors(opts.config);
  if (selectors.length === 0 && !opts.all) {
    throw new UsageError('name the VMs to check (names or globs such as "web-*"), or pass --all');
  }
  const overrides = new Map(
    Object.entries(opts.config.vms).flatMap(([name, s]) => (s.address ? [[name, s.address] as const] : [])),
  );
  const hypervisors = opts.config.hypervisors;
  // What discovery needs, whether from one libvirt connection or from each named hypervisor.
  const common = {
    selectors,
    all: opts.all,
    sources: addressSources(opts.config),
    ...(opts.config.libvirt.address_family ? { family: opts.config.libvirt.address_family } : {}),
    overrides,
    nics: new Map(Object.entries(opts.config.vms).flatMap(([name, s]) => (s.nic ? [[name, s.nic] as const] : []))),
    concurrency: opts.concurrency,
    ...(opts.log ? { log: opts.log } : {}),
  };
  if (hypervisors?.length) return discoverHypervisors({ ...common, hypervisors, backendFor: opts.backendFor ?? openHypervisor });
  return discover(opts.backend, common);
}

/** One round, with what it was run against (for state and actions). */
export interface FleetRound {
  report: FleetReport;
  vms: ResolvedVm[];
  targets: VmTarget[];
}

export async function checkFleet(opts: FleetRunOptions): Promise<FleetReport> {
  return (await runFleetRound(opts)).report;
}

/** The libvirt connection a VM's guest-agent fallback uses: its hypervisor's, or the one connection. */
export function backendOf(opts: Pick<FleetRunOptions, 'config' | 'backend' | 'backendFor'>, t: VmTarget): () => Promise<LibvirtBackend> {
  const hv = t.hypervisor ? opts.config.hypervisors?.find((h) => h.name === t.hypervisor) : undefined;
  if (!hv) return opts.backend;
  return () => (opts.backendFor ?? openHypervisor)(hv);
}

/** Without a cache from the caller (library use): a connection per call. */
const openHypervisor = (hv: HypervisorSettings): Promise<LibvirtBackend> => openBackend(hv.uri, 'auto', () => {});

export async function runFleetRound(opts: FleetRunOptions): Promise<FleetRound> {
  const startedAt = new Date();
  const t0 = performance.now();
  const targets = await resolveTargets(opts);
  const vms = filterProbes(resolveAll(opts.config, targets, opts), opts.probes);
  const limit = pLimit(Math.max(1, opts.concurrency));
  const signal = opts.signal ?? new AbortController().signal;
  // A listener's mistake must not change a verdict: progress is for people, the report is the result.
  const tell = (e: FleetProgress) => {
    try {
      opts.onProgress?.(e);
    } catch {
      /* ignored */
    }
  };
  tell({ kind: 'targets', total: targets.length });
  const reports: VMHealthReport[] = await Promise.all(
    targets.map((t, i) =>
      limit(async () => {
        tell({ kind: 'vm-started', vm: t.name });
        try {
          return await checkVm(vms[i]!, t, { pool: opts.pool, signal, backend: backendOf(opts, t) });
        } finally {
          tell({ kind: 'vm-finished', vm: t.name });
        }
      }),
    ),
  );
  reports.sort((a, b) => a.vm_name.localeCompare(b.vm_name));
  return { report: buildFleetReport(reports, startedAt, Math.round(performance.now() - t0)), vms, targets };
}
