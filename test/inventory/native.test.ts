import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  domainStateFromNumber,
  isGuestLocalAddress,
  loadNativeBinding,
  openNativeBackend,
  toInterfaceAddresses,
  toLibvirtError,
  type NativeBackend,
} from '../../src/inventory/native.js';
import { discover } from '../../src/inventory/discover.js';
import { LibvirtError, type AddressSource, type InterfaceAddress, type LibvirtBackend } from '../../src/inventory/types.js';
import { FLEET_ADDRESSES, FLEET_DOMAINS, FLEET_URI, backendContract, rejection } from './contract.js';

const run = promisify(execFile);

// ---------------------------------------------------------------- pure mapping (no binding needed)

describe('native backend: mapping libvirt to clonebox', () => {
  it.each([
    [0, 'nostate'],
    [1, 'running'],
    [2, 'blocked'],
    [3, 'paused'],
    [4, 'shutdown'],
    [5, 'shutoff'],
    [6, 'crashed'],
    [7, 'pmsuspended'],
    [8, 'unknown'], // a state newer than this code
  ] as const)('virDomainState %i is %s', (n, state) => {
    expect(domainStateFromNumber(n)).toBe(state);
  });

  it.each([
    ['127.0.0.1', 'ipv4', true, 'loopback'],
    ['127.200.3.4', 'ipv4', true, 'all of 127/8 is loopback'],
    ['169.254.10.1', 'ipv4', true, 'link-local'],
    ['192.168.122.5', 'ipv4', false, 'a routable guest address'],
    ['::1', 'ipv6', true, 'loopback'],
    ['fe80::5054:ff:fe12:3456', 'ipv6', true, 'link-local'],
    ['fe80::1%eth0', 'ipv6', false, 'a zone id is not an IP literal: discovery ignores it as not an address'],
    ['febf::1', 'ipv6', true, 'still inside fe80::/10'],
    ['fec0::1', 'ipv6', false, 'just outside fe80::/10'],
    ['fd00:cb::102', 'ipv6', false, 'unique local: reachable from the host'],
    ['not-an-address', 'ipv4', false, 'not an address: discovery ignores it (addresses.ts), with a note'],
  ] as const)('isGuestLocalAddress(%s, %s) is %s: %s', (address, family, expected, _why) => {
    expect(isGuestLocalAddress(address, family)).toBe(expected);
  });

  it('flattens interfaces and drops guest-local addresses for the agent source only', () => {
    const interfaces = [
      { name: 'lo', mac: '00:00:00:00:00:00', addrs: [{ type: 4 as const, addr: '127.0.0.1', prefix: 8 }] },
      {
        name: 'eth0',
        mac: null,
        addrs: [
          { type: 4 as const, addr: '10.0.0.5', prefix: 24 },
          { type: 6 as const, addr: 'fe80::1', prefix: 64 },
        ],
      },
    ];
    const eth0: InterfaceAddress = { interface: 'eth0', family: 'ipv4', address: '10.0.0.5', prefix: 24 };
    expect(toInterfaceAddresses(interfaces, 'agent')).toEqual([eth0]);
    expect(toInterfaceAddresses(interfaces, 'lease')).toHaveLength(3);
    expect(toInterfaceAddresses(interfaces, 'agent')[0]).not.toHaveProperty('mac'); // mac null → absent
  });

  const uri = 'qemu:///system';
  it.each([
    ['any failure to open', { message: 'XML error', code: 27, domain: 12 }, { op: 'open', uri }, 'connect'],
    ['a dropped daemon connection', { message: 'End of file while reading data', code: 38, domain: 7 }, { op: 'list', uri }, 'connect'],
    ['an RPC failure', { message: 'RPC failure', code: 39, domain: 7 }, { op: 'list', uri }, 'connect'],
    ['a refused login', { message: 'authentication failed', code: 45, domain: 13 }, { op: 'list', uri }, 'connect'],
    ['an unknown domain', { message: 'Domain not found', code: 42, domain: 12 }, { op: 'addresses', uri, domain: 'x', source: 'lease' }, 'no-domain'],
    ['a stopped domain', { message: 'Requested operation is not valid: domain is not running', code: 55, domain: 20 }, { op: 'addresses', uri, domain: 'x', source: 'lease' }, 'not-running'],
    ['another invalid operation', { message: 'Requested operation is not valid: foo', code: 55, domain: 10 }, { op: 'addresses', uri, domain: 'x', source: 'lease' }, 'other'],
    ['a host-side system error', { message: 'Cannot open lease file', code: 38, domain: 10 }, { op: 'addresses', uri, domain: 'x', source: 'lease' }, 'other'],
    ['an unresponsive agent', { message: 'Guest agent is not responding', code: 86, domain: 10 }, { op: 'agent', uri, domain: 'x' }, 'other'],
  ] as const)('classifies %s', (_why, failure, at, kind) => {
    const err = toLibvirtError(failure, at);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err.kind).toBe(kind);
    expect(err.code).toBe(failure.code);
    expect(err.message).toContain(failure.message);
    expect(err.message).toContain(`libvirt error ${failure.code}`);
  });

  it('says how to fix a connection failure', () => {
    const err = toLibvirtError({ message: "Failed to connect socket to '/x'", code: 38, domain: 7 }, { op: 'open', uri });
    expect(err.message).toMatch(/^cannot connect to libvirt at qemu:\/\/\/system: Failed to connect socket to '\/x' \(libvirt error 38, VIR_ERR_SYSTEM_ERROR\); is libvirtd running/);
    expect(err.message).toMatch(/permission on its socket/);
    expect(err.message).toMatch(/--connect URI/);
  });

  it('explains, without throwing, why a binding cannot load', () => {
    const load = loadNativeBinding('/nonexistent/clonebox_libvirt.node');
    expect(load).toEqual({ error: expect.stringMatching(/not built.*node-gyp rebuild --directory native/) });
  });
});

// ---------------------------------------------------------------- against libvirt's test driver

const load = loadNativeBinding();
const built = 'binding' in load;
const hasVirsh = spawnSync('virsh', ['--version']).status === 0;
if (!built) console.warn(`native.test.ts: skipping the native backend tests: ${load.error}`);

describe.runIf(built)('native backend (built binding)', () => {
  backendContract('native', (uri) => openNativeBackend(uri));

  let backend: NativeBackend;
  beforeAll(async () => {
    backend = await openNativeBackend(FLEET_URI);
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('reports the libvirt it loaded', () => {
    expect(backend.kind).toBe('native');
    expect(backend.libvirtVersion).toMatch(/^\d+\.\d+\.\d+$/);
  });

  describe.runIf(hasVirsh)('agrees with a live virsh', () => {
    it.each(Object.keys(FLEET_ADDRESSES))('domifaddr %s --full', async (domain) => {
      const { stdout } = await run('virsh', ['-c', FLEET_URI, '-q', 'domifaddr', domain, '--full']);
      const fromVirsh = stdout
        .trim()
        .split('\n')
        .map((line) => {
          const [iface, mac, family, cidr] = line.trim().split(/\s+/);
          const [address, prefix] = cidr!.split('/');
          return { interface: iface, mac, family, address, prefix: Number(prefix) };
        });
      expect(await backend.interfaceAddresses(domain, 'lease')).toEqual(fromVirsh);
    });
  });

  describe('addressesForAll: the whole fleet in one call', () => {
    it('answers every domain, each failure on its own entry', async () => {
      const all = await backend.addressesForAll(null, 'lease');
      expect([...all.keys()].sort()).toEqual(FLEET_DOMAINS.map((d) => d.name).sort());
      for (const [domain, expected] of Object.entries(FLEET_ADDRESSES)) {
        expect(all.get(domain)).toEqual({ ok: true, addresses: expected });
      }
      const legacy = all.get('legacy-01');
      expect(legacy?.ok).toBe(false);
      expect(legacy?.ok === false && legacy.error.kind).toBe('not-running');
    });

    it('answers named domains, unknown ones included, with any number of threads', async () => {
      const names = ['web-01', 'no-such-vm', 'cache-01'];
      for (const concurrency of [1, 2, 8]) {
        const some = await backend.addressesForAll(names, 'lease', { concurrency });
        expect(some.get('web-01')).toEqual({ ok: true, addresses: FLEET_ADDRESSES['web-01'] });
        expect(some.get('cache-01')).toEqual({ ok: true, addresses: FLEET_ADDRESSES['cache-01'] });
        const missing = some.get('no-such-vm');
        expect(missing?.ok === false && missing.error.kind).toBe('no-domain');
      }
    });

    it('answers an empty list with an empty map', async () => {
      expect((await backend.addressesForAll([], 'lease')).size).toBe(0);
    });

    it('serves discovery: the first host source for the whole fleet in one call, the same targets as VM by VM', async () => {
      let perVm = 0;
      let bulk = 0;
      const counting = (withBulk: boolean): LibvirtBackend => ({
        kind: 'native',
        uri: backend.uri,
        listDomains: () => backend.listDomains(),
        interfaceAddresses: (d, s) => (perVm++, backend.interfaceAddresses(d, s)),
        agentCommand: (d, c, t) => backend.agentCommand(d, c, t),
        close: async () => {},
        ...(withBulk ? { addressesForAll: (n: readonly string[] | null, s: AddressSource) => (bulk++, backend.addressesForAll(n, s)) } : {}),
      });
      const opts = { selectors: ['no-such-vm'], all: true, sources: ['lease', 'arp'] as AddressSource[], overrides: new Map([['cache-01', '10.9.9.9']]) };
      const alone = await discover(async () => counting(false), opts);
      expect(perVm).toBe(2); // web-01 and db-01 (cache-01 from the config; batch-01 paused, legacy-01 off)
      perVm = 0;
      const together = await discover(async () => counting(true), opts);
      expect([bulk, perVm]).toEqual([1, 0]);
      expect(together).toEqual(alone);
      expect(together.find((t) => t.name === 'web-01')).toMatchObject({ address: '127.0.0.2', addressSource: 'lease' });
      // The guest agent is asked VM by VM (each answer may take its own timeout), never in bulk.
      perVm = 0;
      bulk = 0;
      await discover(async () => counting(true), { ...opts, sources: ['agent', 'lease'] });
      expect(bulk).toBe(0);
      expect(perVm).toBeGreaterThanOrEqual(2);
    });
  });

  describe('errors carry libvirt’s message and code', () => {
    it.each([
      ['test:///nonexistent/file.xml', 27, /failed to parse xml document '\/nonexistent\/file\.xml'/],
      ['qemu+unix:///system?socket=/nonexistent', 38, /Failed to connect socket to '\/nonexistent'/],
    ])('open(%s) fails with code %i', async (uri, code, libvirtMessage) => {
      const err = await rejection(openNativeBackend(uri));
      expect(err).toMatchObject({ kind: 'connect', code });
      expect(err.message).toMatch(libvirtMessage);
      expect(err.message).toContain(uri);
      expect(err.message).toMatch(/is libvirtd running/);
    });

    it('refuses the agent source on a read-only connection, saying why', async () => {
      const readOnly = await openNativeBackend(FLEET_URI, { readOnly: true });
      try {
        expect(await readOnly.listDomains()).toEqual(FLEET_DOMAINS); // reading is fine
        const err = await rejection(readOnly.interfaceAddresses('web-01', 'agent'));
        expect(err).toMatchObject({ kind: 'other', code: 29 });
        expect(err.message).toMatch(/read only access prevents virDomainInterfaceAddresses/);
        expect(err.message).toMatch(/needs a read-write libvirt connection/);
      } finally {
        await readOnly.close();
      }
    });

    it('reports a guest-agent command the driver cannot run (the test driver has no agent)', async () => {
      const err = await rejection(backend.agentCommand('web-01', { execute: 'guest-ping' }));
      expect(err).toMatchObject({ kind: 'other', code: 3 });
      expect(err.message).toMatch(/not supported by the connection driver: virDomainQemuAgentCommand/);
      const missing = await rejection(backend.agentCommand('no-such-vm', '{"execute":"guest-ping"}'));
      expect(missing).toMatchObject({ kind: 'no-domain', code: 42 });
    });
  });

  describe('closing', () => {
    it('lets calls already in flight finish, then refuses new ones', async () => {
      const b = await openNativeBackend(FLEET_URI);
      const inFlight = Promise.all(Array.from({ length: 50 }, () => b.interfaceAddresses('web-01', 'lease')));
      await b.close();
      await b.close(); // idempotent
      for (const addresses of await inFlight) expect(addresses).toEqual(FLEET_ADDRESSES['web-01']);
      const err = await rejection(b.listDomains());
      expect(err).toMatchObject({ kind: 'connect', code: 6 });
      expect(err.message).toMatch(/already closed/);
    });
  });

  describe('the event loop never waits for libvirt', () => {
    it('keeps ticking while libvirt hangs, answers 200 other calls meanwhile, and reports "connect" when the daemon goes away', async () => {
      // A "libvirtd" that accepts the connection and never answers: libvirt's client waits on the
      // socket inside a worker thread. A binding that called libvirt on the event loop would
      // freeze right here (the test driver alone is too fast to tell the two apart).
      const dir = mkdtempSync(join(tmpdir(), 'clonebox-hang-'));
      const socketPath = join(dir, 'libvirt-sock');
      const accepted: Socket[] = [];
      const server = createServer((s) => accepted.push(s));
      await new Promise<void>((resolve) => server.listen(socketPath, resolve));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      try {
        const uri = `qemu+unix:///system?socket=${socketPath}`;
        const hanging = rejection(openNativeBackend(uri));

        // 200 concurrent calls on the fixture while the open above hangs.
        const names = Object.keys(FLEET_ADDRESSES);
        const calls = Array.from({ length: 200 }, (_, i) =>
          i % 10 === 0 ? backend.listDomains() : backend.interfaceAddresses(names[i % names.length]!, 'lease'),
        );
        const results = await Promise.all(calls);
        results.forEach((r, i) =>
          expect(r).toEqual(i % 10 === 0 ? FLEET_DOMAINS : FLEET_ADDRESSES[names[i % names.length]!]),
        );

        await new Promise((r) => setTimeout(r, 300));
        expect(ticks).toBeGreaterThanOrEqual(10);
        expect(accepted.length).toBe(1); // libvirt did connect, and is still waiting for an answer

        for (const s of accepted) s.destroy();
        const err = await hanging;
        expect(err).toMatchObject({ kind: 'connect', code: 38 });
        expect(err.message).toMatch(/End of file while reading data/);
        expect(err.message).toContain(socketPath);
      } finally {
        clearInterval(timer);
        server.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
