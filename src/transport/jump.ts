/**
 * Jump hosts (OpenSSH's ProxyJump): a VM behind `hv1,hv2` is reached by a `direct-tcpip` channel (ssh2
 * `forwardOut`) opened on the connection to hv2, which is itself reached by a channel on the connection to hv1.
 * One pooled connection per jump host (per chain of hops leading to it), shared by every VM behind it and kept
 * across watch rounds; each hop's host key is checked against its own known_hosts like any other connection.
 */
import type { Duplex } from 'node:stream';
import type { Client as SshClient } from 'ssh2';
import { hostPort, type DialProgress, type JumpHopTarget, type SshTarget } from './connect.js';
import { TransportError } from './types.js';
import { channelAnswer } from './open-channel.js';

/** What the pool gives this module for one jump host: its connection across reconnects (a VmConnection). */
export interface JumpConnection {
  readonly where: string;
  /** What a dial in progress is missing (`no SSH banner from …`). */
  dialText(): string;
  live(signal: AbortSignal): Promise<{ client: SshClient; lost?: TransportError }>;
  close(): Promise<void>;
}

/** OpenSSH's reasons for refusing a channel (RFC 4254 §5.1). */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;

/** The connection target of hop `i`: reached through hops 0..i-1. */
export function hopTarget(hops: readonly JumpHopTarget[], i: number): SshTarget {
  const h = hops[i]!;
  return {
    vm: h.name,
    label: 'jump host',
    host: h.host,
    port: h.port,
    user: h.user,
    identityFiles: h.identityFiles,
    ...(h.useAgent !== undefined ? { useAgent: h.useAgent } : {}),
    ...(h.agentSocket ? { agentSocket: h.agentSocket } : {}),
    knownHostsFile: h.knownHostsFile,
    hostKeyPolicy: h.hostKeyPolicy,
    connectTimeoutMs: h.connectTimeoutMs,
    ...(h.keepaliveMs ? { keepaliveMs: h.keepaliveMs } : {}),
    maxSessions: 10,
    jump: hops.slice(0, i),
  };
}

export class JumpHosts {
  /** By chain of hops; `depth` is how many hops lead to and include this one. */
  readonly #connections = new Map<string, { conn: JumpConnection; depth: number }>();
  #closed = false;

  constructor(private readonly open: (target: SshTarget) => JumpConnection) {}

  /** Jump-host connections made so far (up or not). */
  get size(): number {
    return this.#connections.size;
  }

  #connection(hops: readonly JumpHopTarget[]): JumpConnection {
    const key = JSON.stringify(hops);
    let entry = this.#connections.get(key);
    if (!entry) {
      entry = { conn: this.open(hopTarget(hops, hops.length - 1)), depth: hops.length };
      this.#connections.set(key, entry);
      if (this.#closed) void entry.conn.close();
    }
    return entry.conn;
  }

  /**
   * A stream to target.host:port opened from the last of target.jump. While it is pending, `progress.jumpText`
   * says what is missing. Rejects with a TransportError naming the jump host: `VM web-1: jump host hv1 not
   * reachable: …` when the jump host cannot be reached, or what the jump host said about the target.
   */
  async tunnel(target: SshTarget, signal: AbortSignal, progress: DialProgress): Promise<Duplex> {
    const hops = target.jump ?? [];
    const last = hops.at(-1);
    if (!last) throw new TransportError(`${target.label ?? 'VM'} ${target.vm}: no jump host to go through`, 'config');
    const who = `${target.label ?? 'VM'} ${target.vm}`;
    const where = hostPort(target);
    const conn = this.#connection(hops);
    let forwarding = false;
    progress.jumpText = () => {
      if (forwarding) return `jump host ${last.name} did not open a connection to ${where}`;
      const missing = conn.dialText();
      return missing.startsWith('jump host ') ? missing : `jump host ${last.name} not reached: ${missing}`;
    };
    let live: { client: SshClient; lost?: TransportError };
    try {
      live = await conn.live(signal);
    } catch (err) {
      const inner = err instanceof TransportError ? err : new TransportError(String(err), 'closed', { cause: err });
      const text = inner.message.replace(/^(VM|jump host) [^:]+: /, '');
      // Behind several hops, the first one that failed is named: `jump host hv1 not reachable: …`, not hv2's view of it.
      throw new TransportError(`${who}: ${text.startsWith('jump host ') ? text : `jump host ${last.name} not reachable: ${text}`}`, inner.kind, { cause: err });
    }
    forwarding = true;
    const timedOut = (): TransportError => new TransportError(`${who}: jump host ${last.name} did not open a connection to ${where} in time`, 'timeout');
    if (signal.aborted) throw timedOut();
    const answer = await channelAnswer(signal, (cb) => live.client.forwardOut('127.0.0.1', 0, target.host, target.port, cb));
    if ('aborted' in answer) throw timedOut();
    if ('error' in answer) throw forwardError(who, last.name, where, answer.error, live.lost);
    const { channel } = answer;
    // ssh2's channel is a Duplex; net.Socket methods that ssh2's client calls on its sock are no-ops here.
    const sock = channel as unknown as Record<string, unknown>;
    for (const name of ['setNoDelay', 'setKeepAlive', 'setTimeout', 'ref', 'unref']) sock[name] ??= () => channel;
    return channel;
  }

  /** End every jump-host connection (after the VM connections that go through them). */
  async close(): Promise<void> {
    this.#closed = true;
    // Deepest hops first: a hop's connection runs inside the one before it.
    const all = [...this.#connections.values()].sort((a, b) => b.depth - a.depth);
    for (const { conn } of all) await conn.close();
  }
}

/** What a jump host's refusal to open a direct-tcpip channel means for the target behind it. */
function forwardError(who: string, jump: string, where: string, err: Error & { reason?: number | string }, lost: TransportError | undefined): TransportError {
  const description = err.message.replace(/^\(SSH\) Channel open failure: /, '');
  if (lost || err.reason === undefined) {
    return new TransportError(`${who}: jump host ${jump} not reachable: the connection to it was lost (${description}); it will be redialled on next use`, 'closed', {
      cause: err,
    });
  }
  if (err.reason === OPEN_ADMINISTRATIVELY_PROHIBITED) {
    return new TransportError(`${who}: jump host ${jump} refused to forward to ${where} (${description}); allow it with AllowTcpForwarding yes in its sshd_config`, 'config', {
      cause: err,
    });
  }
  if (/refused/i.test(description)) {
    return new TransportError(`${who}: nothing accepts SSH connections at ${where} as seen from jump host ${jump} (${description}); check that sshd runs there and the port is right`, 'refused', {
      cause: err,
    });
  }
  return new TransportError(`${who}: jump host ${jump} cannot reach ${where} (${description}); check that it is running and routable from ${jump}`, 'unreachable', {
    cause: err,
  });
}
