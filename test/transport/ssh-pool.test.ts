/**
 * SshPool against a real OpenSSH sshd on 127.0.0.1 (test/support/sshd.ts). No mocks.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SshPool } from '../../src/transport/ssh-pool.js';
import { TransportError } from '../../src/transport/types.js';
import { eventually, processesWith, uniqueSleep } from '../support/procs.js';
import { freePort, startSshd, type TestSshd } from '../support/sshd.js';

const run = promisify(execFile);
const signal = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

async function transportError(promise: Promise<unknown>): Promise<TransportError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransportError);
  return err as TransportError;
}

describe('SshPool against a real sshd', () => {
  let sshd: TestSshd;
  let pool: SshPool;
  const logs: string[] = [];

  beforeAll(async () => {
    sshd = await startSshd({ maxSessions: 10 });
    // Channels per round, batched or not: the resident session (the default) has tests of its own (resident.test.ts).
    pool = new SshPool({ log: (m) => logs.push(m), residentSession: false });
  });
  afterAll(async () => {
    await pool?.close();
    await sshd?.cleanup();
  });

  it('runs commands: exit codes, stdout and stderr apart, and reuses one connection', async () => {
    const session = pool.session(sshd.target());
    const cold = performance.now();
    const a = await session.exec('echo out; echo err >&2; exit 3', { signal: signal() });
    const coldMs = performance.now() - cold;
    expect(a).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', stdoutTruncated: false, stderrTruncated: false });

    const warmTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = await session.exec('true', { signal: signal() });
      warmTimes.push(performance.now() - t);
      expect(r.exitCode).toBe(0);
    }
    // The command reads /dev/null, as with `ssh -n`: a stray `cat` does not hang.
    expect((await session.exec('cat; echo done', { signal: signal() })).stdout).toBe('done\n');
    // Killed by a signal: no exit code, the signal's name instead.
    const killed = await session.exec('kill -TERM $$', { signal: signal() });
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
    // A second session object for the same VM shares the connection.
    expect((await pool.session(sshd.target()).exec('echo $HOME', { signal: signal() })).stdout).toBe(`${sshd.dir}\n`);

    expect(pool.stats()).toMatchObject({ connectionsOpened: 1, open: 1 });
    warmTimes.sort((x, y) => x - y);
    console.log(`cold connect+exec ${coldMs.toFixed(0)} ms; warm exec median ${warmTimes[2]!.toFixed(1)} ms (min ${warmTimes[0]!.toFixed(1)})`);
  });

  it('caps output and keeps reading to the end: `yes | head -c 50000000`', async () => {
    const session = pool.session(sshd.target());
    const r = await session.exec('yes | head -c 50000000; echo tail >&2', { signal: signal(20_000), maxOutputBytes: 1000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdoutTruncated).toBe(true);
    expect(r.stdout).toBe('y\n'.repeat(500));
    expect(r.stderr).toBe('tail\n');
    expect(r.stderrTruncated).toBe(false);
  });

  it('runs 25 commands at once on ONE connection, never more than MaxSessions (10) channels open', async () => {
    // One channel per command (batching off): this is about the channel limit.
    const pool = new SshPool({ batchCommands: false, residentSession: false });
    onTestFinished(() => pool.close());
    const session = pool.session(sshd.target());
    await session.exec('true', { signal: signal() });
    const before = pool.stats().connectionsOpened;
    const dir = path.join(sshd.dir, `concurrency-${randomUUID()}`);
    // Each command marks itself present, records how many are present, then leaves.
    const cmd = `mkdir -p ${dir}/live; touch ${dir}/live/$$; ls ${dir}/live | wc -l >> ${dir}/counts; sleep 0.3; rm ${dir}/live/$$; echo ok`;
    const results = await Promise.all(Array.from({ length: 25 }, () => session.exec(cmd, { signal: signal(20_000) })));
    expect(results.every((r) => r.exitCode === 0 && r.stdout === 'ok\n')).toBe(true);
    const counts = (await readFile(`${dir}/counts`, 'utf8')).trim().split('\n').map(Number);
    expect(counts).toHaveLength(25);
    expect(Math.max(...counts)).toBeLessThanOrEqual(10);
    expect(Math.max(...counts)).toBeGreaterThanOrEqual(5); // they did run side by side
    expect(pool.stats().connectionsOpened).toBe(before);
    console.log(`25 execs: max ${Math.max(...counts)} at once, ${pool.stats().sessionRetries} channel re-opens`);
  });

  it('abort stops the remote command (the lifeline kills its process group within a second)', async () => {
    const session = pool.session(sshd.target());
    const marker = uniqueSleep();
    const ac = new AbortController();
    const pending = session.exec(`sleep ${marker}; echo never`, { signal: ac.signal });
    expect(await eventually(async () => (await processesWith(`sleep ${marker}`)).length > 0, 5000)).toBe(true);
    const reason = new Error('probe timed out');
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    const t = Date.now();
    expect(await eventually(async () => (await processesWith(marker)).length === 0, 1000)).toBe(true);
    console.log(`remote command gone ${Date.now() - t} ms after abort`);
    // The connection is still good afterwards, and the channel slot came back.
    expect((await session.exec('echo still', { signal: signal() })).stdout).toBe('still\n');
  });

  it('commands asked for together share one channel and keep their own results (exit status, output, caps)', async () => {
    const session = pool.session(sshd.target());
    const before = pool.stats();
    const [a, c, d, e] = await Promise.all([
      session.exec('echo out; echo err >&2; exit 3', { signal: signal() }),
      session.exec('yes | head -c 100000', { signal: signal(), maxOutputBytes: 10 }),
      session.exec('printf "no newline"; trap "echo trapped" EXIT', { signal: signal() }),
      session.exec('cat; echo late', { signal: signal() }),
    ]);
    expect(a).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(c).toMatchObject({ exitCode: 0, stdout: 'y\ny\ny\ny\ny\n', stdoutTruncated: true });
    expect(d).toMatchObject({ exitCode: 0, stdout: 'no newlinetrapped\n', stderr: '' });
    expect(e).toMatchObject({ exitCode: 0, stdout: 'late\n' });
    const after = pool.stats();
    expect(after.commandChannels - before.commandChannels).toBe(1);
    expect(after.batchedCommands - before.batchedCommands).toBe(4);
  });

  it('in a batch, a command past its deadline fails alone: it is stopped, the others still get their results', async () => {
    const session = pool.session(sshd.target());
    const marker = uniqueSleep();
    const t0 = performance.now();
    const [a, b, c] = await Promise.allSettled([
      session.exec('echo first', { signal: signal() }),
      session.exec(`sleep ${marker}`, { signal: AbortSignal.timeout(300) }),
      session.exec('echo after', { signal: signal() }),
    ]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'first\n' } });
    expect(b).toMatchObject({ status: 'rejected', reason: { name: 'TimeoutError' } });
    expect(c).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'after\n' } });
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(await eventually(async () => (await processesWith(marker)).length === 0, 2000)).toBe(true);
  });

  it('in a batch, a command that never started before its deadline is a transport error (UNKNOWN), and the slow one ahead of it runs once, to its end', async () => {
    const session = pool.session(sshd.target());
    const marker = uniqueSleep();
    const file = `/tmp/clonebox-batch-runs-${marker}`;
    const t0 = performance.now();
    const [slow, starved, after] = await Promise.allSettled([
      session.exec(`echo run >> ${file}; sleep 1.5; echo slow done`, { signal: signal() }),
      session.exec('echo never started', { signal: AbortSignal.timeout(400) }),
      session.exec('echo after', { signal: signal() }),
    ]);
    expect(slow).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'slow done\n' } });
    expect(starved.status).toBe('rejected');
    const reason = (starved as PromiseRejectedResult).reason as TransportError;
    expect(reason).toBeInstanceOf(TransportError);
    expect(reason.kind).toBe('channel');
    expect(reason.message).toMatch(/did not start within its timeout/);
    // The one behind went on a channel of its own at once, not after the slow one.
    expect(after).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'after\n' } });
    expect(performance.now() - t0).toBeLessThan(5000);
    const runs = await session.exec(`cat ${file}; rm -f ${file}`, { signal: signal() });
    expect(runs.stdout).toBe('run\n');
  });

  it('an already-aborted signal rejects at once and opens nothing', async () => {
    const session = pool.session(sshd.target());
    const ac = new AbortController();
    ac.abort(new Error('too late'));
    await expect(session.exec('true', { signal: ac.signal })).rejects.toThrow('too late');
  });

  it('OpenSSH facts the lifeline relies on: closing the channel alone leaves the command running; a signal request is refused for root', async () => {
    const marker = uniqueSleep();
    const client = new ssh2.Client();
    const privateKey = await readFile(sshd.identityFile);
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve).once('error', reject);
      client.connect({ host: sshd.host, port: sshd.port, username: 'root', privateKey, hostVerifier: () => true });
    });
    try {
      const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.exec(`sleep ${marker}`, (err, ch) => (err ? reject(err) : resolve(ch))),
      );
      channel.resume();
      expect(await eventually(async () => (await processesWith(`sleep ${marker}`)).length > 0, 5000)).toBe(true);
      channel.signal('KILL');
      channel.close();
      await new Promise((r) => setTimeout(r, 500));
      const survivors = await processesWith(`sleep ${marker}`);
      expect(survivors.length).toBeGreaterThan(0);
      expect(sshd.log.some((l) => l.includes('session signalling requires privilege separation'))).toBe(true);
      for (const pid of survivors) process.kill(pid, 'SIGKILL'); // ours: started by this test
    } finally {
      client.end();
    }
  });

  describe('forward', () => {
    let echo: net.Server;
    let echoPort: number;
    beforeAll(async () => {
      echo = net.createServer((s) => s.pipe(s));
      await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
      echoPort = (echo.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise((r) => echo.close(r));
    });

    it('tunnels to a port as the guest sees it', async () => {
      const { stream } = await pool.session(sshd.target()).forward('127.0.0.1', echoPort, signal());
      const reply = new Promise<string>((resolve) => stream.once('data', (d: Buffer) => resolve(d.toString())));
      stream.write('ping');
      expect(await reply).toBe('ping');
      stream.destroy();
    });

    it('carries an HTTP request (node:http over the tunnel, as the http probe will use it)', async () => {
      const web = http.createServer((req, res) => res.end(`hello from ${req.url}`));
      await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
      const port = (web.address() as net.AddressInfo).port;
      try {
        const { stream } = await pool.session(sshd.target()).forward('127.0.0.1', port, signal());
        const body = await new Promise<string>((resolve, reject) => {
          const req = http.request({ host: 'localhost', port, path: '/health', agent: false, createConnection: () => stream as net.Socket }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text));
          });
          req.on('error', reject).end();
        });
        expect(body).toBe('hello from /health');
      } finally {
        web.closeAllConnections();
        await new Promise((r) => web.close(r));
      }
    });

    it('gives the slot back when the stream is destroyed unread (12 tunnels in turn with max_sessions 2)', async () => {
      const session = pool.session(sshd.target({ vm: 'test-vm-2', maxSessions: 2 }));
      for (let i = 0; i < 12; i++) {
        const { stream } = await session.forward('127.0.0.1', echoPort, signal(3000));
        stream.write('x'); // the echo comes back and is never read
        await new Promise((r) => setTimeout(r, 5));
        stream.destroy();
      }
    });

    it('a refused port inside the guest is an ordinary ECONNREFUSED error, not a TransportError', async () => {
      const closed = await freePort();
      const err = await pool
        .session(sshd.target())
        .forward('127.0.0.1', closed, signal())
        .then(
          () => undefined,
          (e: unknown) => e as Error & { code?: string },
        );
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(TransportError);
      expect(err?.code).toBe('ECONNREFUSED');
      expect(err?.message).toContain(`127.0.0.1:${closed}`);
    });
  });
});

describe('SshPool connection faults', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.cleanup();
  });

  it('nothing listening → refused', async () => {
    const pool = new SshPool();
    const port = await freePort();
    const err = await transportError(pool.session(sshd.target({ port })).exec('true', { signal: signal() }));
    expect(err.kind).toBe('refused');
    expect(err.message).toContain(`VM test-vm`);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    // In backoff now: the next use fails fast with the same words, without dialling again.
    const attempts = pool.stats().connectAttempts;
    const again = await transportError(pool.session(sshd.target({ port })).exec('true', { signal: signal() }));
    expect(again.message).toBe(err.message);
    expect(pool.stats().connectAttempts).toBe(attempts);
    await pool.close();
  });

  it('a server that accepts and never speaks → timeout after connect_timeout', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const pool = new SshPool();
    const t = Date.now();
    try {
      const err = await transportError(pool.session(sshd.target({ port, connectTimeoutMs: 800 })).exec('true', { signal: signal() }));
      const elapsed = Date.now() - t;
      expect(err.kind).toBe('timeout');
      expect(err.message).toContain('800 ms');
      expect(elapsed).toBeGreaterThanOrEqual(750);
      expect(elapsed).toBeLessThan(800 + 700);
    } finally {
      await pool.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('a deadline before the banner: "guest not reached" with the phase, and the dial nobody waits for is abandoned', async () => {
    const sockets: net.Socket[] = [];
    const closed: Promise<void>[] = [];
    const silent = net.createServer((s) => {
      sockets.push(s);
      closed.push(new Promise((r) => s.on('close', () => r())));
      s.resume(); // read (and drop) what comes, so the peer's FIN is seen
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const pool = new SshPool();
    const t = Date.now();
    try {
      // connect_timeout is far away: the check's own deadline must end the wait, and the attempt with it.
      const session = pool.session(sshd.target({ port, connectTimeoutMs: 20_000 }));
      const [a, b] = await Promise.all([
        transportError(session.exec('true', { signal: signal(400) })),
        transportError(session.exec('echo b', { signal: signal(400) })),
      ]);
      const elapsed = Date.now() - t;
      for (const err of [a, b]) {
        expect(err.kind).toBe('timeout');
        expect(err.phase).toBe('banner');
        expect(err.message).toBe(`VM test-vm: guest not reached: no SSH banner from 127.0.0.1:${port}`);
      }
      expect(elapsed).toBeLessThan(400 + 2000);
      // The server sees the abandoned connection closed, long before connect_timeout.
      expect(closed.length).toBe(1);
      await Promise.race([closed[0], new Promise((_, reject) => setTimeout(() => reject(new Error('the dial was not abandoned')), 3000))]);
      const c0 = Date.now();
      await pool.close();
      expect(Date.now() - c0).toBeLessThan(1000);
    } finally {
      await pool.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it("a dial the guest's sshd is already answering goes on past the check's deadline and serves the next run: no new dial", async () => {
    // A proxy that passes sshd's bytes at once but holds the client's for 1.5 s: the client sees the banner (phase
    // kex) long before the handshake can finish, as with a guest too busy to finish it within a check's deadline.
    const sockets: net.Socket[] = [];
    const proxy = net.createServer((client) => {
      const upstream = net.connect(sshd.port, '127.0.0.1');
      sockets.push(client, upstream);
      let held: Buffer[] | undefined = [];
      upstream.on('data', (d: Buffer) => client.write(d));
      client.on('data', (d: Buffer) => (held ? held.push(d) : upstream.write(d)));
      const release = setTimeout(() => {
        for (const b of held ?? []) upstream.write(b);
        held = undefined;
      }, 1500);
      const end = () => {
        clearTimeout(release);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    const pool = new SshPool();
    try {
      // The proxy's port is not in known_hosts: the same key under a new [127.0.0.1]:port entry.
      const session = pool.session(sshd.target({ port, connectTimeoutMs: 10_000, hostKeyPolicy: 'accept-new' }));
      const err = await transportError(session.exec('echo a', { signal: signal(300) }));
      expect(err.kind).toBe('timeout');
      expect(err.phase).toBe('kex');
      // Nobody waits for it any more, and it still finishes: the next run finds the connection open.
      const t = Date.now();
      while (pool.stats().open === 0 && Date.now() - t < 8000) await new Promise((r) => setTimeout(r, 50));
      expect(pool.stats()).toMatchObject({ open: 1, connectionsOpened: 1, connectAttempts: 1 });
      expect((await session.exec('echo b', { signal: signal(5000) })).stdout).toBe('b\n');
      expect(pool.stats()).toMatchObject({ connectionsOpened: 1, connectAttempts: 1 });
    } finally {
      await pool.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('a TCP connect that never completes (accept queue full) → unreachable after connect_timeout', async () => {
    // A listener with backlog 0 that never accepts: once one connection waits in its queue,
    // the kernel drops further SYNs and connect() hangs, as for a filtered or vanished host.
    // /usr/bin/python3 -I -S: no pyenv shim, no site packages (starts in ~0.1 s, not ~1 s).
    const py = spawn(
      '/usr/bin/python3',
      ['-I', '-S', '-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(20)'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const filler: net.Socket[] = [];
    const pool = new SshPool();
    try {
      const port = Number(await new Promise<string>((resolve) => py.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))));
      for (let i = 0; i < 2; i++) {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        filler.push(s);
      }
      await new Promise((r) => setTimeout(r, 100));
      const t = Date.now();
      const err = await transportError(pool.session(sshd.target({ port, connectTimeoutMs: 600 })).exec('true', { signal: signal() }));
      expect(err.kind).toBe('unreachable');
      expect(err.message).toContain(`could not open a TCP connection to 127.0.0.1:${port} within 600 ms`);
      expect(Date.now() - t).toBeLessThan(600 + 700);
    } finally {
      await pool.close();
      for (const s of filler) s.destroy();
      py.kill('SIGKILL');
    }
  });

  it('a server that closes every connection at once → closed, after bounded handshake retries', async () => {
    let accepted = 0;
    const rude = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    const port = (rude.address() as net.AddressInfo).port;
    const pool = new SshPool();
    try {
      const err = await transportError(pool.session(sshd.target({ port, connectTimeoutMs: 3000 })).exec('true', { signal: signal() }));
      expect(err.kind).toBe('closed');
      expect(err.message).toContain('MaxStartups');
      expect(accepted).toBe(4); // the first try and 3 retries
    } finally {
      await pool.close();
      await new Promise((r) => rude.close(r));
    }
  });

  it('a key sshd does not know → auth', async () => {
    const other = await sshd.makeClientKey('id_other');
    const pool = new SshPool();
    const err = await transportError(pool.session(sshd.target({ identityFile: other })).exec('true', { signal: signal() }));
    expect(err.kind).toBe('auth');
    expect(err.message).toBe(
      `VM test-vm: sshd at 127.0.0.1:${sshd.port} refused the key ${other} for user root; add its public key to ~root/.ssh/authorized_keys in the guest`,
    );
    await pool.close();
  });

  it('a passphrase-protected key → config, pointing at ssh-agent', async () => {
    const locked = await sshd.makeClientKey('id_locked', 'secret phrase');
    const pool = new SshPool();
    const err = await transportError(pool.session(sshd.target({ identityFile: locked })).exec('true', { signal: signal() }));
    expect(err.kind).toBe('config');
    expect(err.message).toContain('passphrase');
    expect(err.message).toContain('ssh-add');
    await pool.close();
  });

  it('no key and no agent → config naming the VM', async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    const pool = new SshPool();
    try {
      const { identityFile: _, ...noKey } = sshd.target({ vm: 'db-7' });
      const err = await transportError(pool.session(noKey).exec('true', { signal: signal() }));
      expect(err.kind).toBe('config');
      expect(err.message).toMatch(/^VM db-7: no SSH key/);
    } finally {
      if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
      await pool.close();
    }
  });

  it('logs in with ssh-agent when there is no identity file; a dead agent socket → config', async () => {
    const sock = path.join(sshd.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    const pool = new SshPool();
    try {
      expect(await eventually(() => stat(sock).then(() => true, () => false), 5000)).toBe(true);
      await run('ssh-add', ['-q', sshd.identityFile], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      const { identityFile: _, ...viaAgent } = sshd.target({ agentSocket: sock });
      expect((await pool.session(viaAgent).exec('echo agent', { signal: signal() })).stdout).toBe('agent\n');

      const missing = path.join(sshd.dir, 'no-such-agent.sock');
      const err = await transportError(pool.session({ ...viaAgent, vm: 'other', agentSocket: missing }).exec('true', { signal: signal() }));
      expect(err.kind).toBe('config');
      expect(err.message).toContain(`cannot use ssh-agent at ${missing}`);
    } finally {
      await pool.close();
      agent.kill('SIGTERM');
    }
  });

  it('an abort while connecting rejects that exec at once; the connection attempt goes on for the others', async () => {
    const pool = new SshPool();
    const session = pool.session(sshd.target());
    const ac = new AbortController();
    const first = session.exec('true', { signal: ac.signal });
    const second = session.exec('echo two', { signal: signal() });
    ac.abort(new Error('gave up'));
    await expect(first).rejects.toThrow('gave up');
    expect((await second).stdout).toBe('two\n');
    expect(pool.stats().connectionsOpened).toBe(1);
    await pool.close();
  });

  it('concurrent first uses share one connection attempt', async () => {
    const pool = new SshPool();
    const session = pool.session(sshd.target());
    await Promise.all(Array.from({ length: 8 }, () => session.exec('true', { signal: signal() })));
    expect(pool.stats()).toMatchObject({ connectionsOpened: 1, connectAttempts: 1, open: 1 });
    await pool.close();
    expect(pool.stats().open).toBe(0);
    const err = await transportError(session.exec('true', { signal: signal() }));
    expect(err.message).toContain('closed');
  });

  it('a connection lost mid-command → TransportError closed; the command is stopped too; the next use reconnects', async () => {
    const pool = new SshPool();
    const session = pool.session(sshd.target());
    const marker = uniqueSleep();
    const failed = transportError(session.exec(`sleep ${marker}`, { signal: signal() }));
    expect(await eventually(async () => (await processesWith(`sleep ${marker}`)).length > 0, 5000)).toBe(true);
    await sshd.dropConnections();
    const err = await failed;
    expect(err.kind).toBe('closed');
    expect(err.message).toContain('was lost while a command ran');
    // sshd's end of the pipes went with it: the lifeline saw EOF and killed the command.
    expect(await eventually(async () => (await processesWith(marker)).length === 0, 1000)).toBe(true);
    expect((await session.exec('echo back', { signal: signal() })).stdout).toBe('back\n');
    expect(pool.stats().connectionsOpened).toBe(2);
    await pool.close();
  });

  it('reconnects on next use after sshd restarts (the old connection died with it)', async () => {
    const logs: string[] = [];
    const pool = new SshPool({ log: (m) => logs.push(m) });
    const session = pool.session(sshd.target());
    expect((await session.exec('echo one', { signal: signal() })).stdout).toBe('one\n');
    await sshd.restart();
    // Use it at once: whether or not the pool has seen the close yet, the next use redials.
    expect((await session.exec('echo two', { signal: signal() })).stdout).toBe('two\n');
    expect(pool.stats()).toMatchObject({ connectionsOpened: 2, open: 1 });
    expect(logs.some((l) => l.includes('(reconnected)'))).toBe(true);
    await pool.close();
  });
});

describe('SshPool tunnels sshd will not open', () => {
  it('AllowTcpForwarding no: a transport error (UNKNOWN) with sshd\'s reason and the setting to change', async () => {
    const sshd = await startSshd({ extraConfig: ['AllowTcpForwarding no'] });
    const pool = new SshPool();
    try {
      const err = await transportError(pool.session(sshd.target()).forward('localhost', 80, signal()));
      expect(err.kind).toBe('channel');
      expect(err.message).toMatch(/refused a tunnel to localhost:80 .*AllowTcpForwarding yes/);
    } finally {
      await pool.close();
      await sshd.cleanup();
    }
  });
});

describe('SshPool host keys', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.cleanup();
  });

  it('unknown host with policy strict → host-key-unknown, saying how to accept it', async () => {
    const pool = new SshPool();
    const file = path.join(sshd.dir, 'empty_known_hosts');
    const err = await transportError(pool.session(sshd.target({ knownHostsFile: file })).exec('true', { signal: signal() }));
    expect(err.kind).toBe('host-key-unknown');
    expect(err.message).toContain('--accept-new-host-keys');
    expect(err.message).toContain(`ssh-keyscan -p ${sshd.port} 127.0.0.1 >> ${file}`);
    await pool.close();
  });

  it('a hashed known_hosts entry (ssh-keygen -H) is accepted', async () => {
    const file = path.join(sshd.dir, 'hashed_known_hosts');
    await writeFile(file, await readFile(sshd.knownHostsFile));
    await run('ssh-keygen', ['-H', '-f', file]);
    expect(await readFile(file, 'utf8')).toMatch(/^\|1\|/);
    const pool = new SshPool();
    expect((await pool.session(sshd.target({ knownHostsFile: file })).exec('echo ok', { signal: signal() })).stdout).toBe('ok\n');
    await pool.close();
  });

  it('accept-new records the key (0600, dir created), works, and a later rotated key → host-key-changed', async () => {
    const file = path.join(sshd.dir, 'new', 'known_hosts');
    const logs: string[] = [];
    const pool = new SshPool({ log: (m) => logs.push(m) });
    const target = sshd.target({ knownHostsFile: file, hostKeyPolicy: 'accept-new' });
    expect((await pool.session(target).exec('echo first', { signal: signal() })).stdout).toBe('first\n');
    expect(await readFile(file, 'utf8')).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(logs.some((l) => l.includes('recorded the new host key'))).toBe(true);
    await pool.close();

    await sshd.rotateHostKey();
    for (const policy of ['accept-new', 'strict'] as const) {
      const again = new SshPool();
      const err = await transportError(again.session({ ...target, hostKeyPolicy: policy }).exec('true', { signal: signal() }));
      expect(err.kind).toBe('host-key-changed');
      expect(err.message).toContain('VM test-vm');
      expect(err.message).toContain(`127.0.0.1:${sshd.port}`);
      expect(err.message).toContain(`${file} line 1`);
      expect(err.message).toContain('man-in-the-middle');
      expect(err.message).toContain(`ssh-keygen -R '[127.0.0.1]:${sshd.port}' -f ${file}`);
      await again.close();
    }
    // Refused means refused: nothing was appended.
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(1);
  });
});
