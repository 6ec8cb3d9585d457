/** What a failed dial attempt means for the operator (one sentence naming the VM and what to do), and whether to retry. */
import { TransportError } from './types.js';

/** A failed attempt and whether trying again may help. */
export class AttemptFailure {
  constructor(
    readonly error: TransportError,
    readonly retryable: boolean,
  ) {}
}

/** How far the attempt got, as its socket saw it. */
export interface AttemptState {
  tcpConnected: boolean;
  /** The host key was refused (host-key-policy.ts): that is the failure, whatever ssh2 reports after it. */
  hostKeyError?: TransportError;
}

/** What the messages name: the VM (`say`), its sshd, the other end (the guest or a jump host), what was offered. */
export interface DialWords {
  say: (text: string) => string;
  /** `host:port` */
  where: string;
  /** `the VM` or `the jump host` */
  theVm: string;
  /** `in the guest` or `on the jump host` */
  inGuest: string;
  connectTimeoutMs: number;
  user: string;
  /** The ssh-agent socket offered, if any. */
  agent?: string;
  /** What was offered to log in (identity.ts `credentials`). */
  credential: string;
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** One failed attempt's error as a TransportError of the right kind; only a handshake sshd dropped is retryable. */
export function classifyDialError(err: unknown, state: AttemptState, w: DialWords): AttemptFailure {
  const { say, where, theVm, inGuest } = w;
  if (state.hostKeyError) return new AttemptFailure(state.hostKeyError, false);
  // From the jump hosts (ctx.via): already says which one failed and how.
  if (err instanceof TransportError) return new AttemptFailure(err, false);
  const e = err as Error & { code?: string; level?: string };
  const code = e.code ?? '';
  if (e.level === 'client-timeout') {
    return state.tcpConnected
      ? new AttemptFailure(
          new TransportError(
            say(`sshd at ${where} accepted the connection but did not finish the SSH handshake within ${w.connectTimeoutMs} ms; check that sshd ${inGuest} is healthy, or raise ssh.connect_timeout`),
            'timeout',
            { cause: err },
          ),
          false,
        )
      : new AttemptFailure(
          new TransportError(
            say(`could not open a TCP connection to ${where} within ${w.connectTimeoutMs} ms; check that ${theVm} is running and its network is up`),
            'unreachable',
            { cause: err },
          ),
          false,
        );
  }
  if (e.level === 'agent') {
    return new AttemptFailure(
      new TransportError(say(`cannot use ssh-agent at ${w.agent} to log in to ${where} (${e.message}); start ssh-agent and ssh-add a key, or set ssh.identity_file`), 'config', {
        cause: err,
      }),
      false,
    );
  }
  if (e.level === 'client-authentication') {
    return new AttemptFailure(
      new TransportError(say(`sshd at ${where} refused ${w.credential} for user ${w.user}; add its public key to ~${w.user}/.ssh/authorized_keys ${inGuest}`), 'auth', {
        cause: err,
      }),
      false,
    );
  }
  if (code === 'ECONNREFUSED') {
    return new AttemptFailure(
      new TransportError(say(`nothing accepts SSH connections at ${where} (connection refused); check that sshd runs ${inGuest} and the port is right`), 'refused', {
        cause: err,
      }),
      false,
    );
  }
  if (UNREACHABLE_CODES.has(code)) {
    return new AttemptFailure(new TransportError(say(`cannot reach ${where} (${code}); check that ${theVm} is running and its network is up`), 'unreachable', { cause: err }), false);
  }
  if (RESET_CODES.has(code) || /Connection lost before handshake|closed before ready/.test(e.message)) {
    return new AttemptFailure(
      new TransportError(
        say(`sshd at ${where} closed the connection during the SSH handshake (too many connections at once? see MaxStartups in sshd_config); try again`),
        'closed',
        { cause: err },
      ),
      true,
    );
  }
  return new AttemptFailure(new TransportError(say(`the SSH handshake with ${where} failed (${e.message}); check sshd's log ${inGuest}`), 'closed', { cause: err }), false);
}
