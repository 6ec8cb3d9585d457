/** Address rules shared by the libvirt backends. */
import { BlockList } from 'node:net';

// What a guest reports about itself that the host cannot use: loopback and link-local.
const GUEST_LOCAL = new BlockList();
GUEST_LOCAL.addSubnet('127.0.0.0', 8, 'ipv4');
GUEST_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
GUEST_LOCAL.addAddress('::1', 'ipv6');
GUEST_LOCAL.addSubnet('fe80::', 10, 'ipv6');

/** True for loopback (127/8, ::1) and link-local (169.254/16, fe80::/10) addresses. */
export function isGuestLocalAddress(address: string, family: 'ipv4' | 'ipv6'): boolean {
  try {
    return GUEST_LOCAL.check(address.replace(/%.*$/, ''), family);
  } catch {
    return false; // not an address BlockList understands: keep it, let the probe fail visibly
  }
}
