/**
 * From VM names, globs or --all to targets: which VMs, in what state, at which address.
 * A VM that cannot be evaluated (shut off, paused, unknown, no address yet, libvirt unreachable)
 * gets `unavailable` with the reason; its report will be UNKNOWN and no probe runs.
 */
import pLimit from 'p-limit';
import { didYouMean } from '../util/did-you-mean.js';
import { printable } from '../util/printable.js';
import { addressProblem } from './addresses.js';
import {
  LibvirtError,
  type AddressSource,
  type DomainAddressesResult,
  type DomainInfo,
  type DomainState,
  type InterfaceAddress,
  type LibvirtBackend,
} from './types.js';

export interface VmTarget {
  name: string;
  state?: DomainState;
  address?: string;
  /** Where the address came from: a libvirt source, or `config` for an override. */
  addressSource?: AddressSource | 'config';
  /** Why this VM cannot be evaluated. */
  unavailable?: string;
  /** With `hypervisors:` in the config: whose VM this is, and its libvirt domain name (`name` is `hv1/web-1`). */
  hypervisor?: string;
  domain?: string;
}

export interface DiscoverOptions {
  selectors: readonly string[];
  all: boolean;
  sources: readonly AddressSource[];
  family?: 'ipv4' | 'ipv6';
  /** VM name → address from config: libvirt is not asked for these. */
  overrides: ReadonlyMap<string, string>;
  /** VM name → which NIC's address to use. */
  nics?: ReadonlyMap<string, NicChoice>;
  /** Address lookups at once (each may be a virsh process). */
  concurrency?: number;
  /** Verbose notes (an address libvirt reported that is not used, and why). */
  log?: (msg: string) => void;
}

/** A VM selector that is not a valid glob (`[z-a]`): said in one sentence, never a regex engine's error. */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

export function isGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

/** A glob as a regular expression; throws SelectorError for a pattern that is not a glob. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let last = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    // Runs of * are one * (a regex of many .* in a row backtracks for long).
    if (c === '*') re += last === '*' ? '' : '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end);
        const range = /(.)-(.)/g;
        for (let m = range.exec(body); m; m = range.exec(body)) {
          if (m[1]! > m[2]!) throw new SelectorError(`invalid VM pattern "${printable(glob)}": the range ${printable(m[0])} runs backwards; write it low to high, e.g. [a-z]`);
        }
        re += `[${body.replace(/^!/, '^').replace(/[\\\]^]/g, (x, at: number) => (x === '^' && at === 0 ? x : `\\${x}`))}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
    last = c;
  }
  try {
    return new RegExp(`^${re}$`);
  } catch {
    throw new SelectorError(`invalid VM pattern "${printable(glob)}": use * (any text), ? (one character) and [abc] or [a-z] (one of these)`);
  }
}

const NOT_RUNNING: Partial<Record<DomainState, string>> = {
  shutoff: 'the VM is shut off',
  paused: 'the VM is paused',
  shutdown: 'the VM is shutting down',
  crashed: 'the VM has crashed',
  pmsuspended: 'the VM is suspended by guest power management',
  nostate: 'libvirt reports no state for the VM',
};

function isUsable(a: InterfaceAddress): boolean {
  if (a.family === 'ipv4') return !a.address.startsWith('169.254.') && !/^0\./.test(a.address);
  return !/^fe[89ab]/i.test(a.address) && a.address !== '::1';
}

/** Which NIC to take a VM's address from, when it has several. */
export interface NicChoice {
  mac?: string;
  /** Interface name as libvirt reports it (vnet3, or the guest's eth1 with the agent source). */
  interface?: string;
}

/** Pick one address: on the chosen NIC, the preferred family first, then whatever is usable, in libvirt's order. */
export function chooseAddress(addrs: readonly InterfaceAddress[], family: 'ipv4' | 'ipv6' = 'ipv4', nic: NicChoice = {}): string | undefined {
  const usable = addrs.filter(
    (a) =>
      isUsable(a) &&
      (nic.mac === undefined || a.mac?.toLowerCase() === nic.mac.toLowerCase()) &&
      (nic.interface === undefined || a.interface === nic.interface),
  );
  return (usable.find((a) => a.family === family) ?? usable[0])?.address;
}

/** One source's answers for many domains, from one call (the native binding's bulk lookup). */
export interface PrefetchedAddresses {
  source: AddressSource;
  answers: ReadonlyMap<string, DomainAddressesResult>;
}

/** Sources answered by the host (leases, ARP), fast for every domain alike; the guest agent is asked per VM. */
const BULK_SOURCES: ReadonlySet<AddressSource> = new Set(['lease', 'arp']);

/**
 * The first source's answers for all these domains in one libvirt call, when the backend can (native): at 200 VMs
 * one call instead of 200 at every refresh of a watch. Undefined when it cannot or the call fails: each VM then
 * asks on its own, as before, and says its own error.
 */
async function prefetch(backend: LibvirtBackend, names: readonly string[], sources: readonly AddressSource[]): Promise<PrefetchedAddresses | undefined> {
  const source = sources[0];
  if (names.length < 2 || source === undefined || !BULK_SOURCES.has(source) || !backend.addressesForAll) return undefined;
  try {
    return { source, answers: await backend.addressesForAll(names, source) };
  } catch {
    return undefined;
  }
}

/** Ask each source in order; the first usable address wins. */
export async function resolveAddress(
  backend: LibvirtBackend,
  name: string,
  sources: readonly AddressSource[],
  family?: 'ipv4' | 'ipv6',
  nic: NicChoice = {},
  log?: (msg: string) => void,
  /** The first source's answer, already asked for the whole fleet in one call (see `discover`). */
  prefetched?: PrefetchedAddresses,
): Promise<{ address?: string; source?: AddressSource; tried: string[] }> {
  const tried: string[] = [];
  for (const source of sources) {
    try {
      const early = prefetched?.source === source ? prefetched.answers.get(name) : undefined;
      if (early && !early.ok) throw early.error;
      const reported = early ? early.addresses : await backend.interfaceAddresses(name, source);
      // Only IP literals of their family are used: an agent answer is the guest's word (addresses.ts).
      const addrs = reported.filter((a) => {
        const problem = addressProblem(a.address, a.family);
        if (problem) {
          log?.(`VM ${printable(name)}: ${source} address ${problem}`);
          tried.push(`${source}: ${problem}`);
        }
        return !problem;
      });
      const address = chooseAddress(addrs, family, nic);
      if (address) return { address, source, tried };
      const which = nic.mac ?? nic.interface;
      tried.push(`${source}: none${which && addrs.length ? ` on ${which}` : ''}`);
    } catch (err) {
      if (err instanceof LibvirtError && (err.kind === 'connect' || err.kind === 'no-domain' || err.kind === 'not-running')) throw err;
      tried.push(`${source}: ${(err as Error).message}`);
    }
  }
  return { tried };
}

function selectNames(domains: readonly DomainInfo[], opts: DiscoverOptions): { names: string[]; missing: VmTarget[] } {
  const known = new Set(domains.map((d) => d.name));
  const names: string[] = [];
  const missing: VmTarget[] = [];
  const add = (n: string) => (names.includes(n) ? undefined : names.push(n));
  if (opts.all) for (const d of domains) add(d.name);
  for (const sel of opts.selectors) {
    if (isGlob(sel)) {
      const re = globToRegExp(sel);
      const hits = domains.filter((d) => re.test(d.name));
      if (hits.length === 0) missing.push({ name: sel, unavailable: `no libvirt domain matches "${sel}"` });
      for (const d of hits) add(d.name);
    } else if (known.has(sel) || opts.overrides.has(sel)) add(sel);
    else {
      const hint = didYouMean(sel, known);
      missing.push({ name: sel, unavailable: `libvirt has no domain named "${sel}"${hint ? `; did you mean "${hint}"?` : ''}` });
    }
  }
  return { names, missing };
}

/**
 * Resolve the targets. Throws LibvirtError only when libvirt is unreachable and there is nothing
 * else to go on (no explicit names); otherwise that failure becomes each VM's reason.
 */
export async function discover(backend: () => Promise<LibvirtBackend>, opts: DiscoverOptions): Promise<VmTarget[]> {
  const explicit = opts.selectors.filter((s) => !isGlob(s));
  const onlyOverrides = !opts.all && opts.selectors.length > 0 && explicit.length === opts.selectors.length && explicit.every((n) => opts.overrides.has(n));
  if (onlyOverrides) {
    return explicit.map((name) => ({ name, address: opts.overrides.get(name)!, addressSource: 'config' as const }));
  }
  let lv: LibvirtBackend;
  let domains: DomainInfo[];
  try {
    lv = await backend();
    domains = await lv.listDomains();
  } catch (err) {
    if (!(err instanceof LibvirtError) || opts.all || explicit.length < opts.selectors.length) throw err;
    // Named VMs: each gets the reason, overrides still run.
    return explicit.map((name) =>
      opts.overrides.has(name) ? { name, address: opts.overrides.get(name)!, addressSource: 'config' as const } : { name, unavailable: err.message },
    );
  }
  const { names, missing } = selectNames(domains, opts);
  const byName = new Map(domains.map((d) => [d.name, d]));
  // What needs no address lookup is settled first; the running domains left are asked about (in one call where the
  // backend can: `prefetch`).
  const settled = new Map<string, VmTarget>();
  const running: DomainInfo[] = [];
  for (const name of names) {
    const override = opts.overrides.get(name);
    const domain = byName.get(name);
    const why = domain ? NOT_RUNNING[domain.state] : undefined;
    if (override) settled.set(name, { name, address: override, addressSource: 'config', ...(domain ? { state: domain.state } : {}) });
    else if (!domain) settled.set(name, { name, unavailable: `libvirt has no domain named "${name}"` });
    else if (why) settled.set(name, { name, state: domain.state, unavailable: why });
    else running.push(domain);
  }
  const prefetched = await prefetch(lv, running.map((d) => d.name), opts.sources);
  const limit = pLimit(opts.concurrency ?? 8);
  const looked = await Promise.all(
    running.map((domain) => limit(async (): Promise<VmTarget> => {
      const name = domain.name;
      try {
        const r = await resolveAddress(lv, name, opts.sources, opts.family, opts.nics?.get(name), opts.log, prefetched);
        if (r.address) return { name, state: domain.state, address: r.address, addressSource: r.source! };
        return { name, state: domain.state, unavailable: `no address yet (tried ${r.tried.join('; ')})` };
      } catch (err) {
        return { name, state: domain.state, unavailable: (err as Error).message };
      }
    })),
  );
  const byLookup = new Map(looked.map((t) => [t.name, t]));
  return [...names.map((name) => settled.get(name) ?? byLookup.get(name)!), ...missing];
}
