/**
 * The resident command session (src/transport/resident.ts) against a real OpenSSH sshd on 127.0.0.1. No mocks:
 * processes are looked up in /proc, the guest loop is stopped and killed with real signals.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SshPool } from '../../src/transport/ssh-pool.js';
import { TransportError } from '../../src/transport/types.js';
import { eventually, processesWith, uniqueSleep } from '../support/procs.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const signal = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

/** The resident loop's shell: its command line holds the script (and its helper's name). */
const loopPids = (): Promise<number[]> => processesWith('__cbx_children()');

describe('the resident command session against a real sshd', () => {
  let sshd: TestSshd;
  let pool: SshPool;
  const logs: string[] = [];

  beforeAll(async () => {
    sshd = await startSshd({ maxSessions: 10 });
    pool = new SshPool({ log: (m) => logs.push(m) });
  });
  afterAll(async () => {
    await pool?.close();
    await sshd?.cleanup();
  });

  it('runs round after round on ONE channel: results apart, caps, traps, stdin /dev/null, a syntax error its own', async () => {
    const session = pool.session(sshd.target());
    const round = () =>
      Promise.all([
        session.exec('echo out; echo err >&2; exit 3', { signal: signal() }),
        session.exec('yes | head -c 100000', { signal: signal(), maxOutputBytes: 10 }),
        session.exec('printf "no newline"; trap "echo trapped" EXIT', { signal: signal() }),
        session.exec('cat; echo late', { signal: signal() }),
        session.exec('if then fi', { signal: signal() }),
        session.exec('cat <<EOF\n  two\n  lines \\\\ kept\nEOF', { signal: signal() }),
        session.exec('cd /; exit 0', { signal: signal() }),
        session.exec('pwd', { signal: signal() }),
      ]);
    const before = pool.stats();
    for (let i = 0; i < 3; i++) {
      const [a, c, d, e, syntax, heredoc, cd, pwd] = await round();
      expect(a).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', stdoutTruncated: false, stderrTruncated: false });
      expect(c).toMatchObject({ exitCode: 0, stdout: 'y\ny\ny\ny\ny\n', stdoutTruncated: true });
      expect(d).toMatchObject({ exitCode: 0, stdout: 'no newlinetrapped\n', stderr: '' });
      expect(e).toMatchObject({ exitCode: 0, stdout: 'late\n' });
      expect(syntax.exitCode).toBe(2);
      expect(syntax.stderr).toMatch(/syntax|unexpected/i);
      expect(heredoc).toMatchObject({ exitCode: 0, stdout: '  two\n  lines \\ kept\n' });
      expect(cd.exitCode).toBe(0);
      // `cd` in one command does not move the next one.
      expect(pwd.stdout).not.toBe('/\n');
    }
    const after = pool.stats();
    expect(after.commandChannels - before.commandChannels).toBe(0);
    expect(after.residentSessions - before.residentSessions).toBe(1);
    expect(after.residentJobs - before.residentJobs).toBe(3);
    expect(after.residentCommands - before.residentCommands).toBe(24);
    expect(after.connectionsOpened).toBe(1);
  });

  it('simple commands run in the loop\'s own shell (the same parent every round); anything else in a subshell', async () => {
    const session = pool.session(sshd.target());
    const parents = async () => {
      const [inPlace, sub] = await Promise.all([
        session.exec(`sh -c 'echo $PPID'`, { signal: signal() }),
        session.exec(`sh -c 'echo $PPID'; true`, { signal: signal() }),
      ]);
      return [inPlace.stdout.trim(), sub.stdout.trim()];
    };
    const [a1, s1] = await parents();
    const [a2, s2] = await parents();
    expect(a1).toMatch(/^\d+$/);
    expect(a2).toBe(a1);
    expect(s1).not.toBe(a1);
    expect(s2).not.toBe(s1);
    // A failing simple command, a missing program, a refused word: their own statuses; the session goes on.
    const [fail, missing, exit] = await Promise.all([
      session.exec('ls /nonexistent/clonebox', { signal: signal() }),
      session.exec('no-such-program-clonebox', { signal: signal() }),
      session.exec('exit 4', { signal: signal() }),
    ]);
    expect(fail.exitCode).not.toBe(0);
    expect(fail.stderr).toMatch(/nonexistent/);
    expect(missing.exitCode).toBe(127);
    expect(exit.exitCode).toBe(4);
    expect((await parents())[0]).toBe(a1);
  });

  it('reads a plain file without a process: `cat /proc/self/comm` names the shell, not cat', async () => {
    const session = pool.session(sshd.target());
    const [self, meminfo, missing] = await Promise.all([
      session.exec('cat /proc/self/comm', { signal: signal() }),
      session.exec('cat /proc/meminfo', { signal: signal() }),
      session.exec('cat /nonexistent/clonebox', { signal: signal() }),
    ]);
    expect(self.exitCode).toBe(0);
    expect(self.stdout.trim()).toMatch(/^(bash|dash|sh|ash|ksh|mksh)$/);
    expect(meminfo.exitCode).toBe(0);
    expect(meminfo.stdout).toMatch(/^MemTotal:\s+\d+ kB\n/);
    expect(meminfo.stdout.endsWith('\n')).toBe(true);
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(/nonexistent/);
    // The same command with anything else in it is an ordinary command.
    expect((await session.exec('cat /proc/self/comm </dev/null', { signal: signal() })).stdout.trim()).toBe('cat');
  });

  it('a running command past its deadline is killed in the guest; the session lives on and the commands behind it still run', async () => {
    const session = pool.session(sshd.target());
    await session.exec('true', { signal: signal() });
    const marker = uniqueSleep();
    const before = pool.stats();
    const [a, b, c] = await Promise.allSettled([
      session.exec('echo first', { signal: signal() }),
      session.exec(`sleep ${marker} & sleep ${marker}; echo never`, { signal: AbortSignal.timeout(400) }),
      session.exec('echo after', { signal: signal() }),
    ]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'first\n' } });
    expect(b).toMatchObject({ status: 'rejected', reason: { name: 'TimeoutError' } });
    expect(c).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'after\n' } });
    // Both sleeps (the command's own and the one it put in the background) are gone.
    expect(await eventually(async () => (await processesWith(marker)).length === 0, 3000)).toBe(true);
    const after = pool.stats();
    expect(after.residentKills - before.residentKills).toBe(1);
    // The session was kept: the next round runs on it, no new session, no channel.
    expect((await session.exec('echo still', { signal: signal() })).stdout).toBe('still\n');
    const later = pool.stats();
    expect(later.residentSessions).toBe(before.residentSessions);
    expect(later.connectionsOpened).toBe(before.connectionsOpened);
  });

  it('a command that never started before its deadline is UNKNOWN ("did not start"); the slow one ahead runs once, to its end', async () => {
    const session = pool.session(sshd.target());
    const marker = uniqueSleep();
    const file = `/tmp/clonebox-resident-runs-${marker}`;
    const [slow, starved, after] = await Promise.allSettled([
      session.exec(`echo run >> ${file}; sleep 1.5; echo slow done`, { signal: signal() }),
      session.exec('echo never started', { signal: AbortSignal.timeout(400) }),
      session.exec(`echo after >> ${file}.after; echo after`, { signal: signal() }),
    ]);
    expect(slow).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'slow done\n' } });
    expect(starved.status).toBe('rejected');
    const reason = (starved as PromiseRejectedResult).reason as TransportError;
    expect(reason).toBeInstanceOf(TransportError);
    expect(reason.kind).toBe('channel');
    expect(reason.message).toMatch(/did not start within its timeout/);
    expect(after).toMatchObject({ status: 'fulfilled', value: { exitCode: 0, stdout: 'after\n' } });
    const runs = await session.exec(`cat ${file} ${file}.after; rm -f ${file} ${file}.after`, { signal: signal() });
    // Each ran exactly once.
    expect(runs.stdout).toBe('run\nafter\n');
  });

  it('a command that signals the session shell ($$) ends that session only; the next round opens a new one', async () => {
    const session = pool.session(sshd.target());
    await session.exec('true', { signal: signal() });
    const before = pool.stats();
    await session.exec('kill -KILL $$', { signal: signal() }).catch(() => undefined);
    expect(await eventually(async () => (await session.exec('echo back', { signal: signal() }).catch(() => ({ stdout: '' }))).stdout === 'back\n', 5000)).toBe(true);
    const after = pool.stats();
    expect(after.residentSessions - before.residentSessions).toBe(1);
    expect(after.connectionsOpened).toBe(before.connectionsOpened);
  });

  it('a loop killed from outside between rounds is replaced transparently', async () => {
    const session = pool.session(sshd.target());
    await session.exec('true', { signal: signal() });
    const pids = await loopPids();
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    // The channel closes; the next command gets a fresh session.
    expect(await eventually(async () => (await session.exec('echo fresh', { signal: signal() }).catch(() => ({ stdout: '' }))).stdout === 'fresh\n', 5000)).toBe(true);
  });

  it('closing the pool kills a command still running in the guest', async () => {
    const own = new SshPool();
    const session = own.session(sshd.target());
    const marker = uniqueSleep();
    const pending = session.exec(`sleep ${marker}`, { signal: signal(60_000) }).catch((e: unknown) => e);
    expect(await eventually(async () => (await processesWith(`sleep ${marker}`)).length > 0, 5000)).toBe(true);
    await own.close();
    expect(await pending).toBeInstanceOf(TransportError);
    expect(await eventually(async () => (await processesWith(marker)).length === 0, 3000)).toBe(true);
  });

  it('a wedged loop (stopped) is "guest not reached" (UNKNOWN), the connection is dropped and redialled next time', async () => {
    const own = new SshPool();
    onTestFinished(() => own.close());
    const session = own.session(sshd.target());
    await session.exec('true', { signal: signal() });
    const pids = await loopPids();
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      const err = await session.exec('echo hello', { signal: AbortSignal.timeout(500) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).phase).toBe('channel');
      expect((err as TransportError).message).toMatch(/guest not reached/);
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch (err) {
          // Already gone: dropping the connection orphaned the stopped loop's process group, and the kernel hangs up
          // such a group (SIGHUP, then SIGCONT) on its own.
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    }
    expect((await session.exec('echo again', { signal: signal() })).stdout).toBe('again\n');
    expect(own.stats().connectionsOpened).toBe(2);
  });

  it('ssh.max_sessions 1 keeps a channel per round (the session would hold the only one)', async () => {
    const own = new SshPool();
    onTestFinished(() => own.close());
    const session = own.session(sshd.target({ maxSessions: 1 }));
    expect((await session.exec('echo one', { signal: signal() })).stdout).toBe('one\n');
    expect(own.stats()).toMatchObject({ residentSessions: 0, commandChannels: 1 });
  });

  it('a busy session draws no keepalive probes; an idle connection still does (ServerAliveInterval semantics)', async () => {
    // Count the probes ssh2 sends (its Protocol.ping) in this worker.
    const Protocol = createRequire(import.meta.url)('ssh2/lib/protocol/Protocol.js') as { prototype: { ping: () => void } };
    const ping = Protocol.prototype.ping;
    let pings = 0;
    Protocol.prototype.ping = function (this: unknown) {
      pings++;
      return ping.call(this);
    };
    onTestFinished(() => {
      Protocol.prototype.ping = ping;
    });
    const own = new SshPool({ keepaliveMs: 400 });
    onTestFinished(() => own.close());
    const session = own.session(sshd.target());
    // A job every 100 ms for 2 s (5 keepalive intervals): each answer restarts the countdown.
    const end = Date.now() + 2000;
    while (Date.now() < end) {
      expect((await session.exec('echo busy', { signal: signal() })).stdout).toBe('busy\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(own.stats()).toMatchObject({ residentSessions: 1, connectionsOpened: 1 });
    expect(pings).toBe(0);
    // Idle for 3 intervals: the probes go on, and their answers keep the connection.
    await new Promise((r) => setTimeout(r, 1400));
    expect(pings).toBeGreaterThanOrEqual(2);
    expect((await session.exec('echo still', { signal: signal() })).stdout).toBe('still\n');
    expect(own.stats().connectionsOpened).toBe(1);
  });
});
