#!/usr/bin/env node
/**
 * What a real `health watch` round allocates (garbage included), by function and by the nearest dist/ file on the
 * stack, and its CPU: `runWatch` in this process at a short interval (default 3 s), the inspector's sampling heap
 * profiler over rounds 3 and 4, objects collected by minor and major GCs included. After an idle stretch V8 shrinks
 * the young generation, so a watch round's CPU at 30 s follows what it allocates (bench/README.md). Needs a fleet:
 * `bench/fleet --sizes 200 --methods cbx --serve 1200`.
 *
 *   ip netns exec cbx-bench node bench/watch-alloc.mjs /tmp/cbx-bench/n200/clonebox3.yaml [interval-seconds]
 */
import { Session } from 'node:inspector/promises';
import { watchInProcess } from './watch-in-process.mjs';

const [config, intervalArg = '3'] = process.argv.slice(2);
if (!config) {
  console.error('usage: node bench/watch-alloc.mjs CONFIG [interval-seconds]');
  process.exit(2);
}
const FROM = 3;
const TO = 5;
const session = new Session();
session.connect();
let cpu0;

async function onRound(rounds) {
  if (rounds === FROM) {
    cpu0 = process.cpuUsage();
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  if (rounds === TO) {
    const cpu = process.cpuUsage(cpu0);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    report(profile, TO - FROM, cpu);
  }
}

function report(profile, n, cpu) {
  const self = new Map();
  const byFile = new Map();
  let total = 0;
  (function walk(node, stack) {
    const f = node.callFrame;
    const key = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber}`;
    total += node.selfSize;
    self.set(key, (self.get(key) ?? 0) + node.selfSize);
    const file = (stack.find((u) => u.includes('/dist/')) ?? f.url) || '(native)';
    const fileKey = file.replace(/^.*\/dist\//, 'dist/');
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c, f.url.includes('/dist/') ? [f.url, ...stack] : stack);
  })(profile.head, []);
  const kb = (v) => `${(v / n / 1024).toFixed(0).padStart(8)} KB`;
  console.log(`CPU per round (profiler on): ${((cpu.user + cpu.system) / n / 1000).toFixed(0)} ms`);
  console.log(`allocated per round: ${(total / n / 1048576).toFixed(2)} MB`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(kb(v), k);
  console.log('--- by nearest dist/ file on the stack');
  for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(kb(v), k);
}

await watchInProcess({ config, intervalS: Number(intervalArg), rounds: TO + 1, onRound });
