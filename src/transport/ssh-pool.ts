/**
 * One SSH connection per VM, shared by every probe of every round: commands are exec channels,
 * guest TCP is forwardOut tunnels, at most `maxSessions` channels open at once per connection.
 * A broken connection is redialled on next use, with a backoff so a dead VM is not hammered.
 *
 * The parts: vm-connection.ts (one VM's connection, dials, backoff, slots), open-channel.ts (a channel with a slot
 * held), resident.ts (the long-lived command session, the default), per-round.ts (channels opened for the round: the
 * fallback), tunnel.ts (guest TCP), jump.ts (jump hosts).
 */
import { hostPort, type SshTarget } from './connect.js';
import { readIdentity } from './identity.js';
import { BACKOFF_MAX_MS, targetKey, VmConnection, type QueuedExec } from './vm-connection.js';
import { JumpHosts } from './jump.js';
import { openChannel } from './open-channel.js';
import { execBatch, execOne } from './per-round.js';
import { ResidentSession, type ResidentHost } from './resident.js';
import { forward } from './tunnel.js';
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
  /** Command channels re-opened after sshd still counted a just-closed session (see open-channel.ts). */
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
      openChannel(this, conn, signal, 'the command session', (client, cb) => client.exec(script, cb), true, tracker),
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
      forward: (host, port, signal) => forward(this, conn, host, port, signal),
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

  #exec(conn: VmConnection, command: string, options: ExecOptions): Promise<ExecResult> {
    if (options.signal.aborted) return Promise.reject(options.signal.reason);
    if (!this.#batch && !this.#resident) return execOne(this, conn, command, options);
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
      for (const q of live) execOne(this, conn, q.command, q.options).then(q.resolve, q.reject);
      return;
    }
    // At most max_sessions commands per batch; a lone command (or a lone remainder) takes a channel of its own.
    const size = Math.max(1, conn.target.maxSessions);
    for (let i = 0; i < live.length; i += size) {
      const part = live.slice(i, i + size);
      const only = part.length === 1 ? part[0] : undefined;
      if (only) execOne(this, conn, only.command, only.options).then(only.resolve, only.reject);
      else void execBatch(this, conn, part);
    }
  }

}
