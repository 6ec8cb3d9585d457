/**
 * The jump-host lab for tests (test/lab/jump.sh): hv1 reachable from the host, hv2 only from hv1, and guests
 * inner-1, inner-3 behind hv1 and inner-2 behind hv1 then hv2, none routable from the host.
 *
 *   const jump = await ensureJumpLab();   // `jump.sh up` once per test file
 *   jump.uri, jump.jumpHosts.hv1.address, jump.guests['inner-2'].via  // ['hv1', 'hv2']
 *   await jumpFault('hv1', 'stop'); … await jumpFault('hv1', 'clear');
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isRoot, labDir, REPO_ROOT, run } from './lab.js';

export const JUMP_SCRIPT = path.join(REPO_ROOT, 'test', 'lab', 'jump.sh');

const JumpLab = z.object({
  uri: z.string(),
  identityFile: z.string(),
  /** Every node's host key by address: jump hosts and guests. */
  knownHostsFile: z.string(),
  jumpHosts: z.record(z.string(), z.object({ address: z.string(), namespace: z.string(), sshdLog: z.string() })),
  guests: z.record(z.string(), z.object({ address: z.string(), namespace: z.string(), via: z.array(z.string()) })),
});
export type JumpLab = z.infer<typeof JumpLab>;

async function jumpScript(args: readonly string[]): Promise<string> {
  const r = await run('bash', [JUMP_SCRIPT, ...args], { timeoutMs: 120_000, env: { ...process.env, CLONEBOX_LAB_DIR: labDir() } });
  if (r.code !== 0) throw new Error(`jump.sh ${args.join(' ')} failed: ${r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

let lab: Promise<JumpLab> | undefined;

/** Brings the jump lab up (or back to its baseline) once per test file, and describes it. */
export function ensureJumpLab(): Promise<JumpLab> {
  lab ??= (async () => {
    if (!isRoot()) throw new Error('the jump lab needs root for network namespaces');
    await jumpScript(['up']);
    return JumpLab.parse(JSON.parse(await readFile(path.join(labDir(), 'jump', 'jump.json'), 'utf8')));
  })();
  lab.catch(() => {
    lab = undefined;
  });
  return lab;
}

/** `jump.sh fault NODE …`: ('hv1', 'stop') / ('hv1', 'start') / ('hv1', 'link', 'down') / ('hv1', 'clear'). */
export async function jumpFault(node: string, ...args: string[]): Promise<void> {
  await jumpScript(['fault', node, ...args]);
}
