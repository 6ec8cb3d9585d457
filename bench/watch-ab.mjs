#!/usr/bin/env node
/**
 * Two real `health watch` runs side by side over the same fleet, at once: CPU and minor page faults per round of
 * each (from /proc at each `round` line). Run after run this machine's noise (±0.15 s per round at N=200) hides any
 * change under ~20 %; side by side it hits both alike. Compare two checkouts, or one with different node flags.
 * Needs a fleet: `bench/fleet --sizes 200 --methods cbx --serve 1200`.
 *
 *   ip netns exec cbx-bench node bench/watch-ab.mjs CONFIG INTERVAL_S ROUNDS SKIP 'BIN_A[|node-flag|NAME=value|+arg…]' 'BIN_B[|…]'
 *   e.g. … /tmp/cbx-bench/n200/clonebox3.yaml 30 12 2 /tmp/old/bin/clonebox bin/clonebox
 *
 * Tokens after BIN: `NAME=value` is the run's environment, `+ARG` an argument of its `health watch` (`+--config=F`
 * replaces CONFIG for that run), anything else a node flag.
 *
 * Prints each run's mean CPU (s) and faults per round over the rounds after SKIP, and each round's CPU.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [config, intervalS, rounds, skip, ...runs] = process.argv.slice(2);
if (!config || runs.length === 0) {
  console.error("usage: node bench/watch-ab.mjs CONFIG INTERVAL_S ROUNDS SKIP 'BIN[|flag…]' …");
  process.exit(2);
}

function stat(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { cpu: (Number(f[11]) + Number(f[12])) / 100, faults: Number(f[7]) };
}

function watch(spec) {
  const [bin, ...rest] = spec.split('|');
  // NAME=value tokens are the run's environment, +ARG tokens its watch's arguments (`+--config=other.yaml` for a run
  // with its own config); the others, node flags.
  const isEnv = (t) => /^[A-Z_][A-Z0-9_]*=/.test(t);
  const env = Object.fromEntries(rest.filter(isEnv).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]));
  const cli = rest.filter((t) => t.startsWith('+')).map((t) => t.slice(1));
  const flags = rest.filter((t) => !isEnv(t) && !t.startsWith('+'));
  const own = cli.some((t) => t.startsWith('--config'));
  return new Promise((resolve) => {
    const args = [...flags, bin, 'health', 'watch', '--all', '--no-store', '--json', '--interval', `${intervalS}s`, '--rounds', rounds, ...(own ? [] : ['--config', config]), ...cli];
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...env } });
    // Bounded: the rounds plus a margin, then it is stopped.
    const stop = setTimeout(() => c.kill('SIGINT'), (Number(rounds) + 2) * Number(intervalS) * 1500 + 60_000);
    const marks = [];
    createInterface({ input: c.stdout }).on('line', (line) => {
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event.type === 'round') marks.push({ round: event.round, ...stat(c.pid) });
    });
    c.on('close', () => {
      clearTimeout(stop);
      const kept = marks.filter((m) => m.round >= Number(skip));
      if (kept.length < 2) return resolve(`${spec}: only ${marks.length} rounds`);
      const a = kept[0];
      const b = kept.at(-1);
      const each = kept.slice(1).map((m, i) => (m.cpu - kept[i].cpu).toFixed(2));
      const n = b.round - a.round;
      resolve(`${spec}: ${((b.cpu - a.cpu) / n).toFixed(3)} s CPU per round, ${((b.faults - a.faults) / n).toFixed(0)} faults per round [${each.join(' ')}]`);
    });
  });
}

for (const line of await Promise.all(runs.map(watch))) console.log(line);
