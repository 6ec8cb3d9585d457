/**
 * What every LibvirtBackend (native, virsh) must do, checked against the same fixture:
 * fixtures/libvirt/fleet.xml through libvirt's built-in test driver (no daemon needed).
 *
 * Use from a test file:  backendContract('virsh', (uri) => openVirshBackend(uri));
 * The expected values below are what `virsh -c test:///…/fleet.xml` reports (native.test.ts
 * re-checks them against a live virsh).
 */
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  LibvirtError,
  type AddressSource,
  type DomainInfo,
  type InterfaceAddress,
  type LibvirtBackend,
} from '../../src/inventory/types.js';

export const FLEET_XML = fileURLToPath(new URL('../../fixtures/libvirt/fleet.xml', import.meta.url));
/** test:/// + absolute path: the test driver loads the file, one private copy per connection. */
export const FLEET_URI = `test://${FLEET_XML}`;

/** In virsh's order: active domains by id, then inactive ones by name. */
export const FLEET_DOMAINS: readonly DomainInfo[] = [
  { name: 'web-01', uuid: '0b5e1c2a-7d31-4c6e-9a11-000000000001', id: 1, state: 'running' },
  { name: 'db-01', uuid: '0b5e1c2a-7d31-4c6e-9a11-000000000002', id: 2, state: 'running' },
  { name: 'cache-01', uuid: '0b5e1c2a-7d31-4c6e-9a11-000000000003', id: 3, state: 'running' },
  { name: 'batch-01', uuid: '0b5e1c2a-7d31-4c6e-9a11-000000000004', id: 4, state: 'paused' },
  { name: 'legacy-01', uuid: '0b5e1c2a-7d31-4c6e-9a11-000000000005', state: 'shutoff' },
];

const v4 = (iface: string, mac: string, address: string): InterfaceAddress => ({
  interface: iface,
  mac,
  family: 'ipv4',
  address,
  prefix: 8,
});
const v6 = (iface: string, mac: string, address: string): InterfaceAddress => ({
  interface: iface,
  mac,
  family: 'ipv6',
  address,
  prefix: 64,
});

/** Addresses of the active domains, as `virsh -q domifaddr NAME --full` prints them (any source). */
export const FLEET_ADDRESSES: Readonly<Record<string, readonly InterfaceAddress[]>> = {
  'web-01': [v4('testnet0', '52:54:00:cb:00:01', '127.0.0.2'), v6('testnet1', '52:54:00:cb:01:01', 'fd00:cb::102')],
  'db-01': [
    v4('testnet0', '52:54:00:cb:00:02', '127.0.0.3'),
    v6('testnet1', '52:54:00:cb:01:02', 'fe80::5054:ff:fecb:2'),
  ],
  'cache-01': [v4('testnet0', '52:54:00:cb:00:03', '127.0.0.4')],
  // Paused is still active: libvirt answers for it.
  'batch-01': [v4('testnet0', '52:54:00:cb:00:04', '127.0.0.5')],
};

/** With source 'agent' the guest's loopback and link-local addresses are dropped (DESIGN.md §3). */
export const FLEET_AGENT_ADDRESSES: Readonly<Record<string, readonly InterfaceAddress[]>> = {
  'web-01': [v6('testnet1', '52:54:00:cb:01:01', 'fd00:cb::102')],
  'db-01': [],
  'cache-01': [],
  'batch-01': [],
};

/** Opens a backend and makes one call: a lazy backend (virsh) fails at the call, the native one at open. */
async function firstCall(open: (uri: string) => Promise<LibvirtBackend>, uri: string): Promise<DomainInfo[]> {
  const backend = await open(uri);
  try {
    return await backend.listDomains();
  } finally {
    await backend.close();
  }
}

/** The LibvirtError a call rejects with (fails the test if it resolves or rejects with anything else). */
export async function rejection(promise: Promise<unknown>): Promise<LibvirtError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(LibvirtError);
    return err as LibvirtError;
  }
  throw new Error('expected a LibvirtError, but the call succeeded');
}

export function backendContract(name: string, open: (uri: string) => Promise<LibvirtBackend>): void {
  describe(`${name} backend: the LibvirtBackend contract (libvirt test driver, fixtures/libvirt/fleet.xml)`, () => {
    let backend: LibvirtBackend;
    beforeAll(async () => {
      backend = await open(FLEET_URI);
    });
    afterAll(async () => {
      await backend?.close();
    });

    it('says which backend it is and which URI it talks to', () => {
      expect(backend.kind).toBe(name);
      expect(backend.uri).toBe(FLEET_URI);
    });

    it('lists every domain with its state, id (active only) and uuid, active by id then inactive by name', async () => {
      expect(await backend.listDomains()).toEqual(FLEET_DOMAINS);
    });

    it.each(Object.keys(FLEET_ADDRESSES))('reports the lease addresses of %s exactly as virsh does', async (domain) => {
      expect(await backend.interfaceAddresses(domain, 'lease')).toEqual(FLEET_ADDRESSES[domain]);
    });

    it('keeps arp addresses as reported: only the agent source is filtered', async () => {
      expect(await backend.interfaceAddresses('db-01', 'arp')).toEqual(FLEET_ADDRESSES['db-01']);
    });

    it.each(Object.keys(FLEET_AGENT_ADDRESSES))(
      'drops loopback and link-local addresses that the guest agent reports (%s)',
      async (domain) => {
        expect(await backend.interfaceAddresses(domain, 'agent')).toEqual(FLEET_AGENT_ADDRESSES[domain]);
      },
    );

    it("answers 'not-running' for a shut-off domain, naming it", async () => {
      const err = await rejection(backend.interfaceAddresses('legacy-01', 'lease'));
      expect(err.kind).toBe('not-running');
      expect(err.message).toContain('legacy-01');
      expect(err.message).toMatch(/not running/);
    });

    it("answers 'no-domain' for a name libvirt does not know, naming it", async () => {
      const err = await rejection(backend.interfaceAddresses('no-such-vm', 'lease'));
      expect(err.kind).toBe('no-domain');
      expect(err.message).toContain('no-such-vm');
    });

    it.each([
      ['a test-driver file that does not exist', 'test:///nonexistent/file.xml'],
      ['a libvirtd socket that does not exist', 'qemu+unix:///system?socket=/nonexistent'],
    ])("answers 'connect' for %s, quoting libvirt's reason", async (_why, uri) => {
      const err = await rejection(firstCall(open, uri));
      expect(err.kind).toBe('connect');
      expect(err.message).toContain('/nonexistent');
    });

    it('gives the same answers to many concurrent calls', async () => {
      const sources: AddressSource[] = ['lease', 'arp'];
      const calls = Array.from({ length: 20 }, (_, i) => {
        const domain = Object.keys(FLEET_ADDRESSES)[i % 4]!;
        return backend.interfaceAddresses(domain, sources[i % 2]!).then((addresses) => [domain, addresses] as const);
      });
      for (const [domain, addresses] of await Promise.all(calls)) {
        expect(addresses).toEqual(FLEET_ADDRESSES[domain]);
      }
    });
  });
}
