/**
 * The fleet lab for tests: libvirt "VMs" that are network namespaces running a real sshd, nginx,
 * redis and (db-1) postgres, built by `test/lab/fleet.sh` and described to libvirt by a test-driver
 * XML. Needs root (namespaces). Everything it reaches is in those namespaces or on loopback.
 *
 *   const lab = await ensureLab();          // `fleet.sh up` once per test file, then cached
 *   lab.uri, lab.configPath, lab.vms['web-1'].address
 *   await labFault('web-1', 'stop', 'nginx'); // see fleet.sh for every fault
 *   await labExec('db-1', 'pg_isready -h 127.0.0.1');  // a command inside the VM's namespace
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FLEET_SCRIPT = path.join(REPO_ROOT, 'test', 'lab', 'fleet.sh');

/** Where fleet.sh keeps the lab: `$CLONEBOX_LAB_DIR`, else `<repo>/.lab`. */
export function labDir(): string {
  return path.resolve(REPO_ROOT, process.env.CLONEBOX_LAB_DIR ?? '.lab');
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

const LabService = z.enum(['sshd', 'nginx', 'redis', 'postgres']);
export type LabService = z.infer<typeof LabService>;

const LabVm = z.object({
  /** The libvirt domain name. */
  name: z.string(),
  /** The network namespace (`ip netns exec <namespace> …`). */
  namespace: z.string(),
  /** The VM's address: libvirt reports it, sshd/nginx(:80)/redis listen on it. */
  address: z.string(),
  /** The host's end of the VM's veth. */
  hostAddress: z.string(),
  /** web; degraded (nginx /health answers 503); db (adds postgres on the namespace's 127.0.0.1:5432). */
  role: z.enum(['web', 'degraded', 'db']),
  services: z.array(LabService),
  /** A 16 MiB tmpfs for disk checks (`fault VM disk PERCENT` fills it). */
  dataDir: z.string(),
  /** The VM's sshd host public key: the one known_hosts lists for `address`. */
  hostKeyFile: z.string().optional(),
});
export type LabVm = z.infer<typeof LabVm>;

const LabDomain = z.object({
  name: z.string(),
  state: z.enum(['running', 'paused', 'shut off']),
  /** libvirt's domain id; null when shut off. */
  id: z.number().int().nullable(),
  /** What `virsh domifaddr` reports (without the prefix); null when shut off. */
  address: z.string().nullable(),
  /** The running VMs' namespaces, and paused-1's: one with its link down, so its address answers nothing. */
  namespace: z.string().nullable(),
});
export type LabDomain = z.infer<typeof LabDomain>;

const Lab = z.object({
  dir: z.string(),
  /** `test:///<dir>/libvirt/node.xml` */
  uri: z.string(),
  /** A working clonebox.yaml for the whole lab. */
  configPath: z.string(),
  /** The client key every VM's root accepts. */
  identityFile: z.string(),
  /** Every VM's host key by address. */
  knownHostsFile: z.string(),
  /** An empty known_hosts, for first-contact tests. */
  emptyKnownHostsFile: z.string(),
  /** The VMs that run (have a namespace): web-1, web-2, web-3 (degraded), db-1. */
  vms: z.record(z.string(), LabVm),
  /** Every libvirt domain, with what virsh must report: the VMs plus paused-1 and off-1. */
  domains: z.record(z.string(), LabDomain),
});
export type Lab = z.infer<typeof Lab>;

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; 128 + n when killed by signal n (as a shell reports it), e.g. on timeout. */
  code: number;
}

interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs a program; resolves with its outcome whatever the exit code (rejects only if it cannot start). */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr, code: 0 });
        if (typeof error.code === 'string') return reject(error); // ENOENT, EACCES: never ran
        const signal = error.signal ? constants.signals[error.signal] : undefined;
        resolve({ stdout, stderr, code: signal === undefined ? (error.code ?? 1) : 128 + signal });
      },
    );
  });
}

async function fleet(args: readonly string[], timeoutMs: number): Promise<RunResult> {
  const result = await run('bash', [FLEET_SCRIPT, ...args], {
    timeoutMs,
    env: { ...process.env, CLONEBOX_LAB_DIR: labDir() },
  });
  if (result.code !== 0) {
    const why = result.stderr.trim() || result.stdout.trim() || `exit code ${result.code}`;
    throw new Error(`fleet.sh ${args.join(' ')} failed: ${why}`);
  }
  return result;
}

/** Reads the description of an up lab (written by `fleet.sh up`). */
export async function readLab(): Promise<Lab> {
  const file = path.join(labDir(), 'lab.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing: the lab is not up (run: bash test/lab/fleet.sh up)`);
  }
  return Lab.parse(JSON.parse(text));
}

let lab: Promise<Lab> | undefined;

/**
 * Brings the lab up (or back to its healthy baseline: faults left over are undone) once per test
 * file, and describes it. Cold ~5 s, warm under 1 s. Rejects when not root.
 */
export function ensureLab(): Promise<Lab> {
  lab ??= (async () => {
    if (!isRoot()) throw new Error('the lab needs root for network namespaces; run the tests as root');
    await fleet(['up'], 180_000);
    return readLab();
  })();
  lab.catch(() => {
    lab = undefined; // let a later call try again
  });
  return lab;
}

/** The VM named `name`, or an error that lists the VMs. */
export async function labVm(name: string): Promise<LabVm> {
  const { vms } = await ensureLab();
  const vm = vms[name];
  if (!vm) throw new Error(`no lab VM named '${name}'; they are: ${Object.keys(vms).join(', ')}`);
  return vm;
}

/**
 * Applies a fault through `fleet.sh fault VM ...args` and resolves with what it printed, e.g.
 * `labFault('web-1', 'stop', 'nginx')`, `('web-1', 'disk', '85')`, `('web-1', 'link', 'down')`,
 * `('web-1', 'freeze', 'redis')`, `('web-1', 'hostkey', 'rotate')`, `('web-1', 'clear')`.
 */
export async function labFault(vm: string, ...args: string[]): Promise<string> {
  await labVm(vm);
  const { stdout } = await fleet(['fault', vm, ...args], 60_000);
  return stdout.trim();
}

/** Runs `command` with bash inside the VM's namespace (as root, not through sshd). Never rejects on exit codes. */
export async function labExec(vm: string, command: string, options: { timeoutMs?: number } = {}): Promise<RunResult> {
  const { namespace } = await labVm(vm);
  return run('ip', ['netns', 'exec', namespace, 'bash', '-c', command], { timeoutMs: options.timeoutMs ?? 30_000 });
}
