/**
 * Address rules shared by the libvirt backends, discovery and the config.
 *
 * An address comes from outside the config: a DHCP lease, the ARP table, or the QEMU guest agent,
 * that is, from software inside the guest. It ends up in SSH targets, in `{{address}}` of checks and
 * actions, in reports. So it is used only when it is an IP literal of the family it claims to be:
 * anything else (`$(touch x)`, `10.0.0.1 -oProxyCommand=…`, a zone id `fe80::1%eth0`) is ignored.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { printable } from '../util/printable.js';

// What a guest reports about itself that the host cannot use: loopback and link-local.
const GUEST_LOCAL = new BlockList();
GUEST_LOCAL.addSubnet('127.0.0.0', 8, 'ipv4');
GUEST_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
GUEST_LOCAL.addAddress('::1', 'ipv6');
GUEST_LOCAL.addSubnet('fe80::', 10, 'ipv6');

/** True when `address` is an IP literal of `family`: dotted IPv4, or IPv6 without a zone id. */
export function isIpLiteral(address: string, family: 'ipv4' | 'ipv6'): boolean {
  if (typeof address !== 'string' || address.length > 45 || address.includes('%')) return false;
  return family === 'ipv4' ? isIPv4(address) : isIPv6(address);
}

/** True for loopback (127/8, ::1) and link-local (169.254/16, fe80::/10) addresses. */
export function isGuestLocalAddress(address: string, family: 'ipv4' | 'ipv6'): boolean {
  if (!isIpLiteral(address, family)) return false;
  return GUEST_LOCAL.check(address, family);
}

/** Why an address reported by libvirt is not used, in words that show the value escaped; undefined when it is fine. */
export function addressProblem(address: unknown, family: 'ipv4' | 'ipv6'): string | undefined {
  if (typeof address === 'string' && isIpLiteral(address, family)) return undefined;
  const shown = typeof address === 'string' ? JSON.stringify(printable(address.length > 80 ? `${address.slice(0, 80)}…` : address)) : String(address);
  return `ignored ${shown}: not an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} address`;
}

// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens, 1–63 characters each.
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

export function isHostname(name: string): boolean {
  return name.length <= 253 && HOSTNAME.test(name);
}

/** `vms.NAME.address` in the config: an IP literal or a host name; why not, else undefined. */
export function configAddressProblem(address: string): string | undefined {
  if (isIpLiteral(address, 'ipv4') || isIpLiteral(address, 'ipv6') || isHostname(address)) return undefined;
  if (/^\[.*\]$/.test(address) && isIpLiteral(address.slice(1, -1), 'ipv6')) return `write the IPv6 address without brackets: ${address.slice(1, -1)}`;
  if (address.includes('%')) return 'must be an IP address without a zone id (%…) or a host name';
  return 'must be an IPv4 or IPv6 address or a host name (letters, digits, hyphens and dots)';
}
