import type { Duplex } from 'node:stream';

/** The result of one command run in the guest. Output is capped; `*_truncated` says when it was. */
export interface ExecResult {
  /** null when the command was killed by a signal or its exit status never arrived. */
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export interface ExecOptions {
  /** Aborting closes the channel and stops the remote command. */
  signal: AbortSignal;
  /** Bytes kept of stdout and of stderr each; the rest is read and dropped. Default 4096. */
  maxOutputBytes?: number;
}

/**
 * The transport could not do its job (connection refused, auth refused, host key mismatch,
 * handshake timeout, channel refused). Probes that meet it report UNKNOWN, never UNHEALTHY:
 * it says nothing about whether the service works.
 */
/**
 * How far a connection or channel got before a deadline passed: waiting for a free channel slot, reaching the jump
 * host(s) and a connection through them, TCP connect, sshd's banner, key exchange, authentication, then opening the command channel or tunnel.
 */
export type TransportPhase = 'slot' | 'jump' | 'tcp' | 'banner' | 'kex' | 'auth' | 'channel' | 'tunnel';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  /** Set when a deadline passed before the transport was established; `phaseText` says what was missing. */
  phase?: TransportPhase;
  phaseText?: string;
  constructor(
    message: string,
    readonly kind:
      | 'refused'
      | 'auth'
      | 'host-key-changed'
      | 'host-key-unknown'
      | 'timeout'
      | 'unreachable'
      | 'closed'
      | 'channel'
      | 'config' = 'closed',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** A deadline that passed before the guest was reached: `VM x: guest not reached: no SSH banner from …`. */
  static notReached(vm: string, phase: TransportPhase, phaseText: string): TransportError {
    const err = new TransportError(`VM ${vm}: guest not reached: ${phaseText}`, 'timeout');
    err.phase = phase;
    err.phaseText = phaseText;
    return err;
  }
}

/**
 * Words for what was missing when a deadline passed in `phase` (`where` is host:port of sshd; `extra` is the
 * tunnel's destination, or for 'jump' what the jump host was missing).
 */
export function phaseText(phase: TransportPhase, where: string, extra = ''): string {
  switch (phase) {
    case 'jump':
      return extra || `no connection to ${where} through the jump host`;
    case 'slot':
      return `every SSH channel to ${where} stayed busy (ssh.max_sessions)`;
    case 'tcp':
      return `no TCP connection to ${where}`;
    case 'banner':
      return `no SSH banner from ${where}`;
    case 'kex':
      return `SSH key exchange with ${where} not finished`;
    case 'auth':
      return `SSH authentication at ${where} not finished`;
    case 'channel':
      return `sshd at ${where} did not open a command channel`;
    case 'tunnel':
      return `sshd at ${where} did not open the tunnel${extra ? ` to ${extra}` : ''}`;
  }
}

/** A guest reachable over SSH: commands as channels, TCP as forwardOut tunnels, on one connection. */
export interface GuestSession {
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  /**
   * A TCP stream to host:port as seen from inside the guest. `localhost` is sent as 127.0.0.1, then ::1 when
   * nothing listens there, so the guest's resolver is never asked; `remote` is the address that answered.
   */
  forward(host: string, port: number, signal: AbortSignal): Promise<{ stream: Duplex; remote: string }>;
}
