/** Tunnels from inside a guest (`direct-tcpip` over the VM's pooled connection): how probes reach a guest's localhost. */
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { openChannel } from './open-channel.js';
import type { SshPool } from './ssh-pool.js';
import { TransportError } from './types.js';
import type { VmConnection } from './vm-connection.js';

/** OpenSSH's reasons for refusing a channel (RFC 4254 §5.1). */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
const OPEN_CONNECT_FAILED = 2;

/**
 * A tunnel to host:port from inside the guest. `localhost` means the guest's loopback and is sent as 127.0.0.1
 * (the guest's sshd would otherwise have to resolve the name, and a minimal guest may have no /etc/hosts), then
 * as ::1 when nothing listens on 127.0.0.1, as curl does.
 */
export async function forward(pool: SshPool, conn: VmConnection, host: string, port: number, signal: AbortSignal): Promise<{ stream: Duplex; remote: string }> {
  signal.throwIfAborted();
  const name = host.toLowerCase();
  const candidates = name === 'localhost' || name.endsWith('.localhost') ? ['127.0.0.1', '::1'] : [host];
  let refused: Error | undefined;
  for (const remote of candidates) {
    try {
      return { stream: await forwardTo(pool, conn, remote, port, signal, host), remote };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || signal.aborted) throw err;
      refused ??= err as Error;
    }
  }
  throw refused!;
}

async function forwardTo(pool: SshPool, conn: VmConnection, host: string, port: number, signal: AbortSignal, asked: string): Promise<Duplex> {
  const shown = `${asked}:${port}`;
  const to = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const opened = await openChannel(pool, 
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
