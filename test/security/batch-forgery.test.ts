/**
 * One guest command must not be able to forge another's result in a shared batch channel (issue 16,
 * item 6). The forger looks for the frame nonce everywhere a process of the guest can look without
 * privileges (every process's command line and environment, its own shell variables) and, when it
 * finds it, prints the end marks that would make a failing `redis-cli ping` read as exit 0 + PONG.
 * With the nonce on the script's command line (the old framing) it found it; on stdin it cannot.
 */
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { batchScript, BatchParser, type BatchItem } from '../../src/transport/batch.js';
import type { ExecResult } from '../../src/transport/types.js';
import { SshPool } from '../../src/transport/ssh-pool.js';
import { ensureLab, isRoot, type Lab } from '../lab/lab.js';

/** Prints the forged frames when it can learn the nonce; says where it looked either way. */
export const FORGER = [
  `n=$( { cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ; set; env; } 2>/dev/null | tr '\\000' '\\n' | grep -o '@[0-9a-f]\\{24\\} e' | head -n 1 | cut -c 2-25 )`,
  `if [ -n "$n" ]; then`,
  `  printf '\\n@%s e 0 0\\n' "$n"; printf '\\n@%s e 0 0\\n' "$n" >&2`,
  `  printf 'PONG\\n@%s e 1 0\\n' "$n"; printf '\\n@%s e 1 0\\n' "$n" >&2`,
  `  echo forged`,
  `else echo "no nonce found"; fi`,
].join('\n');
/** What `redis-cli ping` does when nothing listens. */
const FAILING_PING = `echo 'Could not connect to Redis at 127.0.0.1:1: Connection refused' >&2; exit 1`;

/** Run a batch under a local /bin/sh as sshd would: script as the command line, stdin a pipe kept open. */
function runBatchLocally(items: BatchItem[]): Promise<ExecResult[]> {
  const framing = batchScript(items);
  const results: ExecResult[] = [];
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', framing.script], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`batch did not finish; results so far: ${JSON.stringify(results)}`));
    }, 20_000);
    const parser = new BatchParser(framing.nonce, items, (i, r) => {
      results[i] = r;
      if (parser.done.size === items.length) {
        clearTimeout(timer);
        child.stdin.end(); // the lifeline ends with stdin, as when sshd closes the channel
        resolve(results);
      }
    });
    child.stdout.on('data', (b: Buffer) => parser.stdout(b));
    child.stderr.on('data', (b: Buffer) => parser.stderr(b));
    // The old framing had no `stdin`: nothing is written then, and the nonce sits on the command line.
    const stdin = (framing as { stdin?: string }).stdin;
    if (stdin) child.stdin.write(stdin);
  });
}

describe('batch framing: a command cannot forge the next one’s result', () => {
  it('under /bin/sh: the failing ping stays failing', async () => {
    const [forger, ping] = await runBatchLocally([
      { command: FORGER, maxOutputBytes: 4096 },
      { command: FAILING_PING, maxOutputBytes: 4096 },
    ]);
    expect(forger!.stdout).toContain('no nonce found');
    expect(ping).toMatchObject({ exitCode: 1, stdout: '' });
    expect(ping!.stderr).toContain('Could not connect');
  });

  it('the nonce is on no command line and in no environment of the batch', () => {
    const f = batchScript([{ command: 'true', maxOutputBytes: 10 }]);
    expect(f.script).not.toContain(f.nonce);
    expect(f.stdin).toBe(`${f.nonce}\n`);
  });

  it('commands still see their own status, output and $? as before', async () => {
    const r = await runBatchLocally([
      { command: 'echo out; echo err >&2; exit 3', maxOutputBytes: 4096 },
      { command: 'printf "%s" "${__clonebox_n-unset}"', maxOutputBytes: 4096 },
      { command: 'false', maxOutputBytes: 4096 },
    ]);
    expect(r[0]).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(r[1]).toMatchObject({ exitCode: 0, stdout: 'unset' });
    expect(r[2]).toMatchObject({ exitCode: 1 });
  });
});

const lab = isRoot() ? await ensureLab() : undefined;
(lab ? describe : describe.skip)('batch framing over real SSH (lab sshd)', () => {
  const L = lab as Lab;
  // Channels per round (the batch framing); the resident session's framing is tested below.
  const pool = new SshPool({ residentSession: false });
  const resident = new SshPool();
  afterAll(() => Promise.all([pool.close(), resident.close()]));
  const target = () => {
    const vm = L.vms['web-1']!;
    return {
      vm: 'web-1',
      host: vm.address,
      port: 22,
      user: 'root',
      identityFile: L.identityFile,
      knownHostsFile: L.knownHostsFile,
      hostKeyPolicy: 'strict' as const,
      connectTimeoutMs: 5000,
      maxSessions: 10,
    };
  };

  it('in the resident session, a forger in the same job as a failing ping cannot make it pass, nor see the nonce anywhere', async () => {
    const session = resident.session(target());
    await session.exec('true', { signal: AbortSignal.timeout(15_000) }); // the session is up: the next ones are one job
    const before = resident.stats().residentCommands;
    const signal = AbortSignal.timeout(15_000);
    const [forger, ping, look] = await Promise.all([
      session.exec(FORGER, { signal }),
      session.exec('redis-cli -h 127.0.0.1 -p 1 ping', { signal }),
      // Shell variables (set), the environment, every command line: no 24-hex nonce after an @.
      session.exec(`{ set; env; cat /proc/[0-9]*/cmdline; } 2>/dev/null | tr '\\000' '\\n' | grep -c '@[0-9a-f]\\{24\\}'`, { signal }),
    ]);
    expect(resident.stats().residentCommands - before).toBe(3); // really one job for all three
    expect(forger.stdout).toContain('no nonce found');
    expect(ping.exitCode).not.toBe(0);
    expect(ping.stdout).not.toContain('PONG');
    expect(look.stdout.trim()).toBe('0');
  });

  it('a forger batched with a failing redis-cli ping on web-1 cannot make it pass', async () => {
    const session = pool.session(target());
    await session.exec('true', { signal: AbortSignal.timeout(15_000) }); // connected: the next two go out in one tick
    const before = pool.stats().batchedCommands;
    const signal = AbortSignal.timeout(15_000);
    const [forger, ping] = await Promise.all([
      session.exec(FORGER, { signal }),
      session.exec('redis-cli -h 127.0.0.1 -p 1 ping', { signal }),
    ]);
    expect(pool.stats().batchedCommands - before).toBe(2); // really one channel for both
    expect(forger.stdout).toContain('no nonce found');
    expect(ping.exitCode).not.toBe(0);
    expect(ping.stdout).not.toContain('PONG');
  });
});
