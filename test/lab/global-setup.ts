/**
 * vitest globalSetup: brings the fleet lab up once before any test file runs, so the cold start
 * (~5 s) is paid once per run; each file's `ensureLab()` then only checks it (under 1 s) and undoes
 * faults a previous file left. Teardown leaves the lab up for the next run: `fleet.sh down` is manual.
 *
 * Register in vitest.config.ts: `test: { globalSetup: ['test/lab/global-setup.ts'] }`.
 */
import { ensureLab, isRoot } from './lab.js';

export async function setup(): Promise<void> {
  if (!isRoot()) {
    console.warn('clonebox: not root, so the fleet lab is not started and the tests that need it are skipped');
    return;
  }
  const lab = await ensureLab();
  console.info(`clonebox: fleet lab up in ${lab.dir} (${Object.keys(lab.domains).length} domains at ${lab.uri})`);
}

export async function teardown(): Promise<void> {
  // Left up on purpose: the next run starts warm. `bash test/lab/fleet.sh down` removes it.
}
