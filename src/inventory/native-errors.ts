/** libvirt's errors from the native binding as one sentence a user can act on, with a kind to branch on. */
import { printable } from '../util/printable.js';
import type { NativeFailure } from './native-binding.js';
import { LibvirtError, type AddressSource } from './types.js';

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

/** The call that failed, for the message. */
export type Operation =
  | { op: 'open'; uri: string }
  | { op: 'list'; uri: string }
  | { op: 'addresses'; uri: string; domain: string; source: AddressSource }
  | { op: 'agent'; uri: string; domain: string };

/** Whatever the binding rejected with, as a NativeFailure. */
export function asFailure(err: unknown): NativeFailure {
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
