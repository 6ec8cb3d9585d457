/**
 * A throwaway real OpenSSH sshd on 127.0.0.1 and a free port, for transport tests.
 * Keys, config, authorized_keys and known_hosts live in one temp dir removed by `cleanup()`.
 * Tests run as root (sshd needs it to switch users and to use /run/sshd).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SshTarget } from '../../src/transport/ssh-pool.js';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  host: string;
  port: number;
  user: string;
  dir: string;
  /** Private key authorized for `user`. */
  identityFile: string;
  /** A known_hosts file holding the current host key as `[host]:port type base64`. */
  knownHostsFile: string;
  /** `type base64` of the current host key. */
  hostPublicKey: string;
  /** The sshd listener's pid (its per-connection children are separate processes). */
  readonly pid: number;
  /** Lines sshd wrote to stderr (-e), newest last, for diagnosing a failing test. */
  log: string[];
  /** A target for this server with sensible test defaults. */
  target(overrides?: Partial<SshTarget>): SshTarget;
  /** Generate another client key (optionally passphrase-protected) that is NOT authorized. */
  makeClientKey(name: string, passphrase?: string): Promise<string>;
  /** Stop the listener and every connection it serves. */
  stop(): Promise<void>;
  /**
   * Kill the sshd processes serving connections (not the listener, not the commands they
   * started), as when a connection drops: clients see it close, commands lose their pipes.
   */
  dropConnections(): Promise<void>;
  /** Stop, then start again on the same port with the same keys. */
  restart(): Promise<void>;
  /** Replace the host key and restart; `knownHostsFile` keeps the OLD key. Returns the new `type base64`. */
  rotateHostKey(): Promise<string>;
  /** stop() and remove the temp dir. */
  cleanup(): Promise<void>;
}

export interface SshdOptions {
  maxSessions?: number;
  /** Extra sshd_config lines. */
  extraConfig?: string[];
}

/** A port that was free a moment ago: bind :0, read it, close. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function keygen(file: string, comment: string, passphrase = ''): Promise<void> {
  await rm(file, { force: true });
  await rm(`${file}.pub`, { force: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', comment, '-f', file]);
}

/** `type base64` from a `.pub` file (drops the comment). */
async function publicKeyOf(file: string): Promise<string> {
  const [type, blob] = (await readFile(`${file}.pub`, 'utf8')).trim().split(/\s+/);
  return `${type} ${blob}`;
}

/** Resolve once host:port accepts TCP, or reject after `timeoutMs` (bounded polling). */
export async function waitForPort(host: string, port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`sshd exited before listening on ${host}:${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Pids of every descendant of `pid` (read from /proc), deepest last. */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    for (const child of parents.get(next) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-sshd-'));
  const host = '127.0.0.1';
  const port = await freePort(host);
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const identityFile = path.join(dir, 'id_ed25519');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  const knownHostsFile = path.join(dir, 'known_hosts');
  const configFile = path.join(dir, 'sshd_config');

  await keygen(hostKey, 'test-host');
  await keygen(identityFile, 'test-client');
  await writeFile(authorizedKeys, `${await publicKeyOf(identityFile)}\n`, { mode: 0o600 });
  let hostPublicKey = await publicKeyOf(hostKey);
  await writeFile(knownHostsFile, `[${host}]:${port} ${hostPublicKey}\n`, { mode: 0o600 });
  // sshd takes the first value of a keyword: a line of extraConfig replaces the baseline line it names.
  const overridden = new Set((options.extraConfig ?? []).map((l) => l.split(/\s+/)[0]!.toLowerCase()));
  await writeFile(
    configFile,
    [
      `ListenAddress ${host}:${port}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      'PrintMotd no',
      'LogLevel VERBOSE',
      // A fresh home: root's own ~/.bashrc (sourced by bash for ssh commands) would slow every exec.
      `SetEnv HOME=${dir}`,
      `MaxSessions ${options.maxSessions ?? 10}`,
    ]
      .filter((l) => !overridden.has(l.split(/\s+/)[0]!.toLowerCase()))
      .concat(options.extraConfig ?? [], [''])
      .join('\n'),
  );

  const log: string[] = [];
  let child: ChildProcess | undefined;
  let exited = true;

  const start = async (): Promise<void> => {
    const proc = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    exited = false;
    proc.once('exit', () => {
      if (child === proc) exited = true;
    });
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      log.push(...chunk.split('\n').filter(Boolean));
      if (log.length > 500) log.splice(0, log.length - 500);
    });
    try {
      await waitForPort(host, port, 5000, () => !exited);
    } catch (err) {
      throw new Error(`${(err as Error).message}; sshd said: ${log.slice(-5).join(' | ')}`);
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || exited || proc.pid === undefined) return;
    const pid = proc.pid;
    // Per-connection sshd processes call setsid(), so they are not in the listener's process
    // group: find them by parentage and end each by pid, the listener too.
    const kids = await descendants(pid);
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    for (const p of [pid, ...kids]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await gone;
    exited = true;
  };

  const dropConnections = async (): Promise<void> => {
    const pid = child?.pid;
    if (!pid || exited) return;
    for (const p of await descendants(pid)) {
      try {
        if ((await readFile(`/proc/${p}/comm`, 'utf8')).trim() !== 'sshd') continue;
        process.kill(p, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };

  await start();

  const sshd: TestSshd = {
    host,
    port,
    user: 'root',
    dir,
    identityFile,
    knownHostsFile,
    get hostPublicKey() {
      return hostPublicKey;
    },
    get pid() {
      return child?.pid ?? -1;
    },
    log,
    target(overrides = {}) {
      return {
        vm: 'test-vm',
        host,
        port,
        user: 'root',
        identityFile,
        knownHostsFile,
        hostKeyPolicy: 'strict',
        connectTimeoutMs: 5000,
        maxSessions: options.maxSessions ?? 10,
        ...overrides,
      };
    },
    async makeClientKey(name, passphrase = '') {
      const file = path.join(dir, name);
      await keygen(file, name, passphrase);
      return file;
    },
    stop,
    dropConnections,
    async restart() {
      await stop();
      const dropConnections = async (): Promise<void> => {
    const pid = child?.pid;
    if (!pid || exited) return;
    for (const p of await descendants(pid)) {
      try {
        if ((await readFile(`/proc/${p}/comm`, 'utf8')).trim() !== 'sshd') continue;
        process.kill(p, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };

  await start();
    },
    async rotateHostKey() {
      await stop();
      await keygen(hostKey, 'test-host-rotated');
      hostPublicKey = await publicKeyOf(hostKey);
      const dropConnections = async (): Promise<void> => {
    const pid = child?.pid;
    if (!pid || exited) return;
    for (const p of await descendants(pid)) {
      try {
        if ((await readFile(`/proc/${p}/comm`, 'utf8')).trim() !== 'sshd') continue;
        process.kill(p, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };

  await start();
      return hostPublicKey;
    },
    async cleanup() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return sshd;
}
