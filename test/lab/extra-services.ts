/**
 * More real services in one lab guest (db-1, which no test faults), for the grpc, dns and https
 * tests. Started on demand by the test files that need them, idempotently (a warm check is a few
 * /proc reads and one `ss`), and removed with the namespace by `fleet.sh down`:
 *   - a gRPC server with the standard health service (test/lab/guest-services.mjs) on the guest's
 *     loopback, plaintext and TLS, switchable between SERVING and NOT_SERVING; a slow HTTP endpoint
 *   - dnsmasq with records the tests control, on 127.0.0.53 (the guest's resolver: the guest's
 *     /etc/resolv.conf says so, as on a systemd-resolved machine), 127.0.0.1 and the VM's address
 *   - nginx serving certificates made here with openssl: valid, 10 days left, 1 day left, expired,
 *     for another host, self-signed
 * Files live in `<lab dir>/extra`. Certificates are remade when older than 6 hours, so "10 days left"
 * stays between 9.75 and 10 days whenever a test looks.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { labDir, run, type Lab } from './lab.js';

export const EXTRA_VM = 'db-1';
const VERSION = 2;
const CERT_MAX_AGE_MS = 6 * 3_600_000;
const DAY = 86_400_000;

/** Ports inside the guest (127.0.0.1 unless said otherwise). */
export const PORTS = {
  grpc: 50051,
  grpcTls: 50052,
  slowHttp: 8099,
  /** nginx https, by the certificate it serves. 8441 also listens on the VM's address. */
  https: { valid: 8441, days10: 8442, days1: 8443, expired: 8444, wrongHost: 8445, selfSigned: 8446 },
} as const;

/** Records dnsmasq serves (authoritative for lab.test; anything else there is NXDOMAIN). */
export const DNS = {
  resolver: '127.0.0.53',
  a: { name: 'www.lab.test', ip: '10.1.2.3' },
  aaaa: { name: 'www.lab.test', ip: 'fd00::1' },
  cname: { name: 'alias.lab.test', target: 'www.lab.test' },
  mx: { name: 'lab.test', exchange: 'mail.lab.test', preference: 10 },
  srv: { name: '_sip._tcp.lab.test', target: 'sip.lab.test', port: 5060, priority: 0, weight: 5 },
  txt: { name: 'lab.test', text: 'v=spf1 -all' },
  ptr: { ip: '10.1.2.3', name: 'www.lab.test' },
  missing: 'nope.lab.test',
} as const;

export interface ExtraServices {
  vm: string;
  namespace: string;
  address: string;
  dir: string;
  /** The lab CA that signed every certificate but the self-signed one. */
  caFile: string;
}

type Cert = keyof typeof PORTS.https;

function utc(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await run('openssl', args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed in ${cwd}: ${r.stderr.trim()}`);
}

async function makeCerts(dir: string, address: string): Promise<void> {
  const f = (name: string) => path.join(dir, name);
  await writeFile(f('ca-index.txt'), '');
  await writeFile(
    f('ca.cnf'),
    [
      '[ca]',
      'default_ca = lab',
      '[lab]',
      `database = ${f('ca-index.txt')}`,
      `new_certs_dir = ${dir}`,
      `certificate = ${f('ca.pem')}`,
      `private_key = ${f('ca.key')}`,
      'rand_serial = yes',
      'default_md = sha256',
      'policy = any',
      'copy_extensions = copy',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-subj', '/CN=clonebox lab CA', '-days', '3650',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('leaf.key')], dir);
  const now = Date.now();
  const signed: Array<[Cert, string, number, number]> = [
    ['valid', `DNS:localhost,DNS:tls.lab.test,IP:127.0.0.1,IP:${address}`, now - 3_600_000, now + 365 * DAY],
    ['days10', 'DNS:localhost,IP:127.0.0.1', now - 3_600_000, now + 10 * DAY],
    ['days1', 'DNS:localhost,IP:127.0.0.1', now - 3_600_000, now + DAY],
    ['expired', 'DNS:localhost,IP:127.0.0.1', now - 30 * DAY, now - 2 * DAY],
    ['wrongHost', 'DNS:other.example', now - 3_600_000, now + 365 * DAY],
  ];
  for (const [name, san, from, to] of signed) {
    await openssl(['req', '-new', '-key', f('leaf.key'), '-subj', `/CN=${san.split(',')[0]!.slice(4)}`, '-addext', `subjectAltName=${san}`, '-out', f(`${name}.csr`)], dir);
    await openssl(['ca', '-batch', '-config', f('ca.cnf'), '-notext', '-startdate', utc(from), '-enddate', utc(to), '-in', f(`${name}.csr`), '-out', f(`${name}.pem`)], dir);
  }
  await openssl(['req', '-x509', '-key', f('leaf.key'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '365', '-out', f('selfSigned.pem')], dir);
}

function nginxConf(dir: string, address: string): string {
  const servers = Object.entries(PORTS.https).map(([cert, port]) => {
    const listen = [`listen 127.0.0.1:${port} ssl;`, ...(cert === 'valid' ? [`listen ${address}:${port} ssl;`] : [])].join(' ');
    return `  server { ${listen} ssl_certificate ${dir}/${cert}.pem; ssl_certificate_key ${dir}/leaf.key; location / { return 200 'tls ok ${cert}\\n'; } }`;
  });
  const tmp = (n: string) => `${n}_temp_path ${dir}/nginx-tmp/${n};`;
  return [
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/nginx.log warn;`,
    'worker_processes 1;',
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    '  default_type text/plain;',
    `  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(tmp).join(' ')}`,
    ...servers,
    '}',
    '',
  ].join('\n');
}

function dnsmasqConf(dir: string, address: string): string {
  return [
    'port=53',
    `listen-address=${DNS.resolver}`,
    'listen-address=127.0.0.1',
    `listen-address=${address}`,
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'no-negcache',
    'local=/lab.test/',
    `host-record=${DNS.a.name},${DNS.a.ip},${DNS.aaaa.ip}`,
    `cname=${DNS.cname.name},${DNS.cname.target}`,
    `mx-host=${DNS.mx.name},${DNS.mx.exchange},${DNS.mx.preference}`,
    `srv-host=${DNS.srv.name},${DNS.srv.target},${DNS.srv.port},${DNS.srv.priority},${DNS.srv.weight}`,
    `txt-record=${DNS.txt.name},"${DNS.txt.text}"`,
    `ptr-record=${DNS.ptr.ip.split('.').reverse().join('.')}.in-addr.arpa,${DNS.ptr.name}`,
    `pid-file=${dir}/dnsmasq.pid`,
    `log-facility=${dir}/dnsmasq.log`,
    'user=root',
    '',
  ].join('\n');
}

/** The pid in `file` when that process is alive, is `comm`, and lives in namespace `ns`. */
async function runningPid(file: string, comm: string, ns: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const [c, mine, theirs] = await Promise.all([readFile(`/proc/${pid}/comm`, 'utf8'), stat(`/proc/${pid}/ns/net`), stat(`/run/netns/${ns}`)]);
    return c.trim() === comm && mine.ino === theirs.ino ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function stop(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
}

/** Listening addresses in `ns`, each with the pids that hold it. */
async function listeners(ns: string): Promise<Map<string, number[]>> {
  const r = await run('ip', ['netns', 'exec', ns, 'ss', '-ltnpH'], { timeoutMs: 10_000 });
  const out = new Map<string, number[]>();
  for (const line of r.stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    if (local) out.set(local, [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])));
  }
  return out;
}

/** Stop what still listens on `ports` in `ns` without a pid file of ours (left by a killed run). */
async function stopOrphans(ns: string, ports: readonly number[]): Promise<void> {
  const held = await listeners(ns);
  const pids = new Set([...held].filter(([addr]) => ports.some((p) => addr.endsWith(`:${p}`))).flatMap(([, p]) => p));
  for (const pid of pids) await stop(pid);
}

let ensured: Promise<ExtraServices> | undefined;

/** Start (or check) the extra services; once per test file, cheap when they already run. */
export function ensureExtraServices(lab: Lab): Promise<ExtraServices> {
  ensured ??= start(lab);
  ensured.catch(() => (ensured = undefined));
  return ensured;
}

async function start(lab: Lab): Promise<ExtraServices> {
  const vm = lab.vms[EXTRA_VM];
  if (!vm) throw new Error(`the lab has no ${EXTRA_VM}`);
  const { namespace: ns, address } = vm;
  const dir = path.join(labDir(), 'extra');
  await mkdir(path.join(dir, 'nginx-tmp'), { recursive: true });
  const statePath = path.join(dir, 'state.json');
  const state = JSON.parse(await readFile(statePath, 'utf8').catch(() => '{}')) as { version?: number; created?: number; address?: string };
  const fresh = state.version === VERSION && state.address === address && Date.now() - (state.created ?? 0) < CERT_MAX_AGE_MS;
  if (!fresh) {
    await makeCerts(dir, address);
    await writeFile(path.join(dir, 'nginx.conf'), nginxConf(dir, address));
    await writeFile(path.join(dir, 'dnsmasq.conf'), dnsmasqConf(dir, address));
    await writeFile(path.join(dir, 'resolv.conf'), `# clonebox lab: the guest's resolver\nnameserver ${DNS.resolver}\n`);
  }
  const inNs = (...cmd: string[]) => run('ip', ['netns', 'exec', ns, ...cmd], { timeoutMs: 20_000 });

  let nginx = await runningPid(path.join(dir, 'nginx.pid'), 'nginx', ns);
  if (!fresh) await stop(nginx), (nginx = undefined);
  if (nginx === undefined) {
    await stopOrphans(ns, Object.values(PORTS.https));
    const r = await inNs('/usr/sbin/nginx', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'nginx.log'));
    if (r.code !== 0) throw new Error(`nginx (https) did not start in ${ns}: ${r.stderr.trim()}`);
  }
  let dnsmasq = await runningPid(path.join(dir, 'dnsmasq.pid'), 'dnsmasq', ns);
  if (!fresh) await stop(dnsmasq), (dnsmasq = undefined);
  if (dnsmasq === undefined) {
    await stopOrphans(ns, [53]);
    const r = await inNs('dnsmasq', '-C', path.join(dir, 'dnsmasq.conf'));
    if (r.code !== 0) throw new Error(`dnsmasq did not start in ${ns}: ${r.stderr.trim()}`);
  }
  const servicesPid = path.join(dir, 'guest-services.pid');
  let node = await runningPid(servicesPid, 'node', ns);
  if (!fresh) await stop(node), (node = undefined);
  if (node === undefined) {
    await stopOrphans(ns, [PORTS.grpc, PORTS.grpcTls, PORTS.slowHttp]);
    const ready = path.join(dir, 'guest-services.ready');
    await writeFile(ready, '');
    const log = openSync(path.join(dir, 'guest-services.log'), 'a');
    const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'guest-services.mjs');
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, script, '--grpc', `127.0.0.1:${PORTS.grpc}`, '--grpc-tls', `127.0.0.1:${PORTS.grpcTls}`,
        '--cert', path.join(dir, 'valid.pem'), '--key', path.join(dir, 'leaf.key'), '--http', `127.0.0.1:${PORTS.slowHttp}`, '--ready', ready],
      { detached: true, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    child.unref();
    await writeFile(servicesPid, `${child.pid}\n`);
  }
  // The guest's /etc/resolv.conf names dnsmasq: bound over the file in sshd's own mount namespace
  // (made by `ip netns exec`), so only what runs through this guest's sshd sees it.
  const sshdPid = (await readFile(path.join(lab.dir, 'vms', EXTRA_VM, 'sshd.pid'), 'utf8')).trim();
  const mounts = await readFile(`/proc/${sshdPid}/mountinfo`, 'utf8');
  if (!mounts.includes(' /etc/resolv.conf ')) {
    const r = await run('nsenter', ['-t', sshdPid, '-m', 'mount', '--bind', path.join(dir, 'resolv.conf'), '/etc/resolv.conf']);
    if (r.code !== 0) throw new Error(`cannot give ${EXTRA_VM} its resolv.conf: ${r.stderr.trim()}`);
  }
  const want = [
    ...Object.values(PORTS.https).map((p) => `127.0.0.1:${p}`),
    `${address}:${PORTS.https.valid}`,
    `${DNS.resolver}:53`,
    '127.0.0.1:53',
    `${address}:53`,
    `127.0.0.1:${PORTS.grpc}`,
    `127.0.0.1:${PORTS.grpcTls}`,
    `127.0.0.1:${PORTS.slowHttp}`,
  ];
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await listeners(ns);
    const missing = want.filter((w) => !up.has(w));
    if (missing.length === 0) break;
    if (Date.now() > deadline) throw new Error(`extra services in ${ns} not listening on ${missing.join(', ')} after 30 s (logs in ${dir})`);
    await new Promise((r) => setTimeout(r, 150));
  }
  if (!fresh) await writeFile(statePath, JSON.stringify({ version: VERSION, created: Date.now(), address }));
  const services: ExtraServices = { vm: EXTRA_VM, namespace: ns, address, dir, caFile: path.join(dir, 'ca.pem') };
  await setGrpcServing(services, true);
  return services;
}

/** Switch the gRPC server's overall status ("") between SERVING and NOT_SERVING. */
export async function setGrpcServing(services: ExtraServices, serving: boolean): Promise<void> {
  const pid = await runningPid(path.join(services.dir, 'guest-services.pid'), 'node', services.namespace);
  if (pid === undefined) throw new Error('the gRPC lab server is not running');
  process.kill(pid, serving ? 'SIGUSR2' : 'SIGUSR1');
}
