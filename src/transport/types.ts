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
export class TransportError extends Error {
  override readonly name = 'TransportError';
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
}

/** A guest reachable over SSH: commands as channels, TCP as forwardOut tunnels, on one connection. */
export interface GuestSession {
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  /** A TCP stream to host:port as seen from inside the guest. */
  forward(host: string, port: number, signal: AbortSignal): Promise<Duplex>;
}
