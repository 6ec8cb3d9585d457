#!/usr/bin/env node
/**
 * The guest side of a steady round: CPU of each lab guest's sshd process tree (sshd, the login shell, the commands:
 * utime+stime+cutime+cstime, each second counted once) per VM per round, with the resident command session and with
 * a channel per round, interleaved. The bench's three commands (echo PONG, df, the memory check's read), 20 rounds
 * after 3 warm-up rounds on warm connections. Needs the fleet lab up (test/lab/fleet.sh up) and a built dist/.
 *
 *   sudo node bench/sshd-cpu.mjs                          # the default lab (cbx, .lab)
 *   CLONEBOX_LAB_DIR=/path/.lab sudo node bench/sshd-cpu.mjs
 */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { SshPool } = await import(join(root, 'dist/transport/ssh-pool.js'));
const lab = JSON.parse(readFileSync(join(process.env.CLONEBOX_LAB_DIR ?? join(root, '.lab'), 'lab.json'), 'utf8'));
const vms = ['web-1', 'web-2', 'web-3', 'db-1'];
const tick = 100; let BY = {}; // USER_HZ
function tree(ns) {
  const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  const stat = new Map();
  for (const p of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try { const s = readFileSync(`/proc/${p}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      stat.set(Number(p), { ppid: Number(f[1]), cpu: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')) }); } catch {}
  }
  const roots = pids.filter((p) => stat.get(p)?.comm === 'sshd' && stat.get(stat.get(p).ppid)?.comm !== 'sshd');
  let total = 0; const by = {}; const seen = new Set(roots); const todo = [...roots];
  while (todo.length) { const p = todo.pop(); total += stat.get(p)?.cpu ?? 0; const cm = stat.get(p)?.comm; by[cm] = (by[cm] ?? 0) + (stat.get(p)?.cpu ?? 0); BY[cm] = (BY[cm] ?? 0) + (stat.get(p)?.cpu ?? 0); for (const [c, v] of stat) if (v.ppid === p && !seen.has(c)) { seen.add(c); todo.push(c); } }
  return total;
}
const sshdCpu = () => vms.reduce((a, vm) => a + tree(lab.vms[vm].namespace), 0);
for (const resident of [false, true, false, true]) {
  const pool = new SshPool({ residentSession: resident });
  const sessions = vms.map((vm) => pool.session({ vm, host: lab.vms[vm].address, port: 22, user: 'root', identityFile: lab.identityFile, knownHostsFile: lab.knownHostsFile, hostKeyPolicy: 'strict', connectTimeoutMs: 5000, maxSessions: 10 }));
  const round = () => Promise.all(sessions.flatMap((s) => ['echo PONG', 'df -P -k /', 'head -n 5 /proc/meminfo'].map((c) => s.exec(c, { signal: AbortSignal.timeout(10000) }))));
  for (let i = 0; i < 3; i++) await round();
  await new Promise((r) => setTimeout(r, 300));
  BY = {}; const before = sshdCpu(); const byBefore = BY; BY = {}; const rounds = 20; const t0 = performance.now();
  for (let i = 0; i < rounds; i++) { const rs = await round(); if (rs.some((r) => r.exitCode !== 0)) throw new Error('failed'); }
  const wall = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 500));
  const cpu = (sshdCpu() - before) * 1000 / tick; const diff = {}; for (const k of new Set([...Object.keys(BY), ...Object.keys(byBefore)])) diff[k] = (((BY[k] ?? 0) - (byBefore[k] ?? 0)) * 10 / rounds / vms.length).toFixed(1);
  console.log(`${resident ? 'resident ' : 'per-round'}: sshd CPU ${(cpu / rounds / vms.length).toFixed(1)} ms per VM per round; round wall ${(wall / rounds).toFixed(1)} ms; of it ${JSON.stringify(diff)} ms by process name; channels opened ${pool.stats().commandChannels}, new connections ${pool.stats().connectionsOpened - vms.length}`);
  await pool.close();
}
