/**
 * Commands on channels of their own, opened for the round (the fallback beside the resident session, resident.ts):
 * one command per channel, or several framed in one (batch.ts), each with its own deadline, output cap and result.
 */
import { openChannel } from './open-channel.js';
import { batchScript, BatchParser, type BatchItem } from './batch.js';
import { collectExec, withLifeline } from './exec.js';
import type { SshPool } from './ssh-pool.js';
import { TransportError, type ExecOptions, type ExecResult } from './types.js';
import type { OpenedChannel, OpenTracker, QueuedExec, VmConnection } from './vm-connection.js';

/** One exec channel for a full script (already carrying its own lifeline). */
function openScript(pool: SshPool, conn: VmConnection, signal: AbortSignal, script: string, tracker?: OpenTracker): Promise<OpenedChannel> {
  pool.counters.commandChannels++;
  return openChannel(pool, conn, signal, 'a command channel', (client, cb) => client.exec(script, cb), true, tracker);
}

function refusedCommand(conn: VmConnection, refused: Error): TransportError {
  return new TransportError(
    `VM ${conn.target.vm}: sshd at ${conn.where} refused a command channel (${refused.message}); lower ssh.max_sessions to sshd's MaxSessions`,
    'channel',
    { cause: refused },
  );
}

export async function execOne(pool: SshPool, conn: VmConnection, command: string, options: ExecOptions): Promise<ExecResult> {
  const { signal } = options;
  const maxOutputBytes = options.maxOutputBytes ?? 4096;
  signal.throwIfAborted();
  const opened = await openScript(pool, conn, signal, withLifeline(command));
  if ('refused' in opened) throw refusedCommand(conn, opened.refused);
  const { live, channel, release } = opened;
  return collectExec(channel, {
    signal,
    maxOutputBytes,
    onChannelGone: release,
    connectionLost: () =>
      live.lost
        ? new TransportError(`VM ${conn.target.vm}: the SSH connection to ${conn.where} was lost while a command ran; it will be redialled on next use`, 'closed', {
            cause: live.lost,
          })
        : undefined,
  });
}

/** Several commands in one channel (batch.ts); each settles on its own result or its own deadline. */
export async function execBatch(pool: SshPool, conn: VmConnection, queued: QueuedExec[]): Promise<void> {
  const whole = new AbortController();
  const settled = queued.map(() => false);
  let open = queued.length;
  let bailed = false;
  /** A command's deadline passed before its result came. */
  let abandoned = false;
  let lingering: NodeJS.Timeout | undefined;
  const cleanups: (() => void)[] = [];
  const settle = (i: number, how: () => void): void => {
    if (settled[i]) return;
    settled[i] = true;
    how();
    // The last command settled. After a normal finish the script is exiting and sshd closes the
    // channel itself (closing it from here would cost two more packets per VM and round); only a
    // command that was given up on needs the channel closed (the lifeline then kills it).
    // A command that left a process holding the script's output open would keep the channel (and
    // its slot) forever: closed after a short grace.
    if (--open === 0 && !whole.signal.aborted) {
      if (abandoned) whole.abort(new Error('batch settled'));
      else lingering = setTimeout(() => whole.abort(new Error('batch lingered')), 2000);
    }
  };
  /**
   * The command running in the batch when it bailed, still within its own deadline: it finishes there (it is
   * never run twice); the channel is closed as soon as its result is in, before the script goes on.
   */
  let kept = -1;
  /** A command's deadline passed while others wait behind it: they go on channels of their own. */
  const bail = (): void => {
    if (bailed) return;
    bailed = true;
    const running = parser?.running ?? -1;
    if (running >= 0 && running < queued.length && !settled[running]) kept = running;
    else if (!whole.signal.aborted) whole.abort(new Error('batch abandoned'));
    queued.forEach((q, i) => {
      if (settled[i] || i === kept) return;
      execOne(pool, conn, q.command, q.options).then(
        (r) => settle(i, () => q.resolve(r)),
        (e: unknown) => settle(i, () => q.reject(e)),
      );
    });
  };
  let parser: BatchParser | undefined;
  const tracker: OpenTracker = { step: 'slot' };
  queued.forEach((q, i) => {
    const onAbort = (): void => {
      if (!settled[i]) abandoned = true;
      const reason: unknown = q.options.signal.reason;
      if (parser === undefined && (reason as { name?: string } | undefined)?.name === 'TimeoutError') {
        // The channel was not open yet: the guest was not reached, which says nothing about the command.
        settle(i, () => q.reject(conn.notReached(tracker.step)));
        if (open > 0) bail();
        return;
      }
      // Its deadline passed while an earlier command of the batch still ran: this one never started, and that
      // says nothing about its service (UNKNOWN), unlike a command that ran out of time itself (UNHEALTHY).
      const neverStarted = parser !== undefined && parser.running < i && (reason as { name?: string } | undefined)?.name === 'TimeoutError';
      settle(i, () =>
        q.reject(
          neverStarted
            ? new TransportError(
                `VM ${conn.target.vm}: the command did not start within its timeout: it waited behind another check's command on the same channel, still running`,
                'channel',
              )
            : reason,
        ),
      );
      if (open > 0) bail();
      // The command that was left to finish in the batch ran out of time itself: stop the script.
      if (i === kept && !whole.signal.aborted) whole.abort(new Error('batch abandoned'));
    };
    q.options.signal.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => q.options.signal.removeEventListener('abort', onAbort));
  });
  const items: BatchItem[] = queued.map((q) => ({ command: q.command, maxOutputBytes: q.options.maxOutputBytes ?? 4096 }));
  const { script, nonce, stdin } = batchScript(items);
  const failRest = (err: unknown): void => queued.forEach((q, i) => settle(i, () => q.reject(err)));
  try {
    let opened: OpenedChannel;
    try {
      opened = await openScript(pool, conn, whole.signal, script, tracker);
    } catch (err) {
      if (!whole.signal.aborted) failRest(err);
      return;
    }
    if ('refused' in opened) {
      failRest(refusedCommand(conn, opened.refused));
      return;
    }
    const { live, channel, release } = opened;
    // The frames' nonce goes on stdin, where no command of the batch can read it (batch.ts).
    channel.write(stdin);
    pool.counters.batchedCommands += queued.length;
    const framed = new BatchParser(nonce, items, (i, result) => {
      if (!bailed) settle(i, () => queued[i]!.resolve(result));
      else if (i === kept) {
        settle(i, () => queued[i]!.resolve(result));
        if (!whole.signal.aborted) whole.abort(new Error('batch abandoned'));
      }
    });
    parser = framed;
    let grace: NodeJS.Timeout | undefined;
    const onWhole = (): void => {
      // EOF then CLOSE: sshd closes the script's stdin and the lifeline kills what still runs.
      channel.destroy();
      grace = setTimeout(release, 10_000);
      grace.unref();
    };
    if (whole.signal.aborted) onWhole();
    else whole.signal.addEventListener('abort', onWhole, { once: true });
    await new Promise<void>((resolve) => {
      channel.on('data', (chunk: Buffer) => framed.stdout(chunk));
      channel.stderr.on('data', (chunk: Buffer) => framed.stderr(chunk));
      channel.on('error', () => {});
      channel.on('close', () => resolve());
    });
    whole.signal.removeEventListener('abort', onWhole);
    clearTimeout(grace);
    clearTimeout(lingering);
    release();
    if (bailed) return;
    // The channel ended with commands still owed a result: the connection died, or the shell did.
    failRest(
      live.lost
        ? new TransportError(`VM ${conn.target.vm}: the SSH connection to ${conn.where} was lost while a command ran; it will be redialled on next use`, 'closed', {
            cause: live.lost,
          })
        : new TransportError(`VM ${conn.target.vm}: the command channel to ${conn.where} closed before this command's result arrived`, 'channel'),
    );
  } finally {
    for (const c of cleanups) c();
  }
}
