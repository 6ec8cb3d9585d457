/**
 * `health check`'s progress line through the real CLI, on a real pseudo-terminal (util-linux `script`), against
 * the lab: a check slowed to 2 s so the round outlasts the 1 s delay. What a person sees on the terminal is
 * replayed through a small terminal model (\r, erase line, newline) to check that the table is left intact;
 * with stderr not a terminal, or TERM=dumb, nothing of it appears, and stdout is the same bytes either way.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureLab, isRoot, REPO_ROOT, run, type Lab } from '../lab/lab.js';
import { labConfigYaml, writeTempConfig } from '../support/fleet-run.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: progress tests skipped: the lab needs root (network namespaces)');

const VMS = ['web-1', 'web-2', 'db-1'];
const ERASE = '\r\x1b[2K';
const PROGRESS = /clonebox: [0-3]\/3 VMs checked(?: · slowest still running: (?:web-1|web-2|db-1) \(\d+\.\ds\))?/;

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** A config whose one check takes 2 s in every guest (timeouts generous: a loaded machine must not turn a VM UNKNOWN). */
async function slowConfig(L: Lab): Promise<string> {
  const ssh = { user: 'root', identity_file: L.identityFile, known_hosts: L.knownHostsFile, host_key_policy: 'strict', connect_timeout: '20s' };
  return writeTempConfig(labConfigYaml(L, [{ name: 'slow', type: 'command', exec: 'sleep 2; echo ok', expected_output: 'ok', timeout: '30s' }], { ssh }));
}

/**
 * Run `shellCommand` on a pseudo-terminal (the terminal is 120 columns wide); returns what the terminal
 * received. Not under CI and not TERM=dumb unless `env` says so: those turn the line off by design.
 */
function onTerminal(shellCommand: string, env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env, CI: undefined, NO_COLOR: '1', FORCE_COLOR: undefined, TERM: 'xterm', SHELL: '/bin/sh', ...env };
  return run('script', ['-qfec', `stty cols 120 rows 40; ${shellCommand}`, '/dev/null'], { timeoutMs: 90_000, env: base as NodeJS.ProcessEnv });
}

const cli = (args: string[]) => ['node', BIN, ...args].map(q).join(' ');

/** What the screen shows at the end: \r goes to column 0, ESC[2K erases the line, \n (or \r\n) starts a new one. */
function screen(raw: string): string[] {
  const lines = [''];
  let col = 0;
  for (const [token] of raw.matchAll(/\r?\n|\r|\x1b\[2K|\x1b\[[0-9;]*[A-Za-z]|[^\r\n\x1b]+|\x1b/g)) {
    if (token === '\n' || token === '\r\n') {
      lines.push('');
      col = 0;
    } else if (token === '\r') col = 0;
    else if (token === '\x1b[2K') lines[lines.length - 1] = '';
    else if (token.startsWith('\x1b')) throw new Error(`an escape the progress line does not use: ${JSON.stringify(token)}`);
    else {
      const line = lines[lines.length - 1]!.padEnd(col);
      lines[lines.length - 1] = line.slice(0, col) + token + line.slice(col + token.length);
      col += token.length;
    }
  }
  return lines;
}

suite('health check progress on a terminal', () => {
  const L = lab as Lab;

  it('a slow check: the line shows VMs done / total and the slowest VM, and is gone before the table', async () => {
    const config = await slowConfig(L);
    const r = await onTerminal(cli(['health', 'check', ...VMS, '--config', config]));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(PROGRESS);
    expect(r.stdout).toMatch(/slowest still running: (?:web-1|web-2|db-1) \(\d+\.\ds\)/);
    // The table starts on a line the progress has just erased, and nothing of the progress follows it.
    const afterLastErase = r.stdout.slice(r.stdout.lastIndexOf(ERASE) + ERASE.length);
    expect(afterLastErase).toMatch(/^db-1 /);
    expect(afterLastErase).not.toMatch(/VMs checked/);
    const shown = screen(r.stdout);
    expect(shown.join('\n')).not.toMatch(/VMs checked/);
    expect(shown[0]).toMatch(/^db-1 \S+ +✔ HEALTHY +1\/1 healthy/);
    for (const vm of VMS) expect(shown).toContainEqual(expect.stringMatching(new RegExp(`^${vm} .*HEALTHY`)));
    expect(shown).toContainEqual(expect.stringMatching(/^Fleet HEALTHY: 3 VMs/));
  });

  it('stdout is the same bytes with the line on: --json to a file while stderr is the terminal', async () => {
    const config = await slowConfig(L);
    const dir = path.dirname(config);
    const out = path.join(dir, 'report.json');
    const r = await onTerminal(`${cli(['health', 'check', ...VMS, '--json', '--config', config])} >${q(out)}`);
    expect(r.code).toBe(0);
    // The terminal got only the progress, erased at the end.
    expect(r.stdout).toMatch(PROGRESS);
    expect(r.stdout.endsWith(ERASE)).toBe(true);
    const json = await readFile(out, 'utf8');
    expect(json).not.toMatch(/[\r\x1b]/);
    expect(JSON.parse(json).summary).toMatchObject({ overall_status: 'HEALTHY', vms: { total: 3, healthy: 3 } });
  });

  it('with --wait the gate line and the round progress take turns; the final line stands on its own', async () => {
    const config = await slowConfig(L);
    const r = await onTerminal(cli(['health', 'check', ...VMS, '--wait', '60s', '--wait-interval', '500ms', '--config', config]));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(PROGRESS);
    const shown = screen(r.stdout);
    expect(shown.join('\n')).not.toMatch(/VMs checked/);
    expect(shown[0]).toMatch(/^clonebox: gate passed after \S+ \(\d+ rounds?\)$/);
    expect(shown[1]).toMatch(/^db-1 .*HEALTHY/);
  });
});

suite('health check progress: nothing where it cannot be redrawn in place', () => {
  const L = lab as Lab;

  it('stderr piped (CI logs, cron): nothing on stderr, the table as always', async () => {
    const config = await slowConfig(L);
    const env = { ...process.env, CI: undefined, NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: 'xterm' };
    const r = await run('node', [BIN, 'health', 'check', ...VMS, '--config', config], { timeoutMs: 90_000, env: env as NodeJS.ProcessEnv });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(/[\r\x1b]/);
    expect(r.stdout).toMatch(/^Fleet HEALTHY: 3 VMs/m);
  });

  it('stdout on the terminal, stderr to a file: the file stays empty, the terminal shows only the table', async () => {
    const config = await slowConfig(L);
    const err = path.join(path.dirname(config), 'stderr.txt');
    const r = await onTerminal(`${cli(['health', 'check', ...VMS, '--config', config])} 2>${q(err)}`);
    expect(r.code).toBe(0);
    expect(await readFile(err, 'utf8')).toBe('');
    expect(r.stdout).not.toMatch(/VMs checked|\x1b\[2K/);
    expect(r.stdout).toMatch(/^db-1 .*HEALTHY/);
  });

  // CI=true takes the same path (test/cli/progress.test.ts has both cases of `interactive`).
  it('TERM=dumb (no in-place redraw): nothing', async () => {
    const config = await slowConfig(L);
    const r = await onTerminal(cli(['health', 'check', ...VMS, '--config', config]), { TERM: 'dumb' });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/VMs checked|\x1b\[2K/);
    expect(r.stdout).toMatch(/^Fleet HEALTHY: 3 VMs/m);
  });
});
