import { describe, expect, it } from 'vitest';
import { chooseAddress, globToRegExp } from '../../src/inventory/discover.js';
import { parseDomifaddr, parseVirshList, virshError } from '../../src/inventory/virsh.js';

describe('virsh output', () => {
  it('parses list --all with every state', () => {
    const text = ' 1    web-1      running\n 2    paused-1   paused\n -    off-1      shut off\n 3    x          in shutdown\n';
    expect(parseVirshList(text)).toEqual([
      { name: 'web-1', state: 'running', id: 1 },
      { name: 'paused-1', state: 'paused', id: 2 },
      { name: 'off-1', state: 'shutoff' },
      { name: 'x', state: 'shutdown', id: 3 },
    ]);
  });
  it('parses domifaddr --full with several addresses', () => {
    const text = ' vnet0  52:54:00:aa:bb:cc  ipv4  192.168.122.5/24\n vnet0  52:54:00:aa:bb:cc  ipv6  fe80::1/64\n lo  00:00:00:00:00:00  ipv4  127.0.0.1/8\n';
    expect(parseDomifaddr(text)).toHaveLength(3);
    expect(parseDomifaddr(text)[0]).toEqual({ interface: 'vnet0', mac: '52:54:00:aa:bb:cc', family: 'ipv4', address: '192.168.122.5', prefix: 24 });
  });
  it.each([
    ["error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/x': No such file or directory\n", 'connect'],
    ["error: failed to get domain 'nope'\n", 'no-domain'],
    ['error: Requested operation is not valid: domain is not running\n', 'not-running'],
  ])('classifies %j', (stderr, kind) => expect(virshError('test:///x', stderr, 'nope').kind).toBe(kind));
});

describe('address choice', () => {
  const a = (address: string, family: 'ipv4' | 'ipv6' = 'ipv4') => ({ interface: 'eth0', family, address, prefix: 24 });
  it.each([
    ['IPv4 preferred', [a('fd00::5', 'ipv6'), a('10.0.0.5')], undefined, '10.0.0.5'],
    ['IPv6 when asked', [a('10.0.0.5'), a('fd00::5', 'ipv6')], 'ipv6', 'fd00::5'],
    ['link-local dropped', [a('169.254.1.1'), a('fe80::1', 'ipv6')], undefined, undefined],
    ['falls back to the other family', [a('fd00::5', 'ipv6')], 'ipv4', 'fd00::5'],
  ] as const)('%s', (_why, addrs, family, expected) => expect(chooseAddress(addrs, family)).toBe(expected));
});

describe('globs', () => {
  it.each([
    ['web-*', 'web-1', true],
    ['web-*', 'db-1', false],
    ['web-?', 'web-12', false],
    ['web-[12]', 'web-2', true],
    ['a.b', 'axb', false],
  ] as const)('%s ~ %s: %s', (glob, name, hit) => expect(globToRegExp(glob).test(name)).toBe(hit));
});

describe('address choice on a VM with several NICs', () => {
  const addrs = [
    { interface: 'vnet0', mac: '52:54:00:00:00:01', family: 'ipv4' as const, address: '10.0.0.5', prefix: 24 },
    { interface: 'vnet1', mac: '52:54:00:00:00:02', family: 'ipv4' as const, address: '10.1.0.5', prefix: 24 },
  ];
  it.each([
    ['the first NIC by default', {}, '10.0.0.5'],
    ['by MAC (any case)', { mac: '52:54:00:00:00:02'.toUpperCase() }, '10.1.0.5'],
    ['by interface name', { interface: 'vnet1' }, '10.1.0.5'],
    ['nothing when the NIC has no address', { mac: '52:54:00:00:00:09' }, undefined],
  ])('%s', (_why, nic, expected) => expect(chooseAddress(addrs, 'ipv4', nic)).toBe(expected));
});
