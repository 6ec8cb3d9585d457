/**
 * One SSH connection to one VM: host key checked against known_hosts, key or agent auth,
 * bounded by the connect timeout, retried when sshd drops it during the handshake.
 */
import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { homedir } from 'node:os';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { AgentAuthMethod, Client as SshClient, ConnectConfig, ParsedKey, PublicKeyAuthMethod } from 'ssh2';
import {
  appendKnownHost,
  blobKeyType,
  checkHostKey,
  fingerprint,
  knownHostName,
  readKnownHosts,
  recordedKeyTypes,
  type KnownHostEntry,
} from './known-hosts.js';
import { phaseText, TransportError, type TransportPhase } from './types.js';

const { Client, utils } = ssh2;

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

export function expandHome(file: string): string {
  return file === '~' || file.startsWith('~/') ? homedir() + file.slice(1) : file;
}

/** Read and parse a private key, turning every way it can fail into a 'config' TransportError. */
export async function readIdentity(file: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(expandHome(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new TransportError(`cannot read the identity file ${file} (${code}); check ssh.identity_file`, 'config', { cause: err });
  }
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) {
    if (/encrypt|passphrase/i.test(parsed.message)) {
      throw new TransportError(
        `the identity file ${file} is protected by a passphrase; load it into ssh-agent with \`ssh-add ${file}\` and leave ssh.identity_file unset`,
        'config',
      );
    }
    throw new TransportError(`the identity file ${file} is not a private key this tool can read (${parsed.message})`, 'config');
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!key?.isPrivateKey()) {
    throw new TransportError(`the identity file ${file} holds no private key (is it the .pub file?); check ssh.identity_file`, 'config');
  }
  return data;
}

// Fastest first: curve25519 kex and ed25519 host keys, as OpenSSH itself prefers. No SHA-1.
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
type HostKeyAlgorithm = 'ssh-ed25519' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521' | 'rsa-sha2-512' | 'rsa-sha2-256';
const HOST_KEY_ALGORITHMS: HostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];
/** Signature algorithms that prove possession of a known_hosts key of this type. */
const ALGORITHMS_FOR_KEY_TYPE: Record<string, HostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256'],
};

/**
 * Like ssh(1): ask first for the key types already recorded for this host, so a host with both
 * an ed25519 and an rsa key recorded as rsa is verified against its rsa line, not "unknown".
 */
export function hostKeyAlgorithms(recorded: string[]): HostKeyAlgorithm[] {
  const first = recorded.flatMap((t) => ALGORITHMS_FOR_KEY_TYPE[t] ?? []);
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

/** A failed attempt and whether trying again may help. */
class AttemptFailure {
  constructor(
    readonly error: TransportError,
    readonly retryable: boolean,
  ) {}
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

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

  // Keys in order (OpenSSH's several IdentityFile), then ssh-agent where allowed. A key that cannot be read is
  // skipped when another can be used, as ssh(1) does; alone, it is the error.
  const files = [...new Set([...(target.identityFile ? [target.identityFile] : []), ...(target.identityFiles ?? [])])];
  const keys: { file: string; data: Buffer }[] = [];
  let unreadable: TransportError | undefined;
  for (const file of files) {
    try {
      keys.push({ file, data: await ctx.loadIdentity(file) });
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      unreadable ??= new TransportError(say(`cannot log in to ${where}: ${err.message}`), err.kind, { cause: err.cause });
      if (files.length > 1) ctx.log(say(`skipping the identity file ${file}: ${err.message}`));
    }
  }
  const agentAllowed = target.useAgent ?? files.length === 0;
  const agent = agentAllowed ? (target.agentSocket ?? process.env.SSH_AUTH_SOCK) : undefined;
  if (keys.length === 0 && !agent) {
    if (unreadable) throw unreadable;
    throw new TransportError(say(`no SSH key to log in to ${where} with; set ssh.identity_file or start ssh-agent (SSH_AUTH_SOCK)`), 'config');
  }
  const auth: Pick<ConnectConfig, 'privateKey' | 'agent' | 'authHandler'> = {};
  if (keys.length === 1 && !agent) auth.privateKey = keys[0]!.data;
  else if (keys.length === 0) auth.agent = agent;
  else {
    auth.agent = agent;
    const methods: (PublicKeyAuthMethod | AgentAuthMethod)[] = keys.map((k) => ({ type: 'publickey', username: target.user, key: k.data }));
    if (agent) methods.push({ type: 'agent', username: target.user, agent });
    auth.authHandler = methods;
  }
  const credential =
    keys.length === 0
      ? 'every key in ssh-agent'
      : `${keys.length === 1 ? 'the key' : 'the keys'} ${keys.map((k) => k.file).join(', ')}${agent ? ' and every key in ssh-agent' : ''}`;

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

  /** Decide on the server's host key; resolves to accept, rejects with a host-key TransportError. */
  const verifyHostKey = async (key: Buffer): Promise<void> => {
    const file = target.knownHostsFile;
    const keyType = blobKeyType(key) ?? 'unknown';
    const shown = `${keyType} ${fingerprint(key)}`;
    const removeHint = `\`ssh-keygen -R '${knownHostName(target.host, target.port)}' -f ${file}\``;
    const verdict = checkHostKey(entries, target.host, target.port, key);
    switch (verdict.kind) {
      case 'match':
        return;
      case 'revoked':
        throw new TransportError(say(`the host key of ${where} (${shown}) is marked @revoked in ${file} line ${verdict.line}; refusing to connect`), 'host-key-changed');
      case 'changed':
        throw new TransportError(
          say(
            `the host key of ${where} (${shown}) does not match ${file} line ${verdict.line}; this may be a man-in-the-middle attack or a reinstalled VM — if the VM was reinstalled, remove the old line with ${removeHint}`,
          ),
          'host-key-changed',
        );
      case 'unknown': {
        const other = verdict.otherTypes.find((o) => ALGORITHMS_FOR_KEY_TYPE[o.keyType]);
        if (other) {
          // We asked for the recorded type first; a server that no longer has it is suspect.
          throw new TransportError(
            say(
              `${where} offered a ${shown} host key, but ${file} line ${other.line} records a ${other.keyType} key it no longer presents; this may be a man-in-the-middle attack or a reinstalled VM — if the VM was reinstalled, remove the old line with ${removeHint}`,
            ),
            'host-key-changed',
          );
        }
        if (target.hostKeyPolicy === 'strict') {
          throw new TransportError(
            say(
              `the host key of ${where} (${shown}) is not in ${file}; check it, then run with --accept-new-host-keys or \`ssh-keyscan -p ${target.port} ${target.host} >> ${file}\``,
            ),
            'host-key-unknown',
          );
        }
        try {
          await appendKnownHost(expandHome(file), target.host, target.port, key);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? String(err);
          throw new TransportError(say(`cannot record the host key of ${where} in ${file} (${code}); check ssh.known_hosts`), 'config', {
            cause: err,
          });
        }
        ctx.log(`VM ${target.vm}: recorded the new host key of ${where} (${shown}) in ${file}`);
        return;
      }
    }
  };

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

  const classify = (err: unknown, state: { tcpConnected: boolean; hostKeyError?: TransportError }): AttemptFailure => {
    if (state.hostKeyError) return new AttemptFailure(state.hostKeyError, false);
    // From the jump hosts (ctx.via): already says which one failed and how.
    if (err instanceof TransportError) return new AttemptFailure(err, false);
    const e = err as Error & { code?: string; level?: string };
    const code = e.code ?? '';
    if (e.level === 'client-timeout') {
      return state.tcpConnected
        ? new AttemptFailure(
            new TransportError(
              say(`sshd at ${where} accepted the connection but did not finish the SSH handshake within ${target.connectTimeoutMs} ms; check that sshd ${inGuest} is healthy, or raise ssh.connect_timeout`),
              'timeout',
              { cause: err },
            ),
            false,
          )
        : new AttemptFailure(
            new TransportError(
              say(`could not open a TCP connection to ${where} within ${target.connectTimeoutMs} ms; check that ${theVm} is running and its network is up`),
              'unreachable',
              { cause: err },
            ),
            false,
          );
    }
    if (e.level === 'agent') {
      return new AttemptFailure(
        new TransportError(say(`cannot use ssh-agent at ${auth.agent} to log in to ${where} (${e.message}); start ssh-agent and ssh-add a key, or set ssh.identity_file`), 'config', {
          cause: err,
        }),
        false,
      );
    }
    if (e.level === 'client-authentication') {
      return new AttemptFailure(
        new TransportError(
          say(`sshd at ${where} refused ${credential} for user ${target.user}; add its public key to ~${target.user}/.ssh/authorized_keys ${inGuest}`),
          'auth',
          { cause: err },
        ),
        false,
      );
    }
    if (code === 'ECONNREFUSED') {
      return new AttemptFailure(
        new TransportError(say(`nothing accepts SSH connections at ${where} (connection refused); check that sshd runs ${inGuest} and the port is right`), 'refused', {
          cause: err,
        }),
        false,
      );
    }
    if (UNREACHABLE_CODES.has(code)) {
      return new AttemptFailure(
        new TransportError(say(`cannot reach ${where} (${code}); check that ${theVm} is running and its network is up`), 'unreachable', { cause: err }),
        false,
      );
    }
    if (RESET_CODES.has(code) || /Connection lost before handshake|closed before ready/.test(e.message)) {
      return new AttemptFailure(
        new TransportError(
          say(`sshd at ${where} closed the connection during the SSH handshake (too many connections at once? see MaxStartups in sshd_config); try again`),
          'closed',
          { cause: err },
        ),
        true,
      );
    }
    return new AttemptFailure(
      new TransportError(say(`the SSH handshake with ${where} failed (${e.message}); check sshd's log ${inGuest}`), 'closed', { cause: err }),
      false,
    );
  };

  const progress: DialProgress = ctx.progress ?? { phase: 'tcp' };
  const attempt = (timeoutMs: number): Promise<SshClient> =>
    new Promise<SshClient>((resolve, reject) => {
      const client = new Client();
      const state: { tcpConnected: boolean; hostKeyError?: TransportError } = { tcpConnected: false };
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
        reject(classify(err, state));
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
            verifyHostKey(key).then(
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
