#!/usr/bin/env node
/**
 * Helper of bench/fleet.mjs (not run by hand): keeps ONE SshPool and one libvirt backend open, the
 * way `health watch` does, and runs a full fleet round each time a line arrives on stdin. It answers
 * one JSON line per round: wall ms, its own CPU ms (user+system), RSS, and connections opened during
 * the round. The first round is the warm-up (it opens the connections); later ones are steady rounds.
 *
 *   node bench/fleet-steady.mjs --config FILE [--concurrency N]      (stdin: one line per round; EOF ends)
 */
import { createInterface } from 'node:readline';
import { loadConfig } from '../dist/config/load.js';
import { libvirtUri } from '../dist/config/resolve.js';
import { runFleetRound } from '../dist/engine/fleet.js';
import { openBackend } from '../dist/inventory/open.js';
import { SshPool } from '../dist/transport/ssh-pool.js';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const config = await loadConfig(opt('config', '.clonebox.yaml'));
const concurrencyArg = opt('concurrency', '');
const uri = libvirtUri(config, undefined);
let backend;
const pool = new SshPool({});
const rl = createInterface({ input: process.stdin });
for await (const _line of rl) {
  const opened0 = pool.stats().connectionsOpened;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { report } = await runFleetRound({
    config,
    selectors: [],
    all: true,
    // Empty: the library's own default (the same one the CLI flag uses).
    ...(concurrencyArg ? { concurrency: Number(concurrencyArg) } : { concurrency: DEFAULT_CONCURRENCY() }),
    backend: () => (backend ??= openBackend(uri, 'auto', () => {})),
    pool,
  });
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const s = report.summary;
  process.stdout.write(
    `${JSON.stringify({
      wall_ms: Math.round(wall * 10) / 10,
      cpu_ms: Math.round((cpu.user + cpu.system) / 100) / 10,
      rss_bytes: process.memoryUsage.rss(),
      heap_used: process.memoryUsage().heapUsed,
      heap_total: process.memoryUsage().heapTotal,
      external: process.memoryUsage().external,
      max_rss_kb: process.resourceUsage().maxRSS,
      opened: pool.stats().connectionsOpened - opened0,
      status: s.overall_status,
      checks: s.checks,
    })}\n`,
  );
}
await pool.close();
if (backend) await (await backend.catch(() => undefined))?.close();

/** The CLI's `--concurrency` default (src/commands/health/check.ts). */
function DEFAULT_CONCURRENCY() {
  return 32;
}
