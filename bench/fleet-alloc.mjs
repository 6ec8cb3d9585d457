#!/usr/bin/env node
/**
 * What one steady fleet round allocates (garbage included), by function and by the nearest dist/ file on the stack:
 * two warm-up rounds on one SshPool (as watch keeps it), then the inspector's sampling heap profiler over two rounds
 * with the objects collected by minor and major GCs included. After an idle stretch V8 shrinks the young generation,
 * so a watch round's CPU follows what it allocates (bench/README.md). Needs a fleet: `bench/fleet --serve 600`.
 *
 *   ip netns exec cbx-bench node bench/fleet-alloc.mjs /tmp/cbx-bench/n200/clonebox3.yaml
 */
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../dist/config/load.js';
import { libvirtUri } from '../dist/config/resolve.js';
import { runFleetRound } from '../dist/engine/fleet.js';
import { openBackend } from '../dist/inventory/open.js';
import { SshPool } from '../dist/transport/ssh-pool.js';
const config = await loadConfig(process.argv[2]);
const uri = libvirtUri(config, undefined);
let backend;
const pool = new SshPool({});
const round = () => runFleetRound({ config, selectors: [], all: true, concurrency: 32, backend: () => (backend ??= openBackend(uri, 'auto', () => {})), pool });
await round(); await round();
const s = new Session(); s.connect();
await s.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
for (let i = 0; i < 2; i++) await round();
const { profile } = await s.post('HeapProfiler.stopSampling');
const self = new Map(); let total = 0;
const byFile = new Map();
(function walk(n, stack) {
  const f = n.callFrame; const key = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber}`;
  const sz = n.selfSize; total += sz; self.set(key, (self.get(key) ?? 0) + sz);
  const file = stack.find((u) => u.includes('/dist/')) ?? f.url;
  const fk = (file || '(native)').replace(/^.*\/dist\//, 'dist/');
  byFile.set(fk, (byFile.get(fk) ?? 0) + sz);
  for (const c of n.children) walk(c, f.url.includes('/dist/') ? [f.url, ...stack] : stack);
})(profile.head, []);
console.log('allocated per round MB', (total / 2 / 1048576).toFixed(1));
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / 2 / 1024).toFixed(0).padStart(8), 'KB', k);
console.log('--- by nearest dist/ file on the stack');
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log((v / 2 / 1024).toFixed(0).padStart(8), 'KB', k);
await pool.close(); if (backend) await (await backend).close();
