/**
 * One command on one exec channel: output capped, exit status collected, and on abort the
 * remote command really stopped.
 *
 * How the remote command is stopped (measured against OpenSSH 9.2, see test/transport):
 * - Closing the channel alone does not stop it: for a session without a pty, sshd closes its
 *   end of the pipes and waits; `sleep 300` keeps running (and sshd holds the channel open).
 * - The `signal` channel request (RFC 4254 §6.9, honoured by sshd ≥ 7.9 with killpg()) is
 *   refused when privilege separation is off, which sshd does for every root login:
 *   "session_signal_req: session signalling requires privilege separation". It also refuses
 *   it for forced commands. So it cannot be relied on.
 * - A pty would make sshd hang up the command on close, but merges stderr into stdout,
 *   rewrites newlines and writes a utmp/wtmp login record for every probe.
 * - What works: a lifeline. The command runs under a small POSIX-shell prologue that starts a
 *   watchdog reading the channel's stdin (our end never sends EOF while the command runs).
 *   When we close the channel, or the connection dies, sshd closes the stdin pipe, the
 *   watchdog's `read` returns and it runs `kill -KILL 0`: sshd made the session's shell a
 *   process-group leader (setsid), so that kills the shell and everything it started that
 *   stayed in its group. On a normal finish the EXIT trap ends the watchdog. The user's command
 *   itself reads /dev/null, as with `ssh -n`.
 * Caveats: needs a POSIX login shell (sh, bash, dash, zsh, ksh; not csh or fish); processes
 * the command moved to their own session/group (daemons, setsid) are left alone, as they should.
 */
import type { ClientChannel } from 'ssh2';
import type { ExecResult } from './types.js';

/**
 * The command with the lifeline prologue. The command text stays as the user wrote it and is
 * read by the login shell, so its syntax is the shell's own; `$?` and `exit` behave as usual.
 */
export function withLifeline(command: string): string {
  return (
    "exec 3<&0 </dev/null; (read _ <&3; kill -KILL 0) >/dev/null 2>&1 & __clonebox_w=$!; exec 3<&-; trap 'kill $__clonebox_w 2>/dev/null' EXIT\n" +
    command
  );
}

/** Keeps the first `limit` bytes of a stream, counts and drops the rest. */
export class OutputCap {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  /** Bytes seen, kept or not. */
  total = 0;

  constructor(readonly limit: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.limit - this.#kept;
    if (room <= 0) return;
    // Copy: a view would pin ssh2's whole packet buffer.
    const part = Buffer.from(chunk.subarray(0, room));
    this.#chunks.push(part);
    this.#kept += part.length;
  }

  get truncated(): boolean {
    return this.total > this.#kept;
  }

  text(): string {
    let buf = Buffer.concat(this.#chunks, this.#kept);
    if (this.truncated) buf = buf.subarray(0, completeUtf8Length(buf));
    return buf.toString('utf8');
  }
}

/** Length of `buf` without a UTF-8 sequence cut short at its end. */
function completeUtf8Length(buf: Buffer): number {
  // Walk back over at most 3 continuation bytes to the lead byte of the last character.
  for (let i = buf.length - 1, seen = 0; i >= 0 && seen < 4; i--, seen++) {
    const b = buf[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return buf.length - i >= need ? buf.length : i;
  }
  return buf.length;
}

export interface CollectOptions {
  signal: AbortSignal;
  maxOutputBytes: number;
  /** Called once when the channel is gone (its slot may be reused). */
  onChannelGone: () => void;
  /** Why the channel closed without an exit status, when the connection died under it. */
  connectionLost: () => Error | undefined;
  /** How long to wait for the channel to close after an abort before freeing its slot anyway. */
  closeGraceMs?: number;
}

/** Collect one opened exec channel into an ExecResult; on abort stop the command and reject with the signal's reason. */
export function collectExec(channel: ClientChannel, options: CollectOptions): Promise<ExecResult> {
  const { signal, maxOutputBytes, onChannelGone, connectionLost } = options;
  const stdout = new OutputCap(maxOutputBytes);
  const stderr = new OutputCap(maxOutputBytes);
  let exit: { code: number | null; signal?: string } | undefined;
  let graceTimer: NodeJS.Timeout | undefined;

  return new Promise<ExecResult>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      // EOF then CLOSE: sshd closes the command's stdin pipe and the lifeline kills the group.
      channel.destroy();
      // If sshd never answers the close (a wedged connection), do not hold the slot forever.
      graceTimer = setTimeout(onChannelGone, options.closeGraceMs ?? 10_000);
      graceTimer.unref();
      reject(signal.reason);
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });

    channel.on('data', (chunk: Buffer) => stdout.push(chunk));
    channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    channel.on('error', () => {}); // Surfaces as 'close' without an exit status.
    channel.on('exit', (code: number | null, signalName?: string) => {
      exit = code === null ? { code: null, ...(signalName ? { signal: signalName } : {}) } : { code };
    });
    channel.on('close', (code?: number | null, signalName?: string) => {
      // ssh2 repeats the exit status on 'close': the 'exit' event itself is missed when it arrived in the
      // same read as the open confirmation, before this listener was attached (a busy event loop).
      if (!exit && code !== undefined) exit = code === null ? { code: null, ...(signalName ? { signal: signalName } : {}) } : { code };
      clearTimeout(graceTimer);
      signal.removeEventListener('abort', onAbort);
      onChannelGone();
      if (settled) return;
      settled = true;
      const lost = exit ? undefined : connectionLost();
      if (lost) {
        reject(lost);
        return;
      }
      resolve({
        exitCode: exit?.code ?? null,
        ...(exit?.signal ? { signal: exit.signal } : {}),
        stdout: stdout.text(),
        stderr: stderr.text(),
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      });
    });
  });
}
