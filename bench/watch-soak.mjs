#!/usr/bin/env node
/**
 * Soak test of `clonebox health watch`: runs the built CLI over the whole lab for N rounds at a short interval
 * and measures the child's RSS and CPU from /proc, to show that memory stays flat and what a steady watch costs.
 *
 *   npm run build && bash test/lab/fleet.sh up
 *   node bench/watch-soak.mjs [--rounds 1000] [--interval 200ms] [--config .lab/clonebox.yaml]
 *                             [--no-store] [--timeout 900] [--json]
 *
 * Bounded: the watch stops itself after --rounds; past --timeout seconds it gets SIGINT, then SIGKILL.
 * Linux only (/proc). Uses a fresh SQLite store in a temp dir unless --no-store.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const flag = (name) => argv.includes(`--${name}`);

const rounds = Number(opt('rounds', '1000'));
const interval = opt('interval', '200ms');
const config = path.resolve(ROOT, opt('config', '.lab/clonebox.yaml'));
const timeoutS = Number(opt('timeout', '900'));
const noStore = flag('no-store');
const asJson = flag('json');
const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-soak-'));
const store = path.join(dir, 'health.db');

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // 100 on every Linux we know
}

/** CPU seconds (user + system) and RSS bytes of a live pid, from /proc. */
function sample(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(fields[11]) + Number(fields[12])) / clkTck; // utime, stime (fields 14, 15)
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return { t: performance.now(), cpu, rss: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

const args = [
  path.join(ROOT, 'bin', 'clonebox.js'),
  'health',
  'watch',
  '--all',
  '--interval',
  interval,
  '--rounds',
  String(rounds),
  '--config',
  config,
  '--json',
  ...(noStore ? ['--no-store'] : ['--store', store]),
];
const load0 = loadavg()[0];
const t0 = performance.now();
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
let stderr = '';
child.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-4000)));

/** Per completed round: the child's own numbers and our /proc sample at that moment. */
const marks = new Map();
const wanted = new Set([1, 10, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, rounds]);
let lastRound;
let transitions = 0;
createInterface({ input: child.stdout }).on('line', (line) => {
  let e;
  try {
    e = JSON.parse(line);
  } catch {
    return;
  }
  if (e.type === 'transition') transitions++;
  if (e.type !== 'round') return;
  lastRound = e;
  if (wanted.has(e.round)) marks.set(e.round, { ...sample(child.pid), round: e.round, opened: e.ssh_connections_opened, checks: e.checks.total });
  if (!asJson && e.round % 100 === 0) process.stderr.write(`soak: round ${e.round}/${rounds}, rss ${(e.rss_bytes / 2 ** 20).toFixed(1)} MiB\n`);
});

const samples = [];
const poll = setInterval(() => {
  const s = sample(child.pid);
  if (s) samples.push(s);
}, 1000);
// Ctrl-C on the soak stops the watch cleanly (its own Ctrl-C handling) and still prints what was measured.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill('SIGINT'));
const killer = setTimeout(() => {
  process.stderr.write(`soak: still running after ${timeoutS}s; interrupting\n`);
  child.kill('SIGINT');
  setTimeout(() => child.kill('SIGKILL'), 5000).unref();
}, timeoutS * 1000);

const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? sig)));
clearInterval(poll);
clearTimeout(killer);
const wallS = (performance.now() - t0) / 1000;
if (!noStore) rmSync(dir, { recursive: true, force: true });

const m = (r) => marks.get(r);
const mib = (b) => (b === undefined ? 'n/a' : `${(b / 2 ** 20).toFixed(1)} MiB`);
const steadyFrom = m(100) ?? m(50) ?? m(10);
const end = m(rounds) ?? [...marks.values()].at(-1);
const steadyCpuPct = steadyFrom && end && end.t > steadyFrom.t ? ((end.cpu - steadyFrom.cpu) / ((end.t - steadyFrom.t) / 1000)) * 100 : undefined;
const rssValues = samples.map((s) => s.rss);
const result = {
  command: `node ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ').replace(ROOT, '')}`,
  exit_code: code,
  rounds_done: lastRound?.round ?? 0,
  checks_per_round: lastRound?.checks.total,
  wall_seconds: +wallS.toFixed(1),
  rounds_per_second: lastRound ? +(lastRound.round / wallS).toFixed(2) : 0,
  ssh_connections_opened: lastRound?.ssh_connections_opened,
  transitions,
  rss_by_round: Object.fromEntries([...marks.values()].map((x) => [x.round, x.rss])),
  rss_min_after_round_100: steadyFrom ? Math.min(...samples.filter((s) => s.t >= steadyFrom.t).map((s) => s.rss)) : undefined,
  rss_max: rssValues.length ? Math.max(...rssValues) : undefined,
  steady_cpu_percent: steadyCpuPct === undefined ? undefined : +steadyCpuPct.toFixed(1),
  total_cpu_seconds: end?.cpu,
  load_average: { start: +load0.toFixed(2), end: +loadavg()[0].toFixed(2) },
  cpus: cpus().length,
};

if (asJson) {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  console.log(`watch soak: ${result.rounds_done} rounds of ${result.checks_per_round} checks at ${interval} over the lab in ${result.wall_seconds}s (exit ${code})`);
  console.log(`  SSH connections opened: ${result.ssh_connections_opened}; transitions printed: ${transitions}`);
  console.log(`  RSS by round: ${[...marks.values()].map((x) => `${x.round}: ${mib(x.rss)}`).join(', ')}`);
  console.log(`  RSS after round 100: min ${mib(result.rss_min_after_round_100)}, max overall ${mib(result.rss_max)}`);
  console.log(`  CPU: ${result.steady_cpu_percent ?? 'n/a'}% of one core in steady state (round 100 → end), ${end?.cpu?.toFixed(1) ?? 'n/a'} CPU-s in all`);
  console.log(`  load average ${result.load_average.start} → ${result.load_average.end} on ${result.cpus} CPUs`);
}
if (result.rounds_done < rounds) {
  process.stderr.write(`soak: only ${result.rounds_done} of ${rounds} rounds; stderr:\n${stderr}\n`);
  process.exitCode = 1;
}
