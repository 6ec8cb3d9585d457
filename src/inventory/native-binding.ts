/**
 * The JS surface of clonebox's N-API libvirt binding (native/src/libvirt_binding.cc), and loading it: when it is
 * not built (no compiler, no libvirt-dev) or cannot load (no libvirt.so), `loadNativeBinding()` says why.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

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
