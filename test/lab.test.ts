/**
 * The fleet lab is real: each VM is a network namespace whose sshd, nginx, redis and postgres
 * answer as planned, libvirt's test driver reports the planned states and addresses, and faults
 * really happen. Needs root; skipped otherwise.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CloneboxConfig } from '../src/config/schema.js';
import { ensureLab, FLEET_SCRIPT, isRoot, labExec, labFault, run, type Lab } from './lab/lab.js';

type Connect = 'connected' | 'refused' | 'timeout' | 'unreachable' | `error ${string}`;

/** Opens a TCP connection from the host and closes it at once. */
function tcpConnect(host: string, port: number, timeoutMs = 2000): Promise<Connect> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (outcome: Connect): void => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.once('connect', () => done('connected'));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') done('refused');
      else if (error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH') done('unreachable');
      else done(`error ${error.code ?? error.message}`);
    });
  });
}

interface HttpAnswer {
  status: number;
  contentType: string;
  contentLength: number;
  body: string;
}

/** One HTTP request from the host; HEAD keeps /big from being transferred. */
function httpRequest(host: string, port: number, path: string, method = 'GET'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port, path, method, timeout: 5000, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          contentType: response.headers['content-type'] ?? '',
          contentLength: Number(response.headers['content-length'] ?? -1),
          body,
        }),
      );
    });
    request.on('timeout', () => request.destroy(new Error(`no answer from ${host}:${port}${path} within 5 s`)));
    request.on('error', reject);
    request.end();
  });
}

/** HTTP/1.0 GET from inside the VM's namespace with bash's /dev/tcp (no curl needed): status line, headers, body. */
async function httpInside(vm: string, port: number, path: string): Promise<{ code: number; raw: string }> {
  const { stdout, code } = await labExec(
    vm,
    `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET ${path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && timeout 5 cat <&3`,
  );
  return { code, raw: stdout };
}

/** Sends one redis command from the host and reads the first reply line (or times out). */
function redisPing(host: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: 6379 });
    let reply = '';
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.trim());
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
  });
}

function ssh(lab: Lab, address: string, command: string, knownHosts = lab.knownHostsFile): ReturnType<typeof run> {
  return run(
    'ssh',
    [
      '-i', lab.identityFile,
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=5',
      `root@${address}`,
      command,
    ],
    { timeoutMs: 20_000 },
  );
}

/** `type base64` of each host key that ssh-keyscan gets from `address`. */
async function scanHostKey(address: string): Promise<string> {
  const { stdout, stderr, code } = await run('ssh-keyscan', ['-T', '5', '-t', 'ed25519', address]);
  expect(code, stderr).toBe(0);
  const line = stdout.split('\n').find((l) => l.startsWith(`${address} `));
  expect(line, `ssh-keyscan ${address} printed no key: ${stderr}`).toBeDefined();
  return line!.split(/\s+/).slice(1, 3).join(' ');
}

async function knownHostKey(lab: Lab, address: string): Promise<string | undefined> {
  const lines = (await readFile(lab.knownHostsFile, 'utf8')).split('\n');
  return lines.find((l) => l.startsWith(`${address} `))?.split(/\s+/).slice(1, 3).join(' ');
}

describe.skipIf(!isRoot())('fleet lab', () => {
  let lab: Lab;
  const RUNNING = ['web-1', 'web-2', 'web-3', 'db-1'];

  beforeAll(async () => {
    lab = await ensureLab();
  }, 180_000);

  it('has the planned fleet, and fleet.sh status finds every service up', async () => {
    expect(Object.keys(lab.vms).sort()).toEqual([...RUNNING].sort());
    expect(Object.keys(lab.domains).sort()).toEqual([...RUNNING, 'off-1', 'paused-1'].sort());
    const status = await run('bash', [FLEET_SCRIPT, 'status'], { env: { ...process.env, CLONEBOX_LAB_DIR: lab.dir } });
    expect(status.code, status.stdout + status.stderr).toBe(0);
    for (const vm of RUNNING) expect(status.stdout).toMatch(new RegExp(`^${vm} .* sshd:up nginx:up redis:up`, 'm'));
  });

  describe('libvirt test driver', () => {
    it('lists every domain in its planned state', async () => {
      const { stdout, code, stderr } = await run('virsh', ['-c', lab.uri, '-q', 'list', '--all']);
      expect(code, stderr).toBe(0);
      const states = Object.fromEntries(
        stdout
          .trim()
          .split('\n')
          .map((line) => /^\s*(\S+)\s+(\S+)\s+(.+?)\s*$/.exec(line))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => [m[2], { id: m[1] === '-' ? null : Number(m[1]), state: m[3] }]),
      );
      for (const domain of Object.values(lab.domains)) {
        expect(states[domain.name], domain.name).toEqual({ id: domain.id, state: domain.state });
      }
    });

    it.each(['web-1', 'web-2', 'web-3', 'db-1', 'paused-1'])('reports %s at exactly its planned address', async (name) => {
      const { stdout, code, stderr } = await run('virsh', ['-c', lab.uri, '-q', 'domifaddr', name, '--full']);
      expect(code, stderr).toBe(0);
      const addresses = stdout.trim().split('\n').map((line) => line.trim().split(/\s+/)[3]);
      expect(addresses).toEqual([`${lab.domains[name]!.address}/30`]);
      if (lab.vms[name]) expect(lab.vms[name].address).toBe(lab.domains[name]!.address);
    });

    it('gives the paused domain an address that answers nothing (its namespace link is down)', async () => {
      const paused = lab.domains['paused-1']!;
      expect(paused.namespace).toBe(`${process.env.CLONEBOX_LAB_NS ?? 'cbx'}-paused-1`);
      expect(await tcpConnect(paused.address!, 22, 700)).toMatch(/^(timeout|unreachable)$/);
    });

    it('refuses addresses for the shut-off domain', async () => {
      const { code, stderr } = await run('virsh', ['-c', lab.uri, '-q', 'domifaddr', 'off-1', '--full']);
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/not running/);
    });
  });

  describe('sshd', () => {
    it.each(['web-1', 'web-2', 'web-3', 'db-1'])('%s answers with the host key known_hosts lists for it', async (name) => {
      const vm = lab.vms[name]!;
      const key = await scanHostKey(vm.address);
      expect(key).toBe(await knownHostKey(lab, vm.address));
      const pub = (await readFile(vm.hostKeyFile!, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
      expect(key).toBe(pub);
    });

    it('lets root in with the lab key, and runs the command inside the VM', async () => {
      const vm = lab.vms['web-1']!;
      const { stdout, stderr, code } = await ssh(lab, vm.address, 'ip -4 -br addr show dev eth0; redis-cli -h 127.0.0.1 ping; echo "home=$HOME"');
      expect(code, stderr).toBe(0);
      expect(stdout).toContain(`${vm.address}/30`);
      expect(stdout).toContain('PONG');
      expect(stdout).toContain('home=/root');
    });

    it('reaches postgres on db-1 only from inside (localhost means the guest)', async () => {
      const { stdout, stderr, code } = await ssh(lab, lab.vms['db-1']!.address, 'pg_isready -h 127.0.0.1 -p 5432');
      expect(code, stderr).toBe(0);
      expect(stdout).toContain('accepting connections');
    });

    it('refuses a host whose key is not known, under a strict policy', async () => {
      const { stderr, code } = await ssh(lab, lab.vms['web-2']!.address, 'true', lab.emptyKnownHostsFile);
      expect(code).toBe(255);
      expect(stderr).toMatch(/Host key verification failed/);
    });
  });

  describe('nginx', () => {
    it.each([
      ['web-1', 200, { status: 'ok', db: { status: 'ok' } }],
      ['web-2', 200, { status: 'ok', db: { status: 'ok' } }],
      ['web-3', 503, { status: 'degraded' }], // up but not serving right: the demo's bad VM
      ['db-1', 200, { status: 'ok', db: { status: 'ok' } }],
    ] as const)('%s: /health on the namespace 127.0.0.1:8080 answers %i', async (name, status, json) => {
      const { code, raw } = await httpInside(name, 8080, '/health');
      expect(code).toBe(0);
      const [head = '', body = ''] = raw.split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(head).toMatch(/^Content-Type: application\/json$/im);
      expect(JSON.parse(body)).toEqual(json);
    });

    it('serves /health, / and a 100 MB /big on the VM address, port 80', async () => {
      const address = lab.vms['web-1']!.address;
      const health = await httpRequest(address, 80, '/health');
      expect(health.status).toBe(200);
      expect(health.contentType).toBe('application/json');
      expect(JSON.parse(health.body)).toEqual({ status: 'ok', db: { status: 'ok' } });
      const root = await httpRequest(address, 80, '/');
      expect(root.status).toBe(200);
      expect(root.body).toContain('clonebox lab web-1');
      const big = await httpRequest(address, 80, '/big', 'HEAD');
      expect(big.status).toBe(200);
      expect(big.contentLength).toBe(100 * 1024 * 1024);
    });

    it('keeps port 8080 on the namespace loopback: refused on the VM address', async () => {
      expect(await tcpConnect(lab.vms['web-1']!.address, 8080)).toBe('refused');
    });
  });

  describe('postgres and redis', () => {
    it('postgres is NOT reachable from the host on db-1 address:5432', async () => {
      expect(await tcpConnect(lab.vms['db-1']!.address, 5432)).toBe('refused');
    });

    it('postgres is reachable inside db-1 on 127.0.0.1:5432', async () => {
      const { stdout, code } = await labExec('db-1', 'pg_isready -h 127.0.0.1 -p 5432');
      expect(code, stdout).toBe(0);
    });

    it.each(['web-1', 'web-2', 'web-3', 'db-1'])('%s: redis answers PING on the VM address', async (name) => {
      expect(await redisPing(lab.vms[name]!.address, 2000)).toBe('+PONG');
    });
  });

  describe('faults', () => {
    let touched: string | undefined;
    afterEach(async () => {
      if (touched) await labFault(touched, 'clear');
      touched = undefined;
    }, 60_000);

    it('stop nginx really stops it, start really starts it', async () => {
      touched = 'web-2';
      const address = lab.vms['web-2']!.address;
      expect(await labFault('web-2', 'stop', 'nginx')).toMatch(/nginx stopped/);
      expect(await tcpConnect(address, 80)).toBe('refused');
      expect((await httpInside('web-2', 8080, '/health')).code).not.toBe(0);
      const status = await run('bash', [FLEET_SCRIPT, 'status'], { env: { ...process.env, CLONEBOX_LAB_DIR: lab.dir } });
      expect(status.code).toBe(1);
      expect(status.stdout).toMatch(/^web-2 .* nginx:down/m);

      await labFault('web-2', 'start', 'nginx');
      expect((await httpRequest(address, 80, '/health')).status).toBe(200);
      expect((await httpInside('web-2', 8080, '/health')).raw).toMatch(/^HTTP\/1\.1 200 /);
    });

    it('disk PERCENT fills the data tmpfs so that df reports PERCENT', async () => {
      touched = 'web-1';
      const { dataDir } = lab.vms['web-1']!;
      await labFault('web-1', 'disk', '85');
      const full = await labExec('web-1', `df --output=pcent ${dataDir} | tail -n 1`);
      expect(full.stdout.trim()).toBe('85%');
      await labFault('web-1', 'disk', '0');
      expect((await labExec('web-1', `df --output=pcent ${dataDir} | tail -n 1`)).stdout.trim()).toBe('0%');
    });

    it('link down makes the VM silent (a timeout, not a refusal), and its traffic stays on its veth', async () => {
      touched = 'web-3';
      const { address, name } = lab.vms['web-3']!;
      await labFault(name, 'link', 'down');
      expect(await tcpConnect(address, 22, 1000)).toMatch(/^(timeout|unreachable)$/);
      const route = await run('ip', ['route', 'get', address]);
      expect(route.stdout).toContain(`dev ${process.env.CLONEBOX_LAB_NS ?? 'cbx'}-${name}`);
      await labFault(name, 'link', 'up');
      expect(await tcpConnect(address, 22)).toBe('connected');
    });

    it('freeze leaves a port that accepts but never answers', async () => {
      touched = 'web-1';
      const { address } = lab.vms['web-1']!;
      await labFault('web-1', 'freeze', 'redis');
      expect(await tcpConnect(address, 6379)).toBe('connected');
      expect(await redisPing(address, 700)).toBe('timeout');
      await labFault('web-1', 'thaw', 'redis');
      expect(await redisPing(address, 2000)).toBe('+PONG');
    });

    it('hostkey rotate changes the key sshd shows, and not known_hosts', async () => {
      touched = 'db-1';
      const { address } = lab.vms['db-1']!;
      const known = await knownHostKey(lab, address);
      await labFault('db-1', 'hostkey', 'rotate');
      expect(await scanHostKey(address)).not.toBe(known);
      expect(await knownHostKey(lab, address)).toBe(known);
      const refused = await ssh(lab, address, 'true');
      expect(refused.code).toBe(255);
      expect(refused.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED/);
      await labFault('db-1', 'hostkey', 'restore');
      expect(await scanHostKey(address)).toBe(known);
    });
  });

  describe('generated clonebox.yaml', () => {
    it('is a valid config for the whole lab', async () => {
      const config = CloneboxConfig.parse(parseYaml(await readFile(lab.configPath, 'utf8')));
      expect(config.libvirt.uri).toBe(lab.uri);
      expect(config.ssh).toMatchObject({
        user: 'root',
        identity_file: lab.identityFile,
        known_hosts: lab.knownHostsFile,
        host_key_policy: 'strict',
      });
      expect(config.health_checks.map((c) => c.name)).toEqual(['api-health', 'web-root', 'redis', 'redis-ping', 'disk-root', 'memory']);
      expect(Object.keys(config.vms).sort()).toEqual([...RUNNING].sort());
      expect(config.vms['db-1']!.health_checks.map((c) => c.name)).toEqual(['data', 'postgres', 'pg-ready']);
      for (const name of RUNNING) {
        expect(config.vms[name]!.health_checks[0]).toMatchObject({ type: 'disk', path: lab.vms[name]!.dataDir });
      }
    });
  });
});
