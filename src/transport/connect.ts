/**
 * One SSH connection to one VM: host key checked against known_hosts, key or agent auth,
 * bounded by the connect timeout, retried when sshd drops it during the handshake.
 * The parts: identity.ts (the keys offered), host-key-policy.ts (the host key decision), dial-failure.ts (what a
 * failed attempt tells the operator, and whether to retry).
 */
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client as SshClient, ConnectConfig } from 'ssh2';
import { expandHome } from '../util/home.js';
import { AttemptFailure, classifyDialError, type AttemptState, type DialWords } from './dial-failure.js';
import { hostKeyAlgorithms, verifyHostKey } from './host-key-policy.js';
import { credentials } from './identity.js';
import { readKnownHosts, recordedKeyTypes, type KnownHostEntry } from './known-hosts.js';
import { phaseText, TransportError, type TransportPhase } from './types.js';

const { Client } = ssh2;

/** One jump host on the way to a VM (ProxyJump), first hop first. */
export interface JumpHopTarget {
  /** The host as written in ProxyJump (`hv1`), for messages. */
  name: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** true: also try ssh-agent after the files; false: never; undefined: only when there are no files. */
  useAgent?: boolean;
  agentSocket?: string;
  knownHostsFile: string;
  hostKeyPolicy: 'strict' | 'accept-new';
  connectTimeoutMs: number;
  keepaliveMs?: number;
}

/** Where and how to reach one VM's sshd. */
export interface SshTarget {
  vm: string;
  /** What `vm` names in messages: 'VM' (default) or 'jump host'. */
  label?: string;
  host: string;
  port: number;
  user: string;
  /** Private key file; without it (and without identityFiles), ssh-agent (`agentSocket`, else $SSH_AUTH_SOCK) is used. */
  identityFile?: string;
  /** More private keys, tried in order after identityFile (OpenSSH's several IdentityFile). */
  identityFiles?: string[];
  /** true: try ssh-agent's keys after the files; false: never; unset: only when there are no files. */
  useAgent?: boolean;
  agentSocket?: string;
  knownHostsFile: string;
  /** strict: unknown host keys are refused; accept-new: recorded on first contact. A changed key is always refused. */
  hostKeyPolicy: 'strict' | 'accept-new';
  connectTimeoutMs: number;
  /** Channels open at once on the connection (sshd's MaxSessions, 10 by default). */
  maxSessions: number;
  /** false: a channel per round, never the resident command session (resident.ts). Default true. */
  residentSession?: boolean;
  /** Idle time before a keepalive probe (ServerAliveInterval); unset: the context's. */
  keepaliveMs?: number;
  /** Jump hosts to go through, first hop first (ProxyJump); absent or empty: a direct TCP connection. */
  jump?: JumpHopTarget[];
}

export interface ConnectContext {
  log: (msg: string) => void;
  /** A private key file's bytes, checked to parse without a passphrase (the pool caches it: read once). */
  loadIdentity: (file: string) => Promise<Buffer>;
  /** Idle time before a keepalive probe (3 unanswered: the connection is dead). Default 15 s. */
  keepaliveMs?: number;
  /** Aborting abandons the attempt at once: its socket is destroyed and connect() rejects (see DialProgress). */
  signal?: AbortSignal;
  /** Updated as the attempt gets further, so whoever gives up on it can say how far it got. */
  progress?: DialProgress;
  /**
   * A stream to the target's host:port through its jump hosts, instead of a TCP connection of our own; its
   * failures are TransportErrors that already say which jump host failed. While it is pending the phase is 'jump'.
   */
  via?: (signal: AbortSignal, progress: DialProgress) => Promise<Duplex>;
}

/** How far a dial got: through the jump hosts or TCP connect, then sshd's banner, then key exchange, then authentication. */
export interface DialProgress {
  phase: Extract<TransportPhase, 'jump' | 'tcp' | 'banner' | 'kex' | 'auth'>;
  /** In phase 'jump': what the jump host was missing (`jump host hv1 not reached: no SSH banner from …`). */
  jumpText?: () => string;
}

/** What was missing when a dial was given up in its current phase. */
export function dialPhaseText(progress: DialProgress, where: string): string {
  return phaseText(progress.phase, where, progress.phase === 'jump' ? (progress.jumpText?.() ?? '') : '');
}

/** `host:port`, with IPv6 literals bracketed. */
export function hostPort(target: Pick<SshTarget, 'host' | 'port'>): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

// Fastest first: curve25519, as OpenSSH itself prefers (host key algorithms: host-key-policy.ts). No SHA-1.
const KEX: NonNullable<NonNullable<ConnectConfig['algorithms']>['kex']> = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
];

/**
 * Open one authenticated connection. Rejects with a TransportError whose message names the VM
 * and host:port and says what to do. Bounded by `target.connectTimeoutMs` in total.
 */
export async function connect(target: SshTarget, ctx: ConnectContext): Promise<SshClient> {
  const where = hostPort(target);
  const say = (text: string): string => `${target.label ?? 'VM'} ${target.vm}: ${text}`;
  // Advice names what is at the other end: the guest, or a jump host.
  const jumpHost = target.label === 'jump host';
  const theVm = jumpHost ? 'the jump host' : 'the VM';
  const inGuest = jumpHost ? 'on the jump host' : 'in the guest';

  const { auth, credential, agent } = await credentials(target, ctx.loadIdentity, ctx.log, say, where);

  let entries: KnownHostEntry[];
  try {
    entries = await readKnownHosts(expandHome(target.knownHostsFile));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new TransportError(say(`cannot read the known_hosts file ${target.knownHostsFile} (${code}) to check ${where}; check ssh.known_hosts`), 'config', {
      cause: err,
    });
  }
  const recorded = recordedKeyTypes(entries, target.host, target.port);

  const base: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    ...auth,
    algorithms: { kex: KEX, serverHostKey: hostKeyAlgorithms(recorded) },
    // Notice a dead guest between rounds of `watch` instead of hanging on it.
    keepaliveInterval: target.keepaliveMs ?? ctx.keepaliveMs ?? 15_000,
    keepaliveCountMax: 3,
  };

  const words: DialWords = { say, where, theVm, inGuest, connectTimeoutMs: target.connectTimeoutMs, user: target.user, credential, ...(agent ? { agent } : {}) };

  const progress: DialProgress = ctx.progress ?? { phase: 'tcp' };
  const attempt = (timeoutMs: number): Promise<SshClient> =>
    new Promise<SshClient>((resolve, reject) => {
      const client = new Client();
      const state: AttemptState = { tcpConnected: false };
      let settled = false;
      const started = Date.now();
      // Our own socket (or a stream through the jump hosts), so the phase is known: TCP up, then the first
      // bytes (sshd's banner).
      progress.phase = ctx.via ? 'jump' : 'tcp';
      let sock: Duplex | undefined;
      const viaAbort = new AbortController();
      const onAbort = (): void => {
        if (settled) return;
        const text = dialPhaseText(progress, where);
        settled = true;
        cleanup();
        reject(new AttemptFailure(TransportError.notReached(target.vm, progress.phase, text), false));
      };
      const cleanup = (): void => {
        ctx.signal?.removeEventListener('abort', onAbort);
        clearTimeout(viaTimer);
        viaAbort.abort();
        client.removeAllListeners();
        client.on('error', () => {}); // Late errors of a dead attempt are of no interest.
        sock?.removeAllListeners('data');
        sock?.on('error', () => {});
        client.destroy();
        sock?.destroy();
      };
      let viaTimer: NodeJS.Timeout | undefined;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(classifyDialError(err, state, words));
      };
      const onFirstData = (): void => {
        if (progress.phase === 'banner') progress.phase = 'kex';
      };
      client.once('handshake', () => {
        progress.phase = 'auth';
      });
      client.on('error', fail);
      client.on('close', () => fail(new Error('closed before ready')));
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        ctx.signal?.removeEventListener('abort', onAbort);
        client.removeAllListeners();
        sock?.removeListener('data', onFirstData);
        resolve(client);
      });
      if (ctx.signal?.aborted) return onAbort();
      ctx.signal?.addEventListener('abort', onAbort, { once: true });
      if (ctx.via) {
        viaTimer = setTimeout(() => {
          if (settled) return;
          const text = dialPhaseText(progress, where);
          settled = true;
          cleanup();
          reject(
            new AttemptFailure(
              new TransportError(say(`${text} within ${target.connectTimeoutMs} ms; check the jump host and its network, or raise ssh.connect_timeout`), 'timeout'),
              false,
            ),
          );
        }, Math.max(1, timeoutMs));
        ctx.via(viaAbort.signal, progress).then(
          (stream) => {
            if (settled) {
              stream.destroy();
              return;
            }
            clearTimeout(viaTimer);
            sock = stream;
            state.tcpConnected = true;
            progress.phase = 'banner';
            stream.once('data', onFirstData);
            start(stream, timeoutMs - (Date.now() - started));
          },
          (err: unknown) => fail(err),
        );
        return;
      }
      const tcp = netConnect({ host: target.host, port: target.port });
      sock = tcp;
      progress.phase = 'tcp';
      tcp.once('connect', () => {
        state.tcpConnected = true;
        if (progress.phase === 'tcp') progress.phase = 'banner';
        // Small packets (channel open, close) must not wait for a delayed ACK: without this,
        // Nagle's algorithm adds ~40 ms to every exec on a warm connection.
        tcp.setNoDelay(true);
      });
      tcp.once('data', onFirstData);
      start(tcp, timeoutMs);

      function start(stream: Duplex, remainingMs: number): void {
      try {
        client.connect({
          ...base,
          sock: stream,
          readyTimeout: Math.max(1, Math.round(remainingMs)),
          hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
            verifyHostKey(target, entries, key, { say, where, log: ctx.log }).then(
              () => verify(true),
              (err: unknown) => {
                state.hostKeyError =
                  err instanceof TransportError ? err : new TransportError(say(`host key check failed (${String(err)})`), 'closed', { cause: err });
                verify(false);
              },
            );
          },
        });
      } catch (err) {
        // Synchronous config errors (e.g. an algorithm this ssh2 build lacks).
        fail(err);
      }
      }
    });

  const deadline = Date.now() + target.connectTimeoutMs;
  const MAX_RETRIES = 3;
  for (let retry = 0; ; retry++) {
    try {
      return await attempt(deadline - Date.now());
    } catch (failure) {
      if (!(failure instanceof AttemptFailure)) throw failure;
      // sshd's MaxStartups (10:30:100 by default) drops unauthenticated connections at random
      // beyond 10; a short random pause and another try usually gets through.
      const pause = 50 + Math.random() * 250;
      if (!failure.retryable || retry >= MAX_RETRIES || Date.now() + pause >= deadline || ctx.signal?.aborted) throw failure.error;
      ctx.log(`VM ${target.vm}: sshd at ${where} dropped the handshake; retrying in ${Math.round(pause)} ms`);
      await new Promise<void>((r) => {
        const timer = setTimeout(done, pause);
        function done(): void {
          clearTimeout(timer);
          ctx.signal?.removeEventListener('abort', done);
          r();
        }
        ctx.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}
