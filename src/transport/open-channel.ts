/**
 * Opening a channel on a VM's connection (ssh-pool.ts): a slot first (max_sessions), then the connection, then
 * sshd's answer, each bounded by the caller's deadline, with one redial when the connection turns out dead and a
 * short retry when sshd still counts a session that was just closed.
 */
import type { Client as SshClient, ClientChannel } from 'ssh2';
import type { SshPool } from './ssh-pool.js';
import type { Release } from './semaphore.js';
import { sleep, type OpenedChannel, type OpenTracker, type VmConnection } from './vm-connection.js';
import { TransportError } from './types.js';

type OpenCallback = (err: (Error & { reason?: number | string }) | undefined, channel: ClientChannel) => void;

/**
 * sshd's answer to a channel open, or `aborted` when the signal aborts first; a channel that is opened after that
 * is closed at once. A throw from `open` counts as its error.
 */
export function channelAnswer(
  signal: AbortSignal,
  open: (cb: OpenCallback) => void,
): Promise<{ channel: ClientChannel } | { error: Error & { reason?: number | string } } | { aborted: true }> {
  return new Promise((resolve) => {
    let answered = false;
    const onAbort = (): void => {
      if (answered) return;
      answered = true;
      resolve({ aborted: true });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      open((err, channel) => {
        if (answered) {
          // The answer came after we gave up: close what was opened.
          if (!err) {
            channel.on('error', () => {});
            channel.destroy();
          }
          return;
        }
        answered = true;
        signal.removeEventListener('abort', onAbort);
        resolve(err ? { error: err } : { channel });
      });
    } catch (err) {
      answered = true;
      signal.removeEventListener('abort', onAbort);
      resolve({ error: err as Error });
    }
  });
}

/** Pauses before re-opening a session channel sshd refused (see openChannel). */
const SESSION_RETRY_DELAYS_MS = [0, 10, 20, 40, 80];

/**
 * Open a channel with a slot held; retried briefly when sshd is still counting a just-closed session.
 * A deadline that passes before the channel is open (waiting for a slot, the connection or sshd's answer) is
 * "guest not reached" with the phase, never the service's failure. An established connection whose sshd does not
 * answer a channel open before the deadline (frozen sshd, cut link) is dropped at once and redialled on next use.
 */
export async function openChannel(
  pool: SshPool,
  conn: VmConnection,
  signal: AbortSignal,
  what: string,
  open: (client: SshClient, cb: OpenCallback) => void,
  retrySessionRace: boolean,
  tracker: OpenTracker = { step: 'slot' },
  tunnelTo = '',
): Promise<OpenedChannel> {
  tracker.step = 'slot';
  let release: Release;
  try {
    release = await conn.slots.acquire(signal);
  } catch (err) {
    throw signal.aborted ? conn.notReached('slot') : err;
  }
  let handedOff = false; // once a channel holds the slot, its close frees it
  let redialled = false;
  try {
    for (let attempt = 0; ; attempt++) {
      tracker.step = 'dial';
      const live = await conn.live(signal);
      tracker.step = 'open';
      const result = await channelAnswer(signal, (cb) => open(live.client, cb));
      if ('aborted' in result) {
        const notReached = conn.notReached('open', tunnelTo);
        if (!live.lost) {
          live.lost = new TransportError(
            `VM ${conn.target.vm}: sshd at ${conn.where} did not answer opening ${what} in time; the connection was dropped and will be redialled on next use`,
            'timeout',
          );
          pool.log(live.lost.message);
          live.client.destroy();
        }
        throw notReached;
      }
      if ('channel' in result) {
        handedOff = true;
        return { live, channel: result.channel, release };
      }
      const err = result.error;
      if (live.lost || err.reason === undefined) {
        // The connection died under us (e.g. the guest's sshd restarted since the last round):
        // one redial, then give up with the reason.
        live.lost ??= new TransportError(
          `VM ${conn.target.vm}: the SSH connection to ${conn.where} failed while opening ${what} (${err.message}); it will be redialled on next use`,
          'closed',
          { cause: err },
        );
        if (!redialled) {
          redialled = true;
          pool.log(`VM ${conn.target.vm}: the SSH connection to ${conn.where} was gone when used; redialling`);
          continue;
        }
        throw live.lost;
      }
      // sshd frees a session only when it garbage-collects the closed channel, after it has
      // handled every packet that arrived with our CLOSE: an open sent right behind the close
      // that freed our slot can still meet MaxSessions full, and sshd answers "open failed"
      // (reason 2). By the time that answer reaches us the session is free: try again.
      if (retrySessionRace && attempt < SESSION_RETRY_DELAYS_MS.length) {
        pool.counters.sessionRetries++;
        try {
          await sleep(SESSION_RETRY_DELAYS_MS[attempt]!, signal);
        } catch (e) {
          throw signal.aborted ? conn.notReached('open', tunnelTo) : e;
        }
        continue;
      }
      return { refused: err };
    }
  } finally {
    if (!handedOff) release();
  }
}
