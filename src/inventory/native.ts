/**
 * The native libvirt backend: clonebox's own N-API binding (native/src/libvirt_binding.cc).
 *
 * Every libvirt call runs on libuv's thread pool and answers with a Promise, so a slow or hung
 * libvirtd never blocks the event loop. When the binding is not built (no compiler, no
 * libvirt-dev) or cannot load (no libvirt.so), `loadNativeBinding()` says why and the caller
 * falls back to the virsh backend.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { printable } from '../util/printable.js';
import { isGuestLocalAddress } from './addresses.js';

export { isGuestLocalAddress };

import {
  LibvirtError,
  type AddressSource,
  type DomainInfo,
  type DomainState,
  type InterfaceAddress,
  type LibvirtBackend,
} from './types.js';

// ------------------------------------------------------------------ the binding's JS surface

/** A libvirt connection (virConnectPtr). Closed by close() or, failing that, when garbage-collected. */
export interface NativeConnection {
  /** libvirt's canonical URI for the connection (virConnectGetURI). */
  readonly uri: string;
  readonly readOnly: boolean;
  readonly closed: boolean;
  /** Idempotent. Calls already in flight finish normally; later calls reject (code 6). */
  close(): Promise<void>;
}

export interface NativeDomainRow {
  name: string;
  uuid: string;
  /** -1 for an inactive domain. */
  id: number;
  /** virDomainState: 0 nostate, 1 running, 2 blocked, 3 paused, 4 shutdown, 5 shutoff, 6 crashed, 7 pmsuspended. */
  state: number;
  /** The state's reason (virDomain<State>Reason), for verbose output. */
  reason: number;
}

export interface NativeAddress {
  type: 4 | 6;
  addr: string;
  prefix: number;
}

export interface NativeInterface {
  name: string;
  mac: string | null;
  addrs: NativeAddress[];
}

/** libvirt's error, as the binding reports it. */
export interface NativeFailure {
  message: string;
  /** virErrorNumber; -1 when libvirt set none. */
  code: number;
  /** virErrorDomain (which part of libvirt failed). */
  domain: number;
}

export interface NativeDomainAddresses {
  name: string;
  /** Set when this domain failed; the other domains of the same call are unaffected. */
  error?: NativeFailure;
  interfaces: NativeInterface[];
}

/** 0 = lease, 1 = agent, 2 = arp (virDomainInterfaceAddressesSource). */
export type NativeAddressSource = 0 | 1 | 2;

export interface NativeBinding {
  /** Version of the libvirt.so actually loaded, e.g. "9.0.0". */
  readonly libvirtVersion: string;
  /**
   * virConnectOpenReadOnly, or virConnectOpenAuth without auth callbacks (never prompts).
   * `uri` null means libvirt's default (LIBVIRT_DEFAULT_URI, then its own choice).
   */
  open(uri: string | null, readOnly: boolean): Promise<NativeConnection>;
  /** virConnectListAllDomains + virDomainGetState, all domains. */
  listDomains(conn: NativeConnection): Promise<NativeDomainRow[]>;
  /**
   * virDomainInterfaceAddresses for many domains in ONE call (one worker, up to `concurrency`
   * threads inside it, default 1). `names` null means every domain, inactive ones included.
   * Per-domain failures come back in that domain's `error`; only a failure to list rejects.
   */
  interfaceAddresses(
    conn: NativeConnection,
    names: readonly string[] | null,
    source: NativeAddressSource,
    concurrency?: number,
  ): Promise<NativeDomainAddresses[]>;
  /**
   * virDomainQemuAgentCommand (needs a read-write connection). `timeoutSeconds` > 0, or libvirt's
   * specials: -2 wait forever, -1 libvirt's default, 0 do not wait. Resolves to the agent's JSON reply.
   */
  agentCommand(conn: NativeConnection, domain: string, json: string, timeoutSeconds: number): Promise<string>;
}

// ------------------------------------------------------------------ loading

/** Where `node-gyp rebuild --directory native` puts the addon; same relative path from src/ and dist/. */
export const NATIVE_BINDING_PATH = fileURLToPath(
  new URL('../../native/build/Release/clonebox_libvirt.node', import.meta.url),
);

export type NativeBindingLoad = { binding: NativeBinding } | { error: string };

const loaded = new Map<string, NativeBindingLoad>();

/**
 * Loads the native binding, or says in one sentence why it cannot (for verbose output before
 * falling back to virsh). Never throws; the answer is cached per path.
 */
export function loadNativeBinding(path: string = NATIVE_BINDING_PATH): NativeBindingLoad {
  let result = loaded.get(path);
  if (result === undefined) {
    result = tryLoad(path);
    loaded.set(path, result);
  }
  return result;
}

function tryLoad(path: string): NativeBindingLoad {
  if (!existsSync(path)) {
    return {
      error:
        `the native libvirt binding is not built (${path} is missing); ` +
        'build it with `npx node-gyp rebuild --directory native`, which needs a C++ compiler, make, python3, pkg-config and libvirt-dev',
    };
  }
  try {
    const binding = createRequire(import.meta.url)(path) as NativeBinding;
    if (typeof binding.open !== 'function' || typeof binding.interfaceAddresses !== 'function') {
      return { error: `${path} is not clonebox's libvirt binding (it lacks open/interfaceAddresses); rebuild it` };
    }
    return { binding };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/libvirt[\w-]*\.so/.test(message)) {
      return {
        error: `the native libvirt binding is built but libvirt's shared library cannot be loaded (${message}); install libvirt0 or rebuild`,
      };
    }
    return { error: `the native libvirt binding failed to load: ${message}` };
  }
}

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

// virErrorNumber / virErrorDomain values used below (libvirt/virterror.h).
const ERR = {
  NO_SUPPORT: 3,
  NO_CONNECT: 5,
  INVALID_CONN: 6,
  OPERATION_DENIED: 29,
  SYSTEM_ERROR: 38,
  RPC: 39,
  GNUTLS_ERROR: 40,
  NO_DOMAIN: 42,
  AUTH_FAILED: 45,
  OPERATION_INVALID: 55,
  OPERATION_TIMEOUT: 68,
  AUTH_CANCELLED: 79,
  SSH: 85,
  AGENT_UNRESPONSIVE: 86,
  ACCESS_DENIED: 88,
  AUTH_UNAVAILABLE: 94,
  LIBSSH: 98,
} as const;
const FROM_RPC = 7;
const FROM_REMOTE = 13;

const ERROR_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ERR).map(([name, code]) => [code, `VIR_ERR_${name}`]),
);

// Errors that mean "libvirt itself is unreachable", whatever call hit them.
const CONNECT_CODES = new Set<number>([
  ERR.NO_CONNECT,
  ERR.INVALID_CONN,
  ERR.RPC,
  ERR.GNUTLS_ERROR,
  ERR.AUTH_FAILED,
  ERR.AUTH_CANCELLED,
  ERR.AUTH_UNAVAILABLE,
  ERR.SSH,
  ERR.LIBSSH,
]);

const CONNECT_HINT =
  'is libvirtd running, do you have permission on its socket (or try a read-only connection), and is the --connect URI right?';

type Operation =
  | { op: 'open'; uri: string }
  | { op: 'list'; uri: string }
  | { op: 'addresses'; uri: string; domain: string; source: AddressSource }
  | { op: 'agent'; uri: string; domain: string };

function asFailure(err: unknown): NativeFailure {
  if (err instanceof Error) {
    const { code, domain } = err as Error & { code?: unknown; domain?: unknown };
    return {
      message: err.message,
      code: typeof code === 'number' ? code : -1,
      domain: typeof domain === 'number' ? domain : -1,
    };
  }
  return { message: String(err), code: -1, domain: -1 };
}

function codeText(code: number): string {
  if (code < 0) return 'no libvirt error code';
  const name = ERROR_NAMES[code];
  return name === undefined ? `libvirt error ${code}` : `libvirt error ${code}, ${name}`;
}

/** One sentence a user can act on, with libvirt's own message and code, and a kind to branch on. */
export function toLibvirtError(failure: NativeFailure, at: Operation): LibvirtError {
  const { code, domain } = failure;
  // libvirt's text can quote a domain name or a guest agent's reply: one line, escaped.
  const message = printable(failure.message);
  const detail = `${message} (${codeText(code)})`;
  if (code === ERR.INVALID_CONN && /connection is closed/.test(message)) {
    return new LibvirtError(`The libvirt connection to ${at.uri} was already closed (${codeText(code)}).`, code, 'connect');
  }
  const isConnect =
    at.op === 'open' ||
    CONNECT_CODES.has(code) ||
    ((domain === FROM_RPC || domain === FROM_REMOTE) && code === ERR.SYSTEM_ERROR);
  if (isConnect) {
    return new LibvirtError(`cannot connect to libvirt at ${at.uri}: ${detail}; ${CONNECT_HINT}`, code, 'connect');
  }
  if (at.op === 'list') {
    return new LibvirtError(`libvirt at ${at.uri} could not list domains: ${detail}.`, code, 'other');
  }
  if (code === ERR.NO_DOMAIN) {
    return new LibvirtError(`libvirt at ${at.uri} has no domain named '${printable(at.domain)}': ${detail}.`, code, 'no-domain');
  }
  if (code === ERR.OPERATION_INVALID && /not running|inactive/i.test(message)) {
    return new LibvirtError(`Domain '${printable(at.domain)}' is not running: ${detail}.`, code, 'not-running');
  }
  if (code === ERR.OPERATION_DENIED && /read.?only/i.test(message)) {
    return new LibvirtError(
      `Domain '${printable(at.domain)}': ${detail}; the guest agent needs a read-write libvirt connection.`,
      code,
      'other',
    );
  }
  if (at.op === 'agent') {
    return new LibvirtError(`The guest agent of '${printable(at.domain)}' did not answer: ${detail}.`, code, 'other');
  }
  return new LibvirtError(
    `libvirt could not read the ${at.source} addresses of '${printable(at.domain)}': ${detail}.`,
    code,
    'other',
  );
}

// ------------------------------------------------------------------ the backend

export type DomainAddressesResult =
  | { ok: true; addresses: InterfaceAddress[] }
  | { ok: false; error: LibvirtError };

export interface NativeBackend extends LibvirtBackend {
  readonly kind: 'native';
  /** Version of the libvirt.so in use, for verbose output. */
  readonly libvirtVersion: string;
  /**
   * Addresses of many domains in one call to the binding (null: every domain, inactive ones
   * answering 'not-running'). A domain's failure is its own entry, never a rejection; the
   * promise rejects only when libvirt cannot be reached or cannot list domains.
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
