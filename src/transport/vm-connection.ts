/**
 * The connection of one VM, across reconnects: the live client, the dial in progress (shared by every caller and
 * abandoned when none waits any more), the backoff after a failed dial, and the channel slots. The pool
 * (ssh-pool.ts) opens channels and runs commands on it.
 */
import type { Client as SshClient, ClientChannel } from 'ssh2';
import { connect, dialPhaseText, hostPort, type DialProgress, type SshTarget } from './connect.js';
import { Semaphore, type Release } from './semaphore.js';
import type { ResidentSession } from './resident.js';
import type { SshPool } from './ssh-pool.js';
import { phaseText, TransportError, type ExecOptions, type ExecResult, type TransportPhase } from './types.js';

export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 30_000;

/** A command waiting for the next batch of its VM. */
export interface QueuedExec {
  command: string;
  options: ExecOptions;
  resolve: (r: ExecResult) => void;
  reject: (e: unknown) => void;
}

/** Resolve/reject with `promise`, or reject with the signal's reason when it aborts first. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // Nobody waits for `promise` now: its failure must not become an unhandled rejection.
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  raceAbort(new Promise<void>((r) => setTimeout(r, ms).unref()), signal);

/** What makes two targets the same connection. */
export function targetKey(t: SshTarget): string {
  return JSON.stringify([
    t.host,
    t.port,
    t.user,
    t.identityFile,
    t.identityFiles,
    t.useAgent,
    t.agentSocket,
    t.knownHostsFile,
    t.hostKeyPolicy,
    t.maxSessions,
    t.residentSession,
    t.keepaliveMs,
    t.jump,
  ]);
}

/** A live client and what became of it. */
export interface Live {
  client: SshClient;
  /** Set when the connection went away, with the error channels left hanging should carry. */
  lost?: TransportError;
}

/**
 * The server answered on this connection: restart ssh2's keepalive countdown, as OpenSSH's ServerAliveInterval does on
 * any data. ssh2 restarts it only on replies to channel requests, so a resident session (which makes none) drew one
 * probe per connection every keepalive interval however busy it was: at N=200 under a 30 s watch, 130 more packets
 * each way per round, about a third of the round's own. ssh2 1.x has no public call for it; without `_resetKA` the
 * probes just go on as before.
 */
export function heardFrom(client: SshClient): void {
  (client as unknown as { _resetKA?: () => void })._resetKA?.();
}

/** What a channel open is waiting for, kept up to date so a deadline can say how far it got. */
export interface OpenTracker {
  step: 'slot' | 'dial' | 'open';
}

/**
 * A dial in progress, shared by every caller that needs the connection; abandoned when none waits any more, unless
 * the guest's sshd is already answering it (see `keepsGoing`).
 */
export interface Dialing {
  promise: Promise<Live>;
  abort: AbortController;
  progress: DialProgress;
  waiters: number;
}

/** A channel with its slot held, or sshd's refusal. */
export type OpenedChannel = { live: Live; channel: ClientChannel; release: Release } | { refused: Error & { reason?: number | string } };

/** The connection of one VM, across reconnects. */
export class VmConnection {
  readonly key: string;
  readonly slots: Semaphore;
  #live: Live | undefined;
  #dialing: Dialing | undefined;
  #backoffMs = 0;
  #backoffUntil = 0;
  #lastError: TransportError | undefined;
  #closed = false;
  #everOpened = false;
  /** Commands waiting for this tick's batch. */
  pending: QueuedExec[] = [];
  flushScheduled = false;
  /** The resident command session (resident.ts), and whether the guest's shell proved unable to run it. */
  resident: ResidentSession | undefined;
  residentUnsupported = false;

  constructor(
    readonly target: SshTarget,
    private readonly pool: SshPool,
  ) {
    this.key = targetKey(target);
    this.slots = new Semaphore(target.maxSessions);
  }

  get where(): string {
    return hostPort(this.target);
  }

  /** `VM web-1`, or `jump host hv1`. */
  get name(): string {
    return `${this.target.label ?? 'VM'} ${this.target.vm}`;
  }

  get isOpen(): boolean {
    return this.#live !== undefined;
  }

  /** Where a dial in progress is, or 'tcp' when none is (a new one would start there). */
  get dialPhase(): DialProgress['phase'] {
    return this.#dialing?.progress.phase ?? 'tcp';
  }

  /** What a dial in progress is missing, in words (`no SSH banner from …`, or what its jump host is missing). */
  dialText(): string {
    return dialPhaseText(this.#dialing?.progress ?? { phase: 'tcp' }, this.where);
  }

  /** The TransportError for a deadline that passed in `phase` (or in the dial's phase for 'dial'). */
  notReached(step: OpenTracker['step'] | TransportPhase, tunnelTo = ''): TransportError {
    const phase: TransportPhase = step === 'dial' ? this.dialPhase : step === 'open' ? (tunnelTo ? 'tunnel' : 'channel') : step;
    return TransportError.notReached(this.target.vm, phase, step === 'dial' ? this.dialText() : phaseText(phase, this.where, tunnelTo));
  }

  /**
   * The ready connection: the current one, the one being dialled, or a new one. When `signal` aborts first, this
   * rejects with "guest not reached" and the phase; a dial nobody waits for any more is abandoned and destroyed,
   * unless the guest's sshd is already answering it (`keepsGoing`; connect_timeout caps a dial, it never holds up a
   * check).
   */
  live(signal: AbortSignal): Promise<Live> {
    if (this.#closed) return Promise.reject(new TransportError(`VM ${this.target.vm}: the SSH pool is closed`, 'closed'));
    if (this.#live?.lost) {
      // Known dead but its 'close' has not come yet: drop it now.
      this.#live.client.destroy();
      this.#live = undefined;
    }
    if (this.#live) return Promise.resolve(this.#live);
    if (!this.#dialing) {
      if (this.#lastError && Date.now() < this.#backoffUntil) {
        // Fail fast while backing off: a fresh error object, the last attempt's words.
        const last = this.#lastError;
        const again = new TransportError(last.message, last.kind, { cause: last.cause });
        if (last.phase) Object.assign(again, { phase: last.phase, phaseText: last.phaseText });
        return Promise.reject(again);
      }
      const abort = new AbortController();
      const progress: DialProgress = { phase: 'tcp' };
      const dialing: Dialing = { abort, progress, waiters: 0, promise: this.#dial(abort.signal, progress) };
      this.#dialing = dialing;
      void dialing.promise.then(
        () => this.#dialDone(dialing),
        () => this.#dialDone(dialing),
      );
    }
    return this.#wait(this.#dialing, signal);
  }

  #dialDone(dialing: Dialing): void {
    if (this.#dialing === dialing) this.#dialing = undefined;
  }

  /**
   * Whether a dial nobody waits for any more goes on: only once the guest's sshd answered it (key exchange or
   * authentication under way), and never past connect_timeout. A guest that is slow only because it (or the host) is
   * busy then gets its connection for the next round, instead of a new dial given up at every check's deadline and
   * never finished; a guest that does not answer at all (no TCP connection, no banner) costs nothing after the
   * deadline. The pool's close abandons it either way.
   */
  static keepsGoing(dialing: Dialing): boolean {
    return dialing.progress.phase === 'kex' || dialing.progress.phase === 'auth';
  }

  #abandonIfUnwanted(dialing: Dialing): void {
    if (dialing.waiters === 0 && !VmConnection.keepsGoing(dialing)) dialing.abort.abort();
  }

  #wait(dialing: Dialing, signal: AbortSignal): Promise<Live> {
    if (signal.aborted) {
      this.#abandonIfUnwanted(dialing);
      return Promise.reject(this.notReached('dial'));
    }
    dialing.waiters++;
    return new Promise<Live>((resolve, reject) => {
      let done = false;
      const onAbort = (): void => {
        if (done) return;
        done = true;
        reject(this.notReached('dial'));
        // Nobody waits for this dial any more: abandon it now rather than let it run to connect_timeout (unless the
        // guest's sshd is answering it: keepsGoing).
        dialing.waiters--;
        this.#abandonIfUnwanted(dialing);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      dialing.promise.then(
        (live) => {
          if (done) return;
          done = true;
          dialing.waiters--;
          signal.removeEventListener('abort', onAbort);
          resolve(live);
        },
        (err: unknown) => {
          if (done) return;
          done = true;
          dialing.waiters--;
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  async #dial(signal: AbortSignal, progress: DialProgress): Promise<Live> {
    const { target } = this;
    const reconnect = this.#everOpened;
    this.pool.counters.attempts++;
    const started = Date.now();
    let client: SshClient;
    try {
      client = await connect(target, {
        log: this.pool.log,
        loadIdentity: (file) => this.pool.identity(file),
        signal,
        progress,
        ...(this.pool.keepaliveMs !== undefined ? { keepaliveMs: this.pool.keepaliveMs } : {}),
        // Behind jump hosts: a channel through them instead of a TCP connection of our own (jump.ts).
        ...(target.jump?.length ? { via: (s: AbortSignal, p: DialProgress) => this.pool.jumps.tunnel(target, s, p) } : {}),
      });
    } catch (err) {
      const error = err instanceof TransportError ? err : new TransportError(`${this.name}: ${String(err)}`, 'closed', { cause: err });
      this.#lastError = error;
      this.#backoffMs = Math.min(this.pool.maxBackoffMs, this.#backoffMs ? this.#backoffMs * 2 : BACKOFF_FIRST_MS);
      this.#backoffUntil = Date.now() + this.#backoffMs;
      this.pool.log(`${error.message} (next try in ${this.#backoffMs} ms or later)`);
      throw error;
    }
    if (this.#closed) {
      client.end();
      throw new TransportError(`${this.name}: the SSH pool is closed`, 'closed');
    }
    this.#lastError = undefined;
    this.#backoffMs = 0;
    this.#backoffUntil = 0;
    this.pool.counters.opened++;
    this.#everOpened = true;
    this.pool.log(`${this.name}: SSH connection to ${this.where}${target.jump?.length ? ` via ${target.jump.map((h) => h.name).join(', ')}` : ''} ready in ${Date.now() - started} ms${reconnect ? ' (reconnected)' : ''}`);
    const live: Live = { client };
    this.#live = live;
    client.on('error', (err: Error) => {
      live.lost ??= new TransportError(`${this.name}: the SSH connection to ${this.where} failed (${err.message}); it will be redialled on next use`, 'closed', {
        cause: err,
      });
    });
    client.on('close', () => {
      live.lost ??= new TransportError(`${this.name}: the SSH connection to ${this.where} closed; it will be redialled on next use`, 'closed');
      if (this.#live === live) this.#live = undefined;
      if (!this.#closed) this.pool.log(live.lost.message);
    });
    return live;
  }

  /** End the connection; waits (bounded) for its socket to close. A dial in progress is abandoned, never awaited. */
  async close(): Promise<void> {
    this.#closed = true;
    this.resident?.close();
    const pending = this.#dialing;
    if (pending) {
      pending.abort.abort();
      await pending.promise.catch(() => undefined);
    }
    const live = this.#live;
    this.#live = undefined;
    if (!live) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        live.client.destroy();
        resolve();
      }, 1000);
      live.client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      live.client.end();
    });
  }
}

