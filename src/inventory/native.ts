/**
 * The native libvirt backend: clonebox's own N-API binding (native/src/libvirt_binding.cc).
 *
 * Every libvirt call runs on libuv's thread pool and answers with a Promise, so a slow or hung
 * libvirtd never blocks the event loop. When the binding is not built (no compiler, no
 * libvirt-dev) or cannot load (no libvirt.so), `loadNativeBinding()` says why and the caller
 * falls back to the virsh backend. The parts: native-binding.ts (the binding's JS surface, loading it),
 * native-errors.ts (libvirt's errors as sentences).
 */
import { isGuestLocalAddress } from './addresses.js';
import {
  loadNativeBinding,
  type NativeAddressSource,
  type NativeBinding,
  type NativeConnection,
  type NativeDomainAddresses,
  type NativeDomainRow,
  type NativeInterface,
} from './native-binding.js';
import { asFailure, toLibvirtError } from './native-errors.js';
import {
  LibvirtError,
  type AddressSource,
  type DomainAddressesResult,
  type DomainInfo,
  type DomainState,
  type InterfaceAddress,
  type LibvirtBackend,
} from './types.js';

export { isGuestLocalAddress };
export * from './native-binding.js';
export { toLibvirtError } from './native-errors.js';
export type { DomainAddressesResult } from './types.js';

// ------------------------------------------------------------------ mapping

const STATES: readonly DomainState[] = [
  'nostate', // VIR_DOMAIN_NOSTATE = 0
  'running', // 1
  'blocked', // 2
  'paused', // 3
  'shutdown', // 4: being shut down
  'shutoff', // 5
  'crashed', // 6
  'pmsuspended', // 7
];

export function domainStateFromNumber(state: number): DomainState {
  return STATES[state] ?? 'unknown';
}

const SOURCES: Record<AddressSource, NativeAddressSource> = { lease: 0, agent: 1, arp: 2 };

/**
 * Flattens libvirt's interfaces into addresses. Only the agent source is filtered: the guest
 * agent reports the guest's own lo and link-local addresses, while lease and arp entries are
 * the host's view and are kept as reported.
 */
export function toInterfaceAddresses(interfaces: readonly NativeInterface[], source: AddressSource): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const iface of interfaces) {
    for (const a of iface.addrs) {
      const family = a.type === 6 ? 'ipv6' : 'ipv4';
      if (source === 'agent' && isGuestLocalAddress(a.addr, family)) continue;
      out.push({
        interface: iface.name,
        ...(iface.mac !== null ? { mac: iface.mac } : {}),
        family,
        address: a.addr,
        prefix: a.prefix,
      });
    }
  }
  return out;
}

// ------------------------------------------------------------------ the backend

export interface NativeBackend extends LibvirtBackend {
  readonly kind: 'native';
  /** Version of the libvirt.so in use, for verbose output. */
  readonly libvirtVersion: string;
  /**
   * Addresses of many domains in one call to the binding (null: every domain, inactive ones
   * answering 'not-running'). A domain's failure is its own entry, never a rejection; the
   * promise rejects only when libvirt cannot be reached or cannot list domains. Always there.
   */
  addressesForAll(
    names: readonly string[] | null,
    source: AddressSource,
    opts?: { concurrency?: number },
  ): Promise<Map<string, DomainAddressesResult>>;
  /**
   * Sends one QEMU guest-agent command (JSON text or an object to serialize) and resolves to
   * the agent's JSON reply text. Needs a read-write connection.
   */
  agentCommand(domain: string, command: string | object, timeoutSeconds?: number): Promise<string>;
}

export interface NativeBackendOptions {
  /**
   * Read-only connections need no privileges on qemu:///system but cannot use the agent
   * source. Default false (read-write), like virsh.
   */
  readOnly?: boolean;
  /** Threads inside one bulk call (a remote libvirtd serves 5 calls per client at once by default). */
  concurrency?: number;
  /** For tests: a binding other than the built one. */
  binding?: NativeBinding;
}

const DEFAULT_CONCURRENCY = 4;

/**
 * Opens a libvirt connection through the native binding. Rejects with a LibvirtError: kind
 * 'connect' when libvirt cannot be reached, 'other' when the binding itself is unavailable.
 * `uri` '' means libvirt's default URI.
 */
export async function openNativeBackend(uri: string, opts: NativeBackendOptions = {}): Promise<NativeBackend> {
  let binding = opts.binding;
  if (binding === undefined) {
    const load = loadNativeBinding();
    if ('error' in load) throw new LibvirtError(`Native libvirt backend unavailable: ${load.error}.`);
    binding = load.binding;
  }
  const readOnly = opts.readOnly ?? false;
  const conn = await binding.open(uri === '' ? null : uri, readOnly).catch((err: unknown) => {
    throw toLibvirtError(asFailure(err), { op: 'open', uri: uri === '' ? '(the default URI)' : uri });
  });
  return new NativeLibvirtBackend(binding, conn, uri === '' ? conn.uri : uri, opts.concurrency ?? DEFAULT_CONCURRENCY);
}

class NativeLibvirtBackend implements NativeBackend {
  readonly kind = 'native' as const;

  constructor(
    private readonly binding: NativeBinding,
    private readonly conn: NativeConnection,
    readonly uri: string,
    private readonly concurrency: number,
  ) {}

  get libvirtVersion(): string {
    return this.binding.libvirtVersion;
  }

  async listDomains(): Promise<DomainInfo[]> {
    let rows: NativeDomainRow[];
    try {
      rows = await this.binding.listDomains(this.conn);
    } catch (err) {
      throw toLibvirtError(asFailure(err), { op: 'list', uri: this.uri });
    }
    const domains = rows.map(
      (r): DomainInfo => ({
        name: r.name,
        ...(r.uuid !== '' ? { uuid: r.uuid } : {}),
        ...(r.id >= 0 ? { id: r.id } : {}),
        state: domainStateFromNumber(r.state),
      }),
    );
    // virsh's order: active domains by id, then inactive ones by name.
    return domains.sort((a, b) =>
      a.id !== undefined && b.id !== undefined
        ? a.id - b.id
        : a.id !== undefined
          ? -1
          : b.id !== undefined
            ? 1
            : a.name.localeCompare(b.name),
    );
  }

  async interfaceAddresses(domain: string, source: AddressSource): Promise<InterfaceAddress[]> {
    const result = (await this.addressesForAll([domain], source, { concurrency: 1 })).get(domain);
    if (result === undefined) throw new LibvirtError(`libvirt returned no answer for domain '${domain}'.`);
    if (!result.ok) throw result.error;
    return result.addresses;
  }

  async addressesForAll(
    names: readonly string[] | null,
    source: AddressSource,
    opts: { concurrency?: number } = {},
  ): Promise<Map<string, DomainAddressesResult>> {
    let rows: NativeDomainAddresses[];
    try {
      rows = await this.binding.interfaceAddresses(
        this.conn,
        names,
        SOURCES[source],
        opts.concurrency ?? this.concurrency,
      );
    } catch (err) {
      throw toLibvirtError(asFailure(err), { op: 'list', uri: this.uri });
    }
    const out = new Map<string, DomainAddressesResult>();
    for (const row of rows) {
      out.set(
        row.name,
        row.error !== undefined
          ? { ok: false, error: toLibvirtError(row.error, { op: 'addresses', uri: this.uri, domain: row.name, source }) }
          : { ok: true, addresses: toInterfaceAddresses(row.interfaces, source) },
      );
    }
    return out;
  }

  async agentCommand(domain: string, command: string | object, timeoutSeconds = 5): Promise<string> {
    const json = typeof command === 'string' ? command : JSON.stringify(command);
    try {
      return await this.binding.agentCommand(this.conn, domain, json, Math.round(timeoutSeconds));
    } catch (err) {
      throw toLibvirtError(asFailure(err), { op: 'agent', uri: this.uri, domain });
    }
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}
