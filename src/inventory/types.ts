/** What the tool needs from libvirt, and no more. Two backends implement it: virsh (now) and native (N-API). */

export type DomainState =
  | 'running'
  | 'blocked'
  | 'paused'
  | 'shutdown'
  | 'shutoff'
  | 'crashed'
  | 'pmsuspended'
  | 'nostate'
  | 'unknown';

export interface DomainInfo {
  name: string;
  uuid?: string;
  /** libvirt's id: set only for active (running/paused) domains. */
  id?: number;
  state: DomainState;
}

export type AddressSource = 'lease' | 'agent' | 'arp';
export const ADDRESS_SOURCES: readonly AddressSource[] = ['lease', 'agent', 'arp'];

export interface InterfaceAddress {
  /** Interface name as libvirt reports it (e.g. vnet0, testnet0). */
  interface: string;
  mac?: string;
  family: 'ipv4' | 'ipv6';
  address: string;
  prefix: number;
}

/** A libvirt failure in words a user can act on; `code` is libvirt's virErrorNumber when known. */
export class LibvirtError extends Error {
  override readonly name = 'LibvirtError';
  constructor(
    message: string,
    readonly code?: number,
    readonly kind: 'connect' | 'no-domain' | 'not-running' | 'other' = 'other',
  ) {
    super(message);
  }
}

/** One domain's answer in a lookup of many: its addresses, or its own error. */
export type DomainAddressesResult = { ok: true; addresses: InterfaceAddress[] } | { ok: false; error: LibvirtError };

export interface LibvirtBackend {
  /** 'virsh' or 'native', for verbose output. */
  readonly kind: 'virsh' | 'native';
  readonly uri: string;
  /** All domains, active and inactive. Throws LibvirtError when libvirt is unreachable. */
  listDomains(): Promise<DomainInfo[]>;
  /** Addresses of a running domain from one source. Throws LibvirtError (kind 'not-running', 'no-domain', ...). */
  interfaceAddresses(domain: string, source: AddressSource): Promise<InterfaceAddress[]>;
  /** One QEMU guest-agent command (JSON text) → the agent's JSON reply text. Needs a read-write connection. */
  agentCommand(domain: string, command: string | object, timeoutSeconds?: number): Promise<string>;
  /**
   * Addresses of many domains from one source in one call (null: every domain), when the backend can (native): a
   * domain's failure is its own entry; rejects only when libvirt cannot be reached or cannot list domains.
   */
  addressesForAll?(names: readonly string[] | null, source: AddressSource, opts?: { concurrency?: number }): Promise<Map<string, DomainAddressesResult>>;
  close(): Promise<void>;
}
