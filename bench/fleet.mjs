#!/usr/bin/env node
/**
 * Fleet-scale speed (issue 6): clonebox against OpenSSH ControlMaster and Ansible, side by side, in one run.
 * Run it through `bench/fleet` (root: it makes a network namespace). See bench/README.md.
 *
 *   bench/fleet [--sizes 10,50,100,200] [--reps 3] [--methods cbx,cbx5,cm,ansible,watch]
 *               [--concurrency N] [--work /tmp/cbx-bench] [--json FILE] [--serve SECONDS]
 *               [--watch-n 200] [--watch-interval 30] [--watch-rounds 14] [--watch-warmup 8]
 *               [--ansible-max 100] [--ansible-reps R]   (default: REPS up to N=50, 1 at N=100)
 *
 * --serve S: only bring the fleet up (all sizes' files written) for S seconds, for profiling by hand.
 *
 * The fleet: one sshd inside a private network namespace (cbx-bench) listening on 0.0.0.0:22, so every
 * "VM" 127.0.1.1…127.0.1.N reaches it over the namespace's own loopback; one HTTP endpoint on :8080
 * there for the host probes; a libvirt test-driver XML mapping vm-001…vm-N to those addresses.
 * Nothing leaves the namespace: every measured client runs inside it (`ip netns exec`).
 *
 * Methods (3 guest commands per host: `echo PONG`, `df -P -k /`, `head -n 5 /proc/meminfo`):
 *   cbx      clonebox, 3 guest probes (command, disk, memory): cold = `health check --all` (new process);
 *            steady = a round on a pool kept open (bench/fleet-steady.mjs, the library watch runs on)
 *   cbx5     the same plus http + tcp host probes (reported beside, not in the ratios)
 *   cm       OpenSSH ControlMaster/ControlPersist: cold = fresh control dir, one master per host
 *            (first command), then the other two through it; warm = 3 commands per host, masters up
 *   ansible  Ansible ad-hoc `-m command`, pipelining + ControlPersist, 3 calls (one per command), forks=min(N,50)
 *   watch    (N=--watch-n only: 200, else the largest) a real `health watch --interval 30s --rounds 14`: CPU
 *            and RSS of the process per round, from /proc (idle time between rounds included): rounds 2…8,
 *            while V8 still compiles what the rounds run (--trace-opt: 80–590 ms of compiling per round until
 *            round 8, ~15 ms after), and the rounds after --watch-warmup, what a long-running watch costs
 *
 * Every method forces curve25519-sha256 + ssh-ed25519 (what clonebox's ssh2 negotiates with this sshd).
 * Bounded: every child has a timeout; everything started is stopped on exit and on Ctrl-C.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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
if (flag('help')) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}

const SIZES = opt('sizes', '10,50,100,200').split(',').map(Number).filter((n) => n > 0);
const REPS = Math.max(1, Number(opt('reps', '3')));
const METHODS = new Set(opt('methods', 'cbx,cbx5,cm,ansible,watch').split(','));
const CONCURRENCY = opt('concurrency', ''); // empty: clonebox's own default
const WORK = path.resolve(opt('work', '/tmp/cbx-bench'));
const JSON_OUT = opt('json', '');
// Ansible costs ~1.5 s of CPU per host (python on both ends): by default 3 reps up to N=50, one at
// N=100, none above, so that the whole default run stays near 15 minutes.
const ANSIBLE_MAX = Number(opt('ansible-max', '100'));
const ansibleReps = (n) => Number(opt('ansible-reps', String(n <= 50 ? REPS : 1)));
const KEEP = flag('keep');
// The real watch (method `watch`): at the default interval (what a user runs), over one size.
const WATCH_INTERVAL_S = Number(opt('watch-interval', '30'));
const WATCH_ROUNDS = Math.max(3, Number(opt('watch-rounds', '14')));
// Rounds after which the JIT has settled: the steady cost is measured from there (bench/README.md).
const WATCH_WARMUP = Math.max(2, Number(opt('watch-warmup', '8')));
const SERVE_S = Number(opt('serve', '0'));
const NS = 'cbx-bench';
const USER = 'cbxbench';
const MAX_N = Math.max(...SIZES);
const WATCH_N = Number(opt('watch-n', SIZES.includes(200) ? '200' : String(MAX_N)));
// 250 addresses per /24 (127.0.1.1…127.0.1.250, 127.0.2.1…): ten of them are plenty.
if (MAX_N > 2500) throw new Error('at most 2500 VMs (127.0.1.1…127.0.10.250)');
// A step's own bound grows with N: ControlMaster's cold round at N=1000 starts 3000 ssh processes.
const STEP_TIMEOUT_MS = Math.max(240_000, MAX_N * 600);
// Descriptors for sshd and every measured client (one socket per VM, more for ControlMaster's masters): as many
// as the hard limit allows (raising it needs CAP_SYS_RESOURCE, which a container's root may lack).
const HARD_NOFILE = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || Infinity;
const NOFILE = Math.min(Math.max(65_536, MAX_N * 16), HARD_NOFILE);
if (NOFILE < MAX_N * 4) throw new Error(`the open-files hard limit (${HARD_NOFILE}) is too low for N=${MAX_N}: raise it (ulimit -Hn) to ${MAX_N * 4} or more`);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const KEX = 'curve25519-sha256';
const HOSTKEY_ALG = 'ssh-ed25519';

/** i = 1…N: 127.0.1.1…127.0.1.250, then 127.0.2.1…, all on the namespace's loopback. */
const addr = (i) => `127.0.${1 + Math.floor((i - 1) / 250)}.${1 + ((i - 1) % 250)}`;
const vmName = (i) => `vm-${String(i).padStart(3, '0')}`;
const notesFile = path.join(WORK, 'results.jsonl');
/** `ip` arguments that run a measured client inside the namespace, with the fleet's descriptor limit. */
const inNs = ['netns', 'exec', NS, 'prlimit', `--nofile=${NOFILE}:${NOFILE}`];
const say = (s) => process.stderr.write(`fleet: ${s}\n`);

// ───────────────────────────── processes we started, stopped on exit ─────────────────────────────
const started = new Set(); // ChildProcess
let cleaning = false;
function cleanup() {
  if (cleaning) return;
  cleaning = true;
  for (const pid of masterPids()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  for (const c of started) {
    try {
      c.kill('SIGTERM');
    } catch {}
  }
  if (!KEEP) spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  // Empty once sshd's processes are gone; a later run reuses it if they are not yet.
  const groups = [sshdCgroup, clientCgroup].filter(Boolean).map((g) => g.dir);
  if (groups.length) spawnSync('sh', ['-c', `sleep 0.5; rmdir ${groups.join(' ')}`], { stdio: 'ignore' });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    say(`${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...options });
  if (r.status !== 0 && !options.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ───────────────────────────── /proc accounting ─────────────────────────────
function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ut: Number(f[11]), st: Number(f[12]), cut: Number(f[13]), cst: Number(f[14]), rssPages: Number(f[21]) };
  } catch {
    return undefined;
  }
}
function allPids() {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}
/**
 * sshd's CPU (its connections, the guests' shells and what they ran, exited processes included), in seconds: from a
 * cgroup of its own when one can be made (cgroup v1 cpuacct or v2 cpu.stat: exact), else from its process tree in
 * /proc, whose per-process times are whole ticks (10 ms): on a fast machine a steady round's few ms per connection
 * and per guest shell round down to 0 there (bench/sshd-cpu.mjs, on the lab, still reads /proc and under-counts so).
 */
let sshdCgroup; // { dir, read(dir) }
/** The clients' cgroup: ControlMaster's masters detach from the client's tree, but not from its cgroup. */
let clientCgroup;
function cgroupFor(name, pid) {
  const kinds = [
    { dir: `/sys/fs/cgroup/cpuacct/${name}`, read: (d) => Number(readFileSync(`${d}/cpuacct.usage`, 'utf8')) / 1e9 },
    { dir: `/sys/fs/cgroup/${name}`, read: (d) => Number(/usage_usec (\d+)/.exec(readFileSync(`${d}/cpu.stat`, 'utf8'))?.[1]) / 1e6 },
  ];
  for (const k of kinds) {
    try {
      if (!existsSync(path.join(path.dirname(k.dir), 'cgroup.procs'))) continue;
      mkdirSync(k.dir, { recursive: true });
      if (pid) writeFileSync(path.join(k.dir, 'cgroup.procs'), String(pid));
      if (!Number.isFinite(k.read(k.dir))) continue;
      return k;
    } catch {}
  }
  return undefined;
}
function sshdCpuNow() {
  if (sshdCgroup) {
    try {
      return sshdCgroup.read(sshdCgroup.dir);
    } catch {}
  }
  return treeCpu(sshdPid).cpu;
}

/** CPU seconds of a process tree: every live member's own + reaped children's time (each second once). */
function treeCpu(rootPid) {
  const stats = new Map();
  for (const pid of allPids()) {
    const s = procStat(pid);
    if (s) stats.set(pid, s);
  }
  const kids = new Map();
  for (const [pid, s] of stats) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(pid);
  }
  let ticks = 0;
  let count = 0;
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    const s = stats.get(p);
    if (!s) continue;
    ticks += s.ut + s.st + s.cut + s.cst;
    count++;
    stack.push(...(kids.get(p) ?? []));
  }
  return { cpu: ticks / CLK_TCK, count };
}
/** ssh ControlMaster processes of this bench (their proctitle names the control socket under WORK). */
function masterPids() {
  const out = [];
  for (const pid of allPids()) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.startsWith('ssh: ') && cmd.includes(`${WORK}/`)) out.push(pid);
    } catch {}
  }
  return out;
}
function pidsCpu(pids) {
  let t = 0;
  for (const p of pids) {
    const s = procStat(p);
    if (s) t += s.ut + s.st + s.cut + s.cst;
  }
  return t / CLK_TCK;
}
function pidsRssMb(pids) {
  let pages = 0;
  for (const p of pids) pages += procStat(p)?.rssPages ?? 0;
  return (pages * 4096) / 1048576;
}

// ───────────────────────────── the fleet ─────────────────────────────
const F = {
  key: path.join(WORK, 'id_ed25519'),
  hostKey: path.join(WORK, 'ssh_host_ed25519_key'),
  knownHosts: path.join(WORK, 'known_hosts'),
  sshdConfig: path.join(WORK, 'sshd_config'),
  sshdLog: path.join(WORK, 'sshd.log'),
  home: path.join(WORK, 'home'),
};
let sshd; // ChildProcess
let sshdPid = 0;

function setup() {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespace, sshd)');
  for (const tool of ['ip', '/usr/sbin/sshd', 'ssh', 'ssh-keygen', '/usr/bin/time']) {
    if (run('sh', ['-c', `command -v ${tool}`], { allowFail: true }).status !== 0) throw new Error(`${tool} is missing (see bench/README.md)`);
  }
  if (METHODS.has('ansible') && run('sh', ['-c', 'command -v ansible'], { allowFail: true }).status !== 0) {
    throw new Error('ansible is missing: apt-get install ansible-core (or leave it out: --methods cbx,cbx5,cm)');
  }
  if (existsSync(`/run/netns/${NS}`)) {
    say(`namespace ${NS} exists (a previous run?): removing it`);
    run('ip', ['netns', 'del', NS], { allowFail: true });
  }
  mkdirSync(WORK, { recursive: true });
  rmSync(path.join(WORK, 'cm'), { recursive: true, force: true });
  mkdirSync(F.home, { recursive: true });
  // A user whose login shell is /bin/sh with no rc files: root's ~/.bashrc can cost tens of ms per command.
  if (run('getent', ['passwd', USER], { allowFail: true }).status !== 0) {
    run('useradd', ['--system', '--no-create-home', '--home-dir', F.home, '--shell', '/bin/sh', USER]);
  }
  // Key-only, but not "locked" ('!'), which sshd refuses without PAM.
  run('usermod', ['-p', '*', USER]);
  if (!existsSync(F.key)) run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cbx-bench-client', '-f', F.key]);
  if (!existsSync(F.hostKey)) run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cbx-bench-host', '-f', F.hostKey]);
  mkdirSync(path.join(F.home, '.ssh'), { recursive: true });
  writeFileSync(path.join(F.home, '.ssh', 'authorized_keys'), readFileSync(`${F.key}.pub`));
  run('chown', ['-R', `${USER}:`, F.home]);
  chmodSync(F.home, 0o700);
  const [t, b] = readFileSync(`${F.hostKey}.pub`, 'utf8').split(' ');
  writeFileSync(F.knownHosts, Array.from({ length: MAX_N }, (_, i) => `${addr(i + 1)} ${t} ${b}\n`).join(''));
  writeFileSync(
    F.sshdConfig,
    [
      'Port 22',
      'ListenAddress 0.0.0.0',
      `HostKey ${F.hostKey}`,
      `PidFile ${WORK}/sshd.pid`,
      `AllowUsers ${USER}`,
      'PermitRootLogin no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'UseDNS no',
      'StrictModes no',
      // Fleet-sized: the default 10:30:100 drops handshakes at N=50 (issue 6). It bounds handshakes in
      // progress (not connections held), so it is sized by the clients' concurrency, not by N.
      `MaxStartups ${Math.max(1000, MAX_N)}:30:${Math.max(1000, MAX_N)}`,
      'MaxSessions 20',
      'LoginGraceTime 60',
      'AllowTcpForwarding yes',
      'X11Forwarding no',
      'PrintMotd no',
      'PrintLastLog no',
      'AcceptEnv LANG LC_*',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  run('ip', ['netns', 'add', NS]);
  run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  mkdirSync('/run/sshd', { recursive: true });
  writeFileSync(F.sshdLog, '');
  // prlimit execs too: sshdPid is still sshd's own pid.
  sshd = spawn('ip', ['netns', 'exec', NS, 'prlimit', `--nofile=${NOFILE}:${NOFILE}`, '/usr/sbin/sshd', '-D', '-f', F.sshdConfig, '-E', F.sshdLog], { stdio: 'ignore' });
  started.add(sshd);
  sshdPid = sshd.pid; // ip netns exec execs: this is sshd's own pid
  // Before its first connection: every process it forks inherits the cgroup.
  sshdCgroup = cgroupFor('cbx-bench-sshd', sshdPid);
  clientCgroup = cgroupFor('cbx-bench-clients');
  say(`sshd and client CPU from ${sshdCgroup && clientCgroup ? `the cgroups ${sshdCgroup.dir}, ${clientCgroup.dir}` : 'process trees in /proc (10 ms per process resolution)'}`);
  const http = spawn(
    'ip',
    ['netns', 'exec', NS, process.execPath, '-e', "require('http').createServer((q,s)=>s.end('ok\\n')).listen(8080,'0.0.0.0')"],
    { stdio: 'ignore' },
  );
  started.add(http);
}

async function waitReady() {
  for (let i = 0; i < 100; i++) {
    const log = readFileSync(F.sshdLog, 'utf8');
    const ss = run('ip', ['netns', 'exec', NS, 'ss', '-ltnH'], { allowFail: true }).stdout ?? '';
    if (log.includes('Server listening') && ss.includes(':8080')) return;
    await sleep(100);
  }
  throw new Error(`sshd or the HTTP endpoint did not start (see ${F.sshdLog})`);
}

function acceptedCount() {
  const log = readFileSync(F.sshdLog, 'utf8');
  let n = 0;
  for (let i = log.indexOf('Accepted publickey'); i !== -1; i = log.indexOf('Accepted publickey', i + 1)) n++;
  return n;
}

/** Per N: libvirt XML, clonebox configs, ControlMaster scripts, Ansible inventory. */
function prepareSize(n) {
  const dir = path.join(WORK, `n${n}`);
  mkdirSync(dir, { recursive: true });
  const nets = [];
  const doms = [];
  for (let i = 1; i <= n; i++) {
    const want = addr(i).split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const base = want - (20 * (i - 1) + 1); // the test driver reports base + 20*(id-1) + 1
    const ip = [24, 16, 8, 0].map((s) => ((base >>> s) & 255).toString()).join('.');
    nets.push(`  <network><name>net-${i}</name><ip address='${ip}' prefix='24'/></network>`);
    doms.push(
      `  <domain type='test'><name>${vmName(i)}</name><uuid>cbbe0000-0000-4000-8000-${String(i).padStart(12, '0')}</uuid>` +
        `<memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os>` +
        `<devices><interface type='network'><mac address='52:54:00:be:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}'/><source network='net-${i}'/></interface></devices></domain>`,
    );
  }
  const xml = path.join(dir, 'node.xml');
  writeFileSync(xml, `<node>\n${nets.join('\n')}\n${doms.join('\n')}\n</node>\n`);
  const check = run('virsh', ['-c', `test://${xml}`, '-q', `domifaddr ${vmName(1)}; domifaddr ${vmName(n)}`]).stdout;
  if (!check.includes(`${addr(1)}/`) || !check.includes(`${addr(n)}/`)) throw new Error(`libvirt test driver does not report the planned addresses:\n${check}`);

  const guest = `  - name: ping
    type: command
    exec: echo PONG
    expected_output: PONG
  - name: disk-root
    type: disk
    path: /
  - name: memory
    type: memory
`;
  const host = `  - name: http
    type: http
    url: http://{{address}}:8080/
  - name: tcp
    type: tcp
    host: "{{address}}"
    port: 8080
`;
  const head = `# Generated by bench/fleet.mjs
libvirt:
  uri: "test://${xml}"
ssh:
  user: ${USER}
  identity_file: "${F.key}"
  known_hosts: "${F.knownHosts}"
  host_key_policy: strict
  connect_timeout: 30s
health_checks:
`;
  writeFileSync(path.join(dir, 'clonebox3.yaml'), head + guest);
  writeFileSync(path.join(dir, 'clonebox5.yaml'), head + guest + host);

  const hosts = Array.from({ length: n }, (_, i) => addr(i + 1)).join(' ');
  const sshCmd = `ssh -F /dev/null -i ${F.key} -l ${USER} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${F.knownHosts} -o StrictHostKeyChecking=yes -o KexAlgorithms=${KEX} -o HostKeyAlgorithms=${HOSTKEY_ALG} -o ConnectTimeout=30 -o ControlMaster=auto -o "ControlPath=$CTL/%C" -o ControlPersist=600`;
  // Cold: the first command per host starts its master; the other two go through it, in parallel.
  writeFileSync(
    path.join(dir, 'cm-cold.sh'),
    `#!/bin/bash
CTL=$1
S="${sshCmd}"
one() {
  $S "$1" 'echo PONG' >/dev/null || echo "FAIL $1 ping" >&2
  $S "$1" 'df -P -k /' >/dev/null || echo "FAIL $1 df" >&2 &
  $S "$1" 'head -n 5 /proc/meminfo' >/dev/null || echo "FAIL $1 meminfo" >&2 &
  wait
}
for h in ${hosts}; do one "$h" & done
wait
`,
  );
  writeFileSync(
    path.join(dir, 'cm-warm.sh'),
    `#!/bin/bash
CTL=$1
S="${sshCmd}"
for h in ${hosts}; do
  $S "$h" 'echo PONG' >/dev/null || echo "FAIL $h ping" >&2 &
  $S "$h" 'df -P -k /' >/dev/null || echo "FAIL $h df" >&2 &
  $S "$h" 'head -n 5 /proc/meminfo' >/dev/null || echo "FAIL $h meminfo" >&2 &
done
wait
`,
  );
  writeFileSync(path.join(dir, 'inventory.ini'), `[fleet]\n${Array.from({ length: n }, (_, i) => addr(i + 1)).join('\n')}\n`);
  writeFileSync(
    path.join(dir, 'ansible-cold.sh'),
    `#!/bin/bash
# Three ad-hoc calls (one per command); connections persist between them (ControlPersist).
export ANSIBLE_SSH_CONTROL_PATH_DIR=$1
rc=0
for c in 'echo PONG' 'df -P -k /' 'head -n 5 /proc/meminfo'; do
  ansible fleet -i ${dir}/inventory.ini -m command -a "$c" -o >/dev/null || { rc=1; echo "FAIL ansible $c" >&2; }
done
exit $rc
`,
  );
  writeFileSync(
    path.join(dir, 'ansible.cfg'),
    `[defaults]
forks = ${Math.min(n, 50)}
remote_user = ${USER}
private_key_file = ${F.key}
interpreter_python = /usr/bin/python3
host_key_checking = True
gathering = explicit
local_tmp = ${WORK}/ansible-tmp
remote_tmp = /tmp/cbx-bench-ansible-remote
[ssh_connection]
pipelining = True
ssh_args = -F /dev/null -o IdentitiesOnly=yes -o UserKnownHostsFile=${F.knownHosts} -o StrictHostKeyChecking=yes -o KexAlgorithms=${KEX} -o HostKeyAlgorithms=${HOSTKEY_ALG} -o ControlMaster=auto -o ControlPersist=600
`,
  );
  for (const f of ['cm-cold.sh', 'cm-warm.sh', 'ansible-cold.sh']) chmodSync(path.join(dir, f), 0o755);
  return dir;
}

// ───────────────────────────── measuring one process ─────────────────────────────
/** Settle: wait until sshd's process tree stops changing (closing connections finish), bounded. */
async function settle() {
  let last = -1;
  let same = 0;
  for (let i = 0; i < 60 && same < 3; i++) {
    const { count } = treeCpu(sshdPid);
    same = count === last ? same + 1 : 0;
    last = count;
    await sleep(50);
  }
}

/**
 * Run `argv` inside the namespace under /usr/bin/time. Wall from here (includes `ip netns exec`, ~2 ms,
 * the same for every method). Client CPU = the clients' cgroup's CPU over the run (exact, ControlMaster's masters
 * included), or without cgroups the process tree's user+sys + the masters' (whole ticks per process). RSS = the
 * largest process's peak (+ masters' RSS when they exist).
 */
async function measure(label, args, env = {}) {
  await settle();
  const timeFile = path.join(WORK, 'time.out');
  const masters0 = new Set(masterPids());
  const mcpu0 = pidsCpu(masters0);
  const sshd0 = sshdCpuNow();
  const client0 = clientCgroup?.read(clientCgroup.dir);
  const acc0 = acceptedCount();
  const t0 = performance.now();
  const r = await new Promise((resolve) => {
    const argv = ['ip', ...inNs, '/usr/bin/time', '-f', '%e %U %S %M', '-o', timeFile, ...args];
    // In the clients' cgroup before it starts anything (so are the masters it leaves behind).
    const c = spawn(clientCgroup ? 'sh' : argv[0], clientCgroup ? ['-c', `echo $$ 2>/dev/null > ${clientCgroup.dir}/cgroup.procs; exec "$@"`, 'sh', ...argv] : argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    started.add(c);
    let out = '';
    let err = '';
    c.stdout.on("data", (d) => (out = (out + d).slice(-20_000_000)));
    c.stderr.on('data', (d) => (err = (err + d).slice(-20_000)));
    const timer = setTimeout(() => c.kill('SIGKILL'), STEP_TIMEOUT_MS);
    c.on('close', (code) => {
      clearTimeout(timer);
      started.delete(c);
      resolve({ code, out, err });
    });
  });
  const wall = (performance.now() - t0) / 1000;
  const masters = masterPids();
  // New masters were born in this round: all their CPU is this round's; old ones: the delta.
  const mcpu = pidsCpu(masters) - mcpu0;
  const mrss = pidsRssMb(masters);
  await settle();
  const sshdCpu = sshdCpuNow() - sshd0;
  const conns = acceptedCount() - acc0;
  let cpu = NaN;
  let rss = NaN;
  try {
    const [, u, s, m] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
    cpu = client0 !== undefined ? clientCgroup.read(clientCgroup.dir) - client0 : u + s + mcpu;
    rss = m / 1024 + (masters.length ? mrss : 0);
  } catch {}
  const failures = (r.err.match(/FAIL /g) ?? []).length;
  return { label, wall, cpu, rss, conns, sshdCpu, code: r.code, failures, out: r.out, err: r.err };
}

// ───────────────────────────── methods ─────────────────────────────
const clonebox = [process.execPath, path.join(ROOT, 'bin', 'clonebox.js')];
const concArgs = CONCURRENCY ? ['--concurrency', CONCURRENCY] : [];

/** What the checks not HEALTHY said, counted by check and message (VM-specific text cut down): the first five. */
function failedSample(reports) {
  const count = new Map();
  for (const r of reports ?? []) {
    for (const c of r.checks) {
      if (c.status === 'HEALTHY') continue;
      const key = `${c.name} ${c.status}: ${c.message.replace(/vm-\d+/g, 'vm-N').replace(/127\.0\.\d+\.\d+/g, 'ADDR').slice(0, 120)}`;
      count.set(key, (count.get(key) ?? 0) + 1);
    }
  }
  return [...count].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, n]) => `${n}× ${k}`);
}

async function cbxCold(dir, cfg) {
  const m = await measure('cold', [...clonebox, 'health', 'check', '--all', '--no-store', '--config', path.join(dir, cfg), '--json', ...concArgs]);
  try {
    const rep = JSON.parse(m.out);
    const s = rep.summary;
    m.checksOk = s.checks.healthy;
    m.failures = s.checks.total - s.checks.healthy;
    m.status = s.overall_status;
    m.failed = failedSample(rep.reports);
  } catch {
    m.status = `exit ${m.code}: ${m.err.slice(-300)}`;
  }
  return m;
}

/** A long-lived steady-round driver (one SshPool, like watch): one round per request. */
function startSteady(dir, cfg) {
  const c = spawn('ip', [...inNs, process.execPath, path.join(ROOT, 'bench', 'fleet-steady.mjs'), '--config', path.join(dir, cfg), ...concArgs], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  started.add(c);
  const lines = createInterface({ input: c.stdout });
  const waiting = [];
  lines.on('line', (l) => waiting.shift()?.(l));
  const ask = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('steady round timed out')), STEP_TIMEOUT_MS);
      waiting.push((l) => {
        clearTimeout(timer);
        resolve(JSON.parse(l));
      });
      c.stdin.write('round\n');
    });
  return {
    async round() {
      await settle();
      const sshd0 = sshdCpuNow();
      const acc0 = acceptedCount();
      const r = await ask();
      await settle();
      return {
        label: 'steady',
        wall: r.wall_ms / 1000,
        cpu: r.cpu_ms / 1000,
        rss: r.max_rss_kb / 1024,
        conns: acceptedCount() - acc0,
        sshdCpu: sshdCpuNow() - sshd0,
        status: r.status,
        checksOk: r.checks.healthy,
        failures: r.checks.total - r.checks.healthy,
      };
    },
    warmup: ask,
    stop() {
      c.stdin.end();
      return new Promise((r) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
        c.on('close', () => {
          clearTimeout(t);
          started.delete(c);
          r();
        });
      });
    },
  };
}

function stopMasters() {
  for (const pid of masterPids()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
}

/** A real `health watch` (default: at the default 30 s): CPU per steady round from /proc, idle time included. */
async function watchRun(dir, cfg, n) {
  const rounds = WATCH_ROUNDS;
  const c = spawn(
    'ip',
    [...inNs, ...clonebox, 'health', 'watch', '--all', '--no-store', '--json', '--interval', `${WATCH_INTERVAL_S}s`, '--rounds', String(rounds), '--config', path.join(dir, cfg), ...concArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.add(c);
  const timer = setTimeout(() => c.kill('SIGINT'), (rounds + 2) * WATCH_INTERVAL_S * 1500 + 60_000);
  const marks = [];
  const lines = createInterface({ input: c.stdout });
  lines.on('line', (l) => {
    let j;
    try {
      j = JSON.parse(l);
    } catch {
      return;
    }
    if (j.type !== 'round') return;
    const s = procStat(c.pid);
    marks.push({ round: j.round, t: performance.now(), cpu: s ? (s.ut + s.st) / CLK_TCK : NaN, rss: j.rss_bytes, opened: j.ssh_connections_opened });
  });
  await new Promise((r) => c.on('close', r));
  clearTimeout(timer);
  started.delete(c);
  if (marks.length < 3) return { n, error: `only ${marks.length} rounds` };
  // From round 2 (round 1 opened the connections); steady = after the warm-up, when there are rounds enough.
  const a = marks[1];
  const b = marks.at(-1);
  const per = (x, y) => (y.cpu - x.cpu) / (y.round - x.round);
  const w = marks.find((m) => m.round === WATCH_WARMUP);
  const settled = w && b.round - w.round >= 2 ? w : undefined;
  const perRound = per(settled ?? a, b);
  return {
    n,
    intervalS: WATCH_INTERVAL_S,
    rounds: marks.length,
    cpuPerRound: perRound,
    pctOfCoreAt30s: (perRound / 30) * 100,
    steadyFrom: settled ? settled.round : a.round,
    cpuPerRoundWarmup: settled ? per(a, settled) : undefined,
    cpuPerRoundAll: per(a, b),
    cpuEachRound: marks.slice(1).map((m, i) => +(m.cpu - marks[i].cpu).toFixed(2)),
    rssMb: Math.max(...marks.map((m) => m.rss)) / 1048576,
    newConnsSteady: b.opened - a.opened,
    firstRoundOpened: marks[0].opened,
  };
}

// ───────────────────────────── the run ─────────────────────────────
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

const results = []; // {n, method, phase, ...}
function record(n, method, phase, m) {
  const row = { n, method, phase, wall: m.wall, cpu: m.cpu, rss: m.rss, conns: m.conns, sshdCpu: m.sshdCpu, failures: m.failures ?? 0, status: m.status, checksOk: m.checksOk, ...(m.failed?.length ? { failed: m.failed } : {}) };
  results.push(row);
  writeFileSync(notesFile, `${JSON.stringify(row)}\n`, { flag: 'a' });
  const ok = m.failures ? ` FAILURES=${m.failures}` : m.code && m.code !== 0 && method.startsWith('ansible') ? ` exit ${m.code}` : '';
  say(
    `N=${n} ${method} ${phase}: ${m.wall.toFixed(3)} s wall, ${m.cpu.toFixed(2)} s cpu, ${m.rss.toFixed(0)} MB, ${m.conns} conns, sshd ${m.sshdCpu.toFixed(2)} s` +
      (m.status ? ` [${m.status}${m.checksOk !== undefined ? `, ${m.checksOk} ok` : ''}]` : '') +
      ok,
  );
  for (const f of m.failed ?? []) say(`  not HEALTHY: ${f}`);
}

async function main() {
  const t0 = Date.now();
  say(`sizes ${SIZES.join(',')}, reps ${REPS}, methods ${[...METHODS].join(',')}, concurrency ${CONCURRENCY || 'default'}; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);
  setup();
  await waitReady();
  writeFileSync(notesFile, '');
  if (SERVE_S > 0) {
    // Development aid: the fleet up, nothing measured, for SERVE_S seconds (or Ctrl-C).
    for (const n of SIZES) say(`N=${n}: ${prepareSize(n)} (clonebox3.yaml, clonebox5.yaml, cm-*.sh, ansible-cold.sh)`);
    say(`serving for ${SERVE_S} s: run clients with \`ip netns exec ${NS} …\``);
    await sleep(SERVE_S * 1000);
    return;
  }
  const watchRes = [];
  for (const n of SIZES) {
    const dir = prepareSize(n);
    const steady3 = METHODS.has('cbx') ? startSteady(dir, 'clonebox3.yaml') : undefined;
    const steady5 = METHODS.has('cbx5') ? startSteady(dir, 'clonebox5.yaml') : undefined;
    if (steady3) await steady3.warmup();
    if (steady5) await steady5.warmup();
    for (let rep = 0; rep < REPS; rep++) {
      // A B A B: every method once per rep, in the same order.
      if (METHODS.has('cbx')) record(n, 'clonebox', 'cold', await cbxCold(dir, 'clonebox3.yaml'));
      if (METHODS.has('cm')) {
        const ctl = path.join(WORK, 'cm', `${n}-${rep}`);
        mkdirSync(ctl, { recursive: true });
        record(n, 'controlmaster', 'cold', await measure('cold', ['bash', path.join(dir, 'cm-cold.sh'), ctl]));
        record(n, 'controlmaster', 'warm', await measure('warm', ['bash', path.join(dir, 'cm-warm.sh'), ctl]));
        if (steady3) record(n, 'clonebox', 'steady', await steady3.round());
        record(n, 'controlmaster', 'warm', await measure('warm', ['bash', path.join(dir, 'cm-warm.sh'), ctl]));
        stopMasters();
      }
      if (steady3) record(n, 'clonebox', 'steady', await steady3.round());
      if (METHODS.has('cbx5')) {
        record(n, 'clonebox-5probe', 'cold', await cbxCold(dir, 'clonebox5.yaml'));
        record(n, 'clonebox-5probe', 'steady', await steady5.round());
      }
      if (METHODS.has('ansible') && n <= ANSIBLE_MAX && rep < ansibleReps(n)) {
        const ctl = path.join(WORK, 'cm', `a${n}-${rep}`);
        mkdirSync(ctl, { recursive: true });
        const m = await measure('cold', ['bash', path.join(dir, 'ansible-cold.sh'), ctl], { ANSIBLE_CONFIG: path.join(dir, 'ansible.cfg'), ANSIBLE_HOME: path.join(WORK, 'ansible-home') });
        record(n, 'ansible', 'cold', m);
        if (m.code !== 0) say(`ansible: ${m.err.slice(-600)}`);
        stopMasters();
      }
    }
    await steady3?.stop();
    await steady5?.stop();
    if (METHODS.has('watch') && n === WATCH_N) {
      say(`N=${n}: a real watch at --interval ${WATCH_INTERVAL_S}s for ${WATCH_ROUNDS} rounds…`);
      const w = await watchRun(dir, 'clonebox3.yaml', n);
      watchRes.push(w);
      writeFileSync(notesFile, `${JSON.stringify({ watch: w })}\n`, { flag: 'a' });
      say(`watch: ${JSON.stringify(w)}`);
    }
  }
  report(watchRes, (Date.now() - t0) / 1000);
}

function report(watchRes, seconds) {
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const rows = [];
  const key = (r) => `${r.method} ${r.phase}`;
  const groups = new Map();
  for (const r of results) {
    const k = `${r.n}|${key(r)}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(r);
  }
  const med = new Map();
  for (const [k, rs] of groups) {
    const m = {
      wall: median(rs.map((r) => r.wall)),
      cpu: median(rs.map((r) => r.cpu)),
      rss: median(rs.map((r) => r.rss)),
      conns: median(rs.map((r) => r.conns)),
      sshdCpu: median(rs.map((r) => r.sshdCpu)),
      failures: rs.reduce((a, r) => a + (r.failures || 0), 0),
      reps: rs.length,
    };
    med.set(k, m);
    const [n, name] = k.split('|');
    // sshd's CPU per VM, for steady rounds only (a cold round's is mostly key exchange and login).
    const perVm = name.endsWith(' steady') || name.endsWith(' warm') ? fmt((m.sshdCpu * 1000) / Number(n), 1) : '';
    rows.push([n, name, m.reps, fmt(m.wall, 3), fmt(m.cpu), fmt(m.rss, 0), fmt(m.conns, 0), fmt(m.sshdCpu), perVm, m.failures ? String(m.failures) : '']);
  }
  const header = ['N', 'method / round', 'runs', 'wall s', 'client CPU s', 'peak RSS MB', 'SSH conns', 'sshd CPU s', 'sshd ms/VM', 'failures'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  const out = [];
  out.push(`\nFleet benchmark (medians; ${REPS} rep(s); ${cpus().length} cores; kex ${KEX}, host key ${HOSTKEY_ALG}; took ${fmt(seconds, 0)} s)\n`);
  out.push(line(header));
  out.push(line(widths.map((w) => '-'.repeat(w))));
  let lastN = '';
  for (const r of rows) {
    if (lastN && r[0] !== lastN) out.push('');
    lastN = r[0];
    out.push(line(r));
  }
  out.push('\nRatios vs targets (3-probe clonebox against the same 3 commands):');
  const get = (n, k) => med.get(`${n}|${k}`);
  const verdict = (ok) => (ok === undefined ? '' : ok ? 'PASS' : 'FAIL');
  for (const n of SIZES) {
    const cold = get(n, 'clonebox cold');
    const steady = get(n, 'clonebox steady');
    const cmc = get(n, 'controlmaster cold');
    const cmw = get(n, 'controlmaster warm');
    const an = get(n, 'ansible cold');
    const parts = [];
    if (cold && cmc) parts.push(`cold/CM cold ${fmt(cold.wall / cmc.wall)} (≤0.80 ${verdict(cold.wall / cmc.wall <= 0.8)})`);
    if (cold && an) parts.push(`Ansible/cold ${fmt(an.wall / cold.wall, 1)}× (≥10 ${verdict(an.wall / cold.wall >= 10)})`);
    if (steady && cmw) parts.push(`steady/CM warm ${fmt(steady.wall / cmw.wall)} (≤1.00 ${verdict(steady.wall / cmw.wall <= 1)})`);
    if (steady) parts.push(`new conns/steady round ${fmt(steady.conns, 0)} (${verdict(steady.conns === 0)})`);
    out.push(`  N=${n}: ${parts.join('; ')}`);
  }
  // Issue 14: the cold round grows no worse than linearly from N=100 (or the smallest N measured).
  const base = SIZES.includes(100) ? 100 : SIZES[0];
  const c1 = get(base, 'clonebox cold');
  for (const n of SIZES.filter((x) => x > base)) {
    const c2 = get(n, 'clonebox cold');
    if (!c1 || !c2) continue;
    const growth = c2.wall / c1.wall;
    out.push(`  growth N=${base}→${n}: cold ×${fmt(growth)} vs linear ×${fmt(n / base)} (${verdict(growth <= n / base)}); sshd CPU ×${fmt(c2.sshdCpu / c1.sshdCpu)}, client CPU ×${fmt(c2.cpu / c1.cpu)}`);
  }
  for (const n of SIZES.filter((x) => x >= 500)) {
    const rss = Math.max(get(n, 'clonebox cold')?.rss ?? NaN, get(n, 'clonebox steady')?.rss ?? NaN);
    const steady = get(n, 'clonebox steady');
    const failures = ['clonebox cold', 'clonebox steady'].reduce((a, k) => a + (get(n, k)?.failures ?? 0), 0);
    out.push(
      `  N=${n}: peak RSS ${fmt(rss, 0)} MB (≤300 ${verdict(Number.isFinite(rss) ? rss <= 300 : undefined)}); checks not HEALTHY ${failures} (0 ${verdict(failures === 0)})` +
        (steady ? `; sshd ${fmt((steady.sshdCpu * 1000) / n, 1)} ms per VM per steady round (≤10 ${verdict((steady.sshdCpu * 1000) / n <= 10)})` : ''),
    );
  }
  for (const w of watchRes) {
    if (w.error) {
      out.push(`  watch N=${w.n}: ${w.error}`);
      continue;
    }
    out.push(
      `  watch N=${w.n} (real \`health watch --interval ${w.intervalS}s\`, ${w.rounds} rounds): ${fmt(w.cpuPerRound, 3)} s CPU per steady round (rounds ${w.steadyFrom + 1}–${w.rounds}) → ${fmt(w.pctOfCoreAt30s)}% of one core at the default 30 s (≤1% ${verdict(w.pctOfCoreAt30s <= 1)})` +
        `${w.cpuPerRoundWarmup !== undefined ? `; while the JIT warms up (rounds 2–${w.steadyFrom}) ${fmt(w.cpuPerRoundWarmup, 3)} s, rounds 2–${w.rounds} ${fmt(w.cpuPerRoundAll, 3)} s` : ''}; each round [${w.cpuEachRound.join(' ')}]` +
        `${w.intervalS === 30 ? '' : ' (scaled from another interval: the same round costs more CPU after a longer idle, see bench/README.md)'}; RSS ${fmt(w.rssMb, 0)} MB (≤150 ${verdict(w.rssMb <= 150)}); ${w.newConnsSteady} new conns in steady rounds`,
    );
  }
  const steadyMax = get(MAX_N, 'clonebox steady');
  if (steadyMax) out.push(`  steady N=${MAX_N} (driver): ${fmt(steadyMax.cpu, 3)} s CPU per round → ${fmt((steadyMax.cpu / 30) * 100)}% of one core at 30 s`);
  const text = `${out.join('\n')}\n`;
  process.stdout.write(text);
  writeFileSync(path.join(WORK, 'last-table.txt'), text);
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ results, watch: watchRes }, null, 2));
}

try {
  await main();
} catch (err) {
  say(`error: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
