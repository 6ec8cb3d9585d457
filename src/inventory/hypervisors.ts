/**
 * Several hypervisors in one view: each is discovered on its own, concurrently, bounded by its own timeout, so one
 * that is down (or silent) gives its VMs UNKNOWN ("hypervisor hv2 unreachable: …") and never delays the others.
 * With more than one hypervisor a VM is named `hv1/web-1`; selectors `hv1/web-*`, `*` as the hypervisor part, and a
 * plain `web-*` (any hypervisor) all work.
 */
import { discover, globToRegExp, isGlob, type DiscoverOptions, type NicChoice, type VmTarget } from './discover.js';
import type { LibvirtBackend } from './types.js';

export const DEFAULT_HYPERVISOR_TIMEOUT_MS = 10_000;

/** One hypervisor as the config names it (`hypervisors:` in config/schema.ts; inventory does not import config). */
export interface HypervisorSettings {
  name: string;
  uri: string;
  jump?: string | undefined;
  timeout?: number | undefined;
}

const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/** `hv1/web-1` → { hypervisor: 'hv1', domain: 'web-1' }; a name without `/` names a domain on any hypervisor. */
export function splitVmName(name: string): { hypervisor?: string; domain: string } {
  const i = name.indexOf('/');
  return i < 0 ? { domain: name } : { hypervisor: name.slice(0, i), domain: name.slice(i + 1) };
}

/** Whether `pattern` (a name or glob, without `/`) matches `text`. */
function matches(pattern: string, text: string): boolean {
  return isGlob(pattern) ? globToRegExp(pattern).test(text) : pattern === text;
}

/** The selectors that concern one hypervisor, as plain domain selectors. */
export function selectorsFor(hv: string, selectors: readonly string[]): string[] {
  const out: string[] = [];
  for (const sel of selectors) {
    const { hypervisor, domain } = splitVmName(sel);
    if (hypervisor === undefined || matches(hypervisor, hv)) out.push(domain);
  }
  return out;
}

/**
 * The jump host a remote URI implies: `qemu+ssh://root@hv1:2222/system` → `root@hv1:2222`. The guests of a remote
 * hypervisor sit on its NAT networks, routable only from there. Local URIs (`qemu:///system`, `test:///…`) imply none.
 */
export function defaultJumpFor(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  if (!u.hostname || !/\+(ssh|libssh|libssh2|tls|tcp)$/.test(u.protocol.replace(/:$/, ''))) return undefined;
  const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
  // Only an SSH transport's port is an SSH port; +tls/+tcp ports are libvirtd's.
  const sshPort = /\+(ssh|libssh|libssh2)$/.test(u.protocol.replace(/:$/, '')) && u.port ? `:${u.port}` : '';
  return `${user}${u.hostname}${sshPort}`;
}

/** The ProxyJump for a hypervisor's guests: its own `jump`, else what its URI implies. */
export function hypervisorJump(hv: HypervisorSettings): string | undefined {
  return hv.jump ?? defaultJumpFor(hv.uri);
}

export interface HypervisorDiscoverOptions extends Omit<DiscoverOptions, 'selectors' | 'overrides' | 'nics'> {
  hypervisors: readonly HypervisorSettings[];
  selectors: readonly string[];
  /** By VM name as written in the config: `hv1/web-1` or `web-1` (any hypervisor). */
  overrides: ReadonlyMap<string, string>;
  nics?: ReadonlyMap<string, NicChoice>;
  /** The libvirt connection of one hypervisor (cached by the caller across rounds). */
  backendFor: (hv: HypervisorSettings) => Promise<LibvirtBackend>;
}

function forDomain<T>(map: ReadonlyMap<string, T> | undefined, hv: string, domain: string): T | undefined {
  return map?.get(`${hv}/${domain}`) ?? map?.get(domain);
}

/** Discover every hypervisor at once; each answer (or failure, or timeout) only concerns its own VMs. */
export async function discoverHypervisors(opts: HypervisorDiscoverOptions): Promise<VmTarget[]> {
  // Named hypervisors always name their VMs `hv/domain`, even one alone: several hosts, each with its own
  // hypervisor name, may write into one store, and their rows must never collide.
  const prefix = opts.hypervisors.length > 0;
  const all = await Promise.all(
    opts.hypervisors.map(async (hv): Promise<VmTarget[]> => {
      const selectors = selectorsFor(hv.name, opts.selectors);
      if (!opts.all && selectors.length === 0) return [];
      const name = (domain: string) => (prefix ? `${hv.name}/${domain}` : domain);
      const overrides = new Map<string, string>();
      const nics = new Map<string, NicChoice>();
      const timeoutMs = hv.timeout ?? DEFAULT_HYPERVISOR_TIMEOUT_MS;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${seconds(timeoutMs)}`)), timeoutMs);
      });
      const found = (async () => {
        const backend = await opts.backendFor(hv);
        // Overrides and NIC choices by domain name, as discover() knows them.
        for (const d of (await backend.listDomains()).map((x) => x.name)) {
          const o = forDomain(opts.overrides, hv.name, d);
          if (o) overrides.set(d, o);
          const nic = forDomain(opts.nics, hv.name, d);
          if (nic) nics.set(d, nic);
        }
        return discover(async () => backend, { ...opts, selectors, overrides, nics });
      })();
      try {
        const targets = await Promise.race([found, deadline]);
        return targets.map((t) => ({ ...t, name: name(t.name), hypervisor: hv.name, domain: t.name }));
      } catch (err) {
        found.catch(() => {}); // a late failure of an abandoned discovery is of no interest
        // libvirt's own hint names --connect; here the URI is the hypervisor's.
        const why = (err as Error).message.replace(/,? and is the --connect URI right\?$/, `, and is the uri of ${hv.name} right?`);
        const reason = `hypervisor ${hv.name} unreachable: ${why}`;
        // Named VMs each carry the reason; with --all or globs, one row stands for the hypervisor's unknown VMs.
        const named = selectors.filter((s) => !isGlob(s));
        const rows = !opts.all && named.length === selectors.length ? named : ['*'];
        return rows.map((d) => ({ name: name(d), hypervisor: hv.name, domain: d, unavailable: reason }));
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const targets = all.flat();
  // A hypervisor that is not in the config: said, not silently skipped.
  const names = opts.hypervisors.map((h) => h.name);
  for (const sel of opts.selectors) {
    const { hypervisor } = splitVmName(sel);
    if (hypervisor !== undefined && !names.some((n) => matches(hypervisor, n))) {
      targets.push({ name: sel, unavailable: `no hypervisor ${isGlob(hypervisor) ? 'matches' : 'named'} "${hypervisor}" (hypervisors: ${names.join(', ')})` });
    }
  }
  if (!prefix) return targets;
  // A name without a hypervisor (or with a glob for it) is looked for on every hypervisor: "not on hv2" is no news
  // when hv1 has it, and is said once when none has it.
  const spread = opts.selectors.filter((s) => {
    const { hypervisor } = splitVmName(s);
    return hypervisor === undefined || isGlob(hypervisor);
  });
  const spreadDomains = new Set(spread.map((s) => splitVmName(s).domain));
  const isMissing = (t: VmTarget) => t.state === undefined && t.address === undefined && /^(libvirt has no domain named|no libvirt domain matches)/.test(t.unavailable ?? '');
  const kept = targets.filter((t) => !(isMissing(t) && spreadDomains.has(t.domain ?? '')));
  for (const sel of spread) {
    const { hypervisor, domain } = splitVmName(sel);
    const mine = (t: VmTarget) => t.hypervisor !== undefined && (hypervisor === undefined || matches(hypervisor, t.hypervisor));
    const hit = kept.some((t) => mine(t) && !isMissing(t) && t.domain !== undefined && (t.domain === '*' || matches(domain, t.domain)));
    if (!hit) kept.push({ name: sel, unavailable: `no hypervisor has a domain ${isGlob(domain) ? 'matching' : 'named'} "${domain}"` });
  }
  return kept;
}
