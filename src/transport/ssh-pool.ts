/**
 * One SSH connection per VM, shared by every probe of every round: commands are exec channels,
 * guest TCP is forwardOut tunnels, at most `maxSessions` channels open at once per connection.
 * A broken connection is redialled on next use, with a backoff so a dead VM is not hammered.
 */
import type { Duplex } from 'node:stream';
import type { Client as SshClient, ClientChannel } from 'ssh2';
import { hostPort, readIdentity, type SshTarget } from './connect.js';
import { BACKOFF_MAX_MS, sleep, targetKey, VmConnection, type OpenedChannel, type OpenTracker, type QueuedExec } from './vm-connection.js';
import { JumpHosts } from './jump.js';
import { batchScript, BatchParser, type BatchItem } from './batch.js';
import { collectExec, withLifeline } from './exec.js';
import { ResidentSession, type ResidentHost } from './resident.js';
import type { Release } from './semaphore.js';
import { TransportError, type ExecOptions, type ExecResult, type GuestSession } from './types.js';

export type { SshTarget } from './connect.js';

export interface SshPoolOptions {
  log?: (msg: string) => void;
  /**
   * Longest pause before redialling a VM whose last attempt failed (default 30 s). A CI gate
   * polling every few seconds sets it to its interval, so a VM whose sshd just came up is seen
   * on the next round rather than after a long backoff.
   */
  maxBackoffMs?: number;
  /**
   * Idle time before an SSH keepalive probe (default 15 s). `watch` sets it above its interval: its own rounds
   * keep the connections busy, and a probe on every connection between rounds is CPU for nothing.
   */
  keepaliveMs?: number;
  /**
   * Commands for one VM asked for in the same tick (a VM's guest probes of one round) share one
   * exec channel, each with its own deadline and result (see batch.ts). Default true.
   */
  batchCommands?: boolean;
  /**
   * Keep one long-lived command session per VM (resident.ts): a steady round opens no channel and starts no login
   * shell. Default true; a VM whose shell cannot run it, or whose ssh.max_sessions is 1, keeps a channel per round.
   */
  residentSession?: boolean;
}

export interface PoolStats {
  /** Successful handshakes since the pool was made ("0 new connections per steady round"). */
  connectionsOpened: number;
  /** Connections up right now. */
  open: number;
  /** Handshakes tried, including failed ones and retries. */
  connectAttempts: number;
  /** Command channels re-opened after sshd still counted a just-closed session (see #openChannel). */
  sessionRetries: number;
  /** Exec channels opened for commands (a batch counts once). */
  commandChannels: number;
  /** Commands that ran inside a shared (batched) channel. */
  batchedCommands: number;
  /** Resident command sessions opened (one per VM and connection; resident.ts). */
  residentSessions: number;
  /** Jobs (a VM's commands of one tick) and commands run on resident sessions. */
  residentJobs: number;
  residentCommands: number;
  /** Commands killed in the guest past their deadline, the session kept. */
  residentKills: number;
}

/** OpenSSH's reasons for refusing a channel (RFC 4254 §5.1). */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
const OPEN_CONNECT_FAILED = 2;
/** Pauses before re-opening a session channel sshd refused (see #openChannel). */
const SESSION_RETRY_DELAYS_MS = [0, 10, 20, 40, 80];

export class SshPool {
  readonly #connections = new Map<string, VmConnection>();
  readonly #identities = new Map<string, Promise<Buffer>>();
  #closed = false;
  readonly log: (msg: string) => void;
  /** @internal */
  readonly counters = {
    opened: 0,
    attempts: 0,
    sessionRetries: 0,
    commandChannels: 0,
    batchedCommands: 0,
    residentSessions: 0,
    residentJobs: 0,
    residentCommands: 0,
    residentKills: 0,
  };
  readonly #batch: boolean;
  readonly #resident: boolean;
  readonly #residentHost: ResidentHost = {
    open: (conn, signal, script, tracker) =>
      this.#openChannel(conn, signal, 'the command session', (client, cb) => client.exec(script, cb), true, tracker),
    fallback: (conn, queued) => this.#perRound(conn, queued),
    log: (msg) => this.log(msg),
    counters: this.counters,
  };
  /** @internal One connection per jump host, shared by the VMs behind it (jump.ts). */
  readonly jumps = new JumpHosts((target) => new VmConnection(target, this));

  /** @internal */
  readonly maxBackoffMs: number;
  /** @internal */
  readonly keepaliveMs: number | undefined;

  constructor(options: SshPoolOptions = {}) {
    this.log = options.log ?? (() => {});
    this.maxBackoffMs = options.maxBackoffMs ?? BACKOFF_MAX_MS;
    this.keepaliveMs = options.keepaliveMs;
    this.#batch = options.batchCommands ?? true;
    this.#resident = options.residentSession ?? true;
  }

  /** A session for one VM; sessions for the same VM share its one connection. Connects lazily. */
  session(target: SshTarget): GuestSession {
    const conn = this.#connection(target);
    return {
      exec: (command, options) => this.#exec(conn, command, options),
      forward: (host, port, signal) => this.#forward(conn, host, port, signal),
    };
  }

  stats(): PoolStats {
    let open = 0;
    for (const c of this.#connections.values()) if (c.isOpen) open++;
    const c = this.counters;
    return {
      connectionsOpened: c.opened,
      open,
      connectAttempts: c.attempts,
      sessionRetries: c.sessionRetries,
      commandChannels: c.commandChannels,
      batchedCommands: c.batchedCommands,
      residentSessions: c.residentSessions,
      residentJobs: c.residentJobs,
      residentCommands: c.residentCommands,
      residentKills: c.residentKills,
    };
  }

  /** End every connection. Every session, old or new, fails with a 'closed' TransportError afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#connections.values()];
    await Promise.all(all.map((c) => c.close()));
    await this.jumps.close();
  }

  /** @internal A private key, read and parsed once per file (failures are not cached). */
  identity(file: string): Promise<Buffer> {
    let key = this.#identities.get(file);
    if (!key) {
      key = readIdentity(file);
      this.#identities.set(file, key);
      key.catch(() => this.#identities.delete(file));
    }
    return key;
  }

  #connection(target: SshTarget): VmConnection {
    if (!Number.isInteger(target.maxSessions) || target.maxSessions < 1) {
      throw new TransportError(`VM ${target.vm}: ssh max_sessions must be a whole number ≥ 1, got ${target.maxSessions}`, 'config');
    }
    const existing = this.#connections.get(target.vm);
    if (existing && (existing.key === targetKey(target) || this.#closed)) return existing;
    if (existing) {
      // The VM moved (new address, other key…): drop the old connection once, use a new one.
      this.log(`VM ${target.vm}: SSH settings changed (${existing.where} → ${hostPort(target)}); reconnecting`);
      void existing.close();
    }
    const conn = new VmConnection(target, this);
    this.#connections.set(target.vm, conn);
    if (this.#closed) void conn.close();
    return conn;
  }

  /**
   * Open a channel with a slot held; retried briefly when sshd is still counting a just-closed session.
   * A deadline that passes before the channel is open (waiting for a slot, the connection or sshd's answer) is
   * "guest not reached" with the phase, never the service's failure. An established connection whose sshd does not
   * answer a channel open before the deadline (frozen sshd, cut link) is dropped at once and redialled on next use.
   */
  async #openChannel(
    conn: VmConnection,
    signal: AbortSignal,
    what: string,
    open: (client: SshClient, cb: (err: (Error & { reason?: number | string }) | undefined, channel: ClientChannel) => void) => void,
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
        const result = await new Promise<{ channel: ClientChannel } | { error: Error & { reason?: number | string } } | { aborted: true }>((resolve) => {
          let answered = false;
          const onAbort = (): void => {
            if (answered) return;
            answered = true;
            resolve({ aborted: true });
          };
          signal.addEventListener('abort', onAbort, { once: true });
          try {
            open(live.client, (err, channel) => {
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
        if ('aborted' in result) {
          const notReached = conn.notReached('open', tunnelTo);
          if (!live.lost) {
            live.lost = new TransportError(
              `VM ${conn.target.vm}: sshd at ${conn.where} did not answer opening ${what} in time; the connection was dropped and will be redialled on next use`,
              'timeout',
            );
            this.log(live.lost.message);
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
            this.log(`VM ${conn.target.vm}: the SSH connection to ${conn.where} was gone when used; redialling`);
            continue;
          }
          throw live.lost;
        }
        // sshd frees a session only when it garbage-collects the closed channel, after it has
        // handled every packet that arrived with our CLOSE: an open sent right behind the close
        // that freed our slot can still meet MaxSessions full, and sshd answers "open failed"
        // (reason 2). By the time that answer reaches us the session is free: try again.
        if (retrySessionRace && attempt < SESSION_RETRY_DELAYS_MS.length) {
          this.counters.sessionRetries++;
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

  #exec(conn: VmConnection, command: string, options: ExecOptions): Promise<ExecResult> {
    if (options.signal.aborted) return Promise.reject(options.signal.reason);
    if (!this.#batch && !this.#resident) return this.#execOne(conn, command, options);
    return new Promise<ExecResult>((resolve, reject) => {
      conn.pending.push({ command, options, resolve, reject });
      if (conn.flushScheduled) return;
      conn.flushScheduled = true;
      // After this tick: every probe of the VM's round has asked by then.
      setImmediate(() => {
        conn.flushScheduled = false;
        this.#flush(conn);
      });
    });
  }

  #flush(conn: VmConnection): void {
    const queued = conn.pending.splice(0);
    const live: QueuedExec[] = [];
    for (const q of queued) {
      if (q.options.signal.aborted) q.reject(q.options.signal.reason);
      else live.push(q);
    }
    if (!live.length) return;
    if (this.#resident && conn.target.residentSession !== false && conn.target.maxSessions >= 2 && !conn.residentUnsupported) {
      const session = conn.resident;
      if (!session || session.dead) {
        conn.resident = new ResidentSession(conn, this.#residentHost);
        conn.resident.start(live);
        return;
      }
      if (session.idle) {
        session.run(live);
        return;
      }
      // Busy with a job of an earlier tick: this one takes channels of its own rather than wait behind it.
    }
    this.#perRound(conn, live);
  }

  /** Commands on channels of their own: batched in one channel per max_sessions commands, a lone one alone. */
  #perRound(conn: VmConnection, live: QueuedExec[]): void {
    if (!this.#batch) {
      for (const q of live) this.#execOne(conn, q.command, q.options).then(q.resolve, q.reject);
      return;
    }
    // At most max_sessions commands per batch; a lone command (or a lone remainder) takes a channel of its own.
    const size = Math.max(1, conn.target.maxSessions);
    for (let i = 0; i < live.length; i += size) {
      const part = live.slice(i, i + size);
      const only = part.length === 1 ? part[0] : undefined;
      if (only) this.#execOne(conn, only.command, only.options).then(only.resolve, only.reject);
      else void this.#execBatch(conn, part);
    }
  }

  /** Several commands in one channel (batch.ts); each settles on its own result or its own deadline. */
  async #execBatch(conn: VmConnection, queued: QueuedExec[]): Promise<void> {
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
        this.#execOne(conn, q.command, q.options).then(
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
        opened = await this.#openScript(conn, whole.signal, script, tracker);
      } catch (err) {
        if (!whole.signal.aborted) failRest(err);
        return;
      }
      if ('refused' in opened) {
        failRest(this.#refusedCommand(conn, opened.refused));
        return;
      }
      const { live, channel, release } = opened;
      // The frames' nonce goes on stdin, where no command of the batch can read it (batch.ts).
      channel.write(stdin);
      this.counters.batchedCommands += queued.length;
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

  /** One exec channel for a full script (already carrying its own lifeline). */
  #openScript(conn: VmConnection, signal: AbortSignal, script: string, tracker?: OpenTracker): Promise<OpenedChannel> {
    this.counters.commandChannels++;
    return this.#openChannel(conn, signal, 'a command channel', (client, cb) => client.exec(script, cb), true, tracker);
  }

  #refusedCommand(conn: VmConnection, refused: Error): TransportError {
    return new TransportError(
      `VM ${conn.target.vm}: sshd at ${conn.where} refused a command channel (${refused.message}); lower ssh.max_sessions to sshd's MaxSessions`,
      'channel',
      { cause: refused },
    );
  }

  async #execOne(conn: VmConnection, command: string, options: ExecOptions): Promise<ExecResult> {
    const { signal } = options;
    const maxOutputBytes = options.maxOutputBytes ?? 4096;
    signal.throwIfAborted();
    const opened = await this.#openScript(conn, signal, withLifeline(command));
    if ('refused' in opened) throw this.#refusedCommand(conn, opened.refused);
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

  /**
   * A tunnel to host:port from inside the guest. `localhost` means the guest's loopback and is sent as 127.0.0.1
   * (the guest's sshd would otherwise have to resolve the name, and a minimal guest may have no /etc/hosts), then
   * as ::1 when nothing listens on 127.0.0.1, as curl does.
   */
  async #forward(conn: VmConnection, host: string, port: number, signal: AbortSignal): Promise<{ stream: Duplex; remote: string }> {
    signal.throwIfAborted();
    const name = host.toLowerCase();
    const candidates = name === 'localhost' || name.endsWith('.localhost') ? ['127.0.0.1', '::1'] : [host];
    let refused: Error | undefined;
    for (const remote of candidates) {
      try {
        return { stream: await this.#forwardTo(conn, remote, port, signal, host), remote };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || signal.aborted) throw err;
        refused ??= err as Error;
      }
    }
    throw refused!;
  }

  async #forwardTo(conn: VmConnection, host: string, port: number, signal: AbortSignal, asked: string): Promise<Duplex> {
    const shown = `${asked}:${port}`;
    const to = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const opened = await this.#openChannel(
      conn,
      signal,
      `a tunnel to ${to}`,
      (client, cb) => client.forwardOut('127.0.0.1', 0, host, port, cb),
      false,
      undefined,
      to,
    );
    if ('refused' in opened) {
      const err = opened.refused;
      const description = err.message.replace(/^\(SSH\) Channel open failure: /, '');
      if (err.reason === OPEN_CONNECT_FAILED && !/name|resolv|known/i.test(description)) {
        // sshd could not connect to host:port from inside the guest: the service's own failure,
        // reported as an ordinary error with the errno-style code a direct connect would give.
        const code = /refused/i.test(description)
          ? 'ECONNREFUSED'
          : /timed out/i.test(description)
            ? 'ETIMEDOUT'
            : /unreachable|no route/i.test(description)
              ? 'EHOSTUNREACH'
              : 'ECONNFAILED';
        throw Object.assign(new Error(`connect to ${to} inside VM ${conn.target.vm} failed: ${description}`, { cause: err }), {
          code,
        });
      }
      // Refused by policy (AllowTcpForwarding no) or a name the guest could not resolve: the tunnel was never
      // established, which says nothing about the service.
      const hint =
        err.reason === OPEN_ADMINISTRATIVELY_PROHIBITED
          ? '; allow it with AllowTcpForwarding yes in the guest sshd_config'
          : /name|resolv|known/i.test(description)
            ? `; the guest could not resolve ${asked === host ? host : asked}`
            : '';
      throw new TransportError(`VM ${conn.target.vm}: sshd at ${conn.where} refused a tunnel to ${shown} (${description})${hint}`, 'channel', {
        cause: err,
      });
    }
    const { channel, release } = opened;
    let gone = false;
    const done = (): void => {
      if (gone) return;
      gone = true;
      signal.removeEventListener('abort', onAbort);
      release();
    };
    // ssh2 emits 'close' only after 'end' was read; a consumer that destroys the stream without
    // reading to the end would otherwise keep the slot forever: drain on destroy.
    const destroy = channel.destroy.bind(channel);
    channel.destroy = ((): ClientChannel => {
      destroy();
      channel.resume();
      return channel;
    }) as ClientChannel['destroy'];
    // node:http and node:tls treat what createConnection returns as a net.Socket; give the
    // tunnel the socket methods they call, as ssh2's own HTTP agent does (the deadline is the
    // probe's signal, so setTimeout has nothing to do).
    const socketLike = channel as unknown as Record<string, unknown>;
    for (const name of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) {
      socketLike[name] ??= () => channel;
    }
    socketLike.destroySoon ??= channel.destroy;
    const onAbort = (): void => {
      channel.destroy();
    };
    channel.once('close', done);
    channel.on('error', () => {});
    signal.addEventListener('abort', onAbort, { once: true });
    return channel;
  }
}
