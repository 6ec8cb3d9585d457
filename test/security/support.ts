/** Running the built CLI for the security tests: with a working directory (where an injected `touch` would land). */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, type RunResult } from '../lab/lab.js';

export const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `clonebox-${prefix}-`));
}

export function clonebox(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const env = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, ...opts.env } as NodeJS.ProcessEnv;
  return new Promise((resolve, reject) => {
    execFile(
      'node',
      [BIN, ...args],
      { cwd: opts.cwd ?? REPO_ROOT, env, timeout: opts.timeoutMs ?? 90_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr, code: 0 });
        if (typeof error.code === 'string') return reject(error);
        resolve({ stdout, stderr, code: typeof error.code === 'number' ? error.code : 1 });
      },
    );
  });
}
