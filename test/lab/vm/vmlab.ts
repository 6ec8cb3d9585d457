/**
 * The VM lab from vitest: a real QEMU guest under libvirt, inside network namespace `cbx-vmlab`
 * (see up.sh). Nothing here talks to the guest from the host's own network: every command that
 * reaches it runs inside the namespace (`execInLabNs`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VM_LAB_DIR = dirname(fileURLToPath(import.meta.url));
export const VM_LAB_RUN = process.env.CLONEBOX_VMLAB_RUN ?? '/run/clonebox-vmlab';
export const VM_LAB_NETNS = 'cbx-vmlab';

/** What up.sh writes to `<run dir>/state.json`. */
export interface VmLabState {
  /** libvirt connect URI; the socket lives outside libvirtd's private mounts, so any mount namespace can use it. */
  uri: string;
  netns: string;
  /** The running guest. */
  vm: string;
  /** Defined, never started: `domifaddr` fails with "domain is not running". */
  offVm: string;
  network: string;
  /** The guest's address from its DHCP lease; reachable only from inside `netns`. */
  address: string;
  mac: string;
  sshUser: string;
  /** Private key (OpenSSH format, ed25519) authorized for root in the guest. */
  sshKey: string;
  /** known_hosts with the guest's dropbear host key for `address`. */
  knownHosts: string;
  hostKey: string;
  /** A `.clonebox.yaml` for the CLI against this guest (see up.sh). */
  configFile: string;
  runDir: string;
  imageDir: string;
  kernel: string;
  consoleLog: string;
  accel: 'tcg' | 'kvm';
  /** The image has qemu-ga on the org.qemu.guest_agent.0 channel (`--source agent` works). */
  guestAgent: boolean;
  guestPorts: { ssh: number; http: number; httpLoopback: number; tcpEcho: number };
  timings: {
    imageMs: number;
    libvirtdStartMs: number;
    capabilitiesCached: boolean;
    bootToLeaseMs: number;
    bootToSshMs: number;
    /** 2 when the first boot got no lease in time and up.sh restarted the guest once. */
    boots: number;
    upTotalMs: number;
  };
}

export type VmLabAvailability = { ok: true } | { ok: false; why: string };

export interface CommandResult {
  /** Exit code; -1 when killed by a signal (see `signal`; a timeout kills) or when the command could not start. */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const PACKAGES =
  'libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 dnsmasq-base iptables iproute2 busybox-static dropbear-bin kmod cpio xz-utils openssh-client';
const TOOLS = ['ip', 'unshare', 'virsh', 'libvirtd', 'virtlogd', 'qemu-system-x86_64', 'dnsmasq', 'iptables', 'ssh', 'ssh-keygen', 'busybox', 'dropbearkey', 'cpio', 'depmod', 'xz'];

function onPath(tool: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether this machine can run the VM lab, and if not, exactly why. Cheap: no process is started. */
export function vmLabAvailable(): VmLabAvailability {
  if (process.env.CLONEBOX_VMLAB === '0') return { ok: false, why: 'disabled by CLONEBOX_VMLAB=0' };
  if (process.platform !== 'linux') return { ok: false, why: `needs Linux (network namespaces), this is ${process.platform}` };
  if (process.getuid?.() !== 0) {
    return { ok: false, why: 'needs root (network and mount namespaces, libvirtd); run the suite as root' };
  }
  const missing = TOOLS.filter((tool) => !onPath(tool));
  if (missing.length > 0) {
    return { ok: false, why: `missing ${missing.join(', ')}: apt-get install --no-install-recommends ${PACKAGES}` };
  }
  if (!existsSync('/dev/net/tun')) return { ok: false, why: 'no /dev/net/tun (libvirt needs it for the guest NIC)' };
  // No cached image: the build downloads the kernel .deb, so apt must know linux-image-amd64.
  const check = spawnSync('bash', [join(VM_LAB_DIR, 'build-image.sh'), '--check'], { encoding: 'utf8' });
  if (check.status !== 0) {
    const apt = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
    if (apt.status !== 0 || !/Depends: linux-image-\d/.test(apt.stdout)) {
      return { ok: false, why: `no cached guest image (${check.stdout.trim()}) and apt cannot resolve linux-image-amd64: run apt-get update, then test/lab/vm/build-image.sh` };
    }
  }
  return { ok: true };
}

function run(argv: string[], options: { timeoutMs: number; input?: string; env?: NodeJS.ProcessEnv }): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('empty command');
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: -1, signal: null, stdout, stderr: stderr + String(error), timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

/** Run a command inside the lab's network namespace (where the guest is reachable). Never throws on a non-zero exit. */
export function execInLabNs(cmd: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  return run(['ip', 'netns', 'exec', VM_LAB_NETNS, ...cmd], { timeoutMs: options.timeoutMs ?? 30_000, input: options.input });
}

/** OpenSSH client arguments that reach the guest as root, refusing any host key but the guest's. */
export function guestSshArgs(state: VmLabState, extra: string[] = []): string[] {
  return [
    'ssh',
    '-i', state.sshKey,
    '-o', `UserKnownHostsFile=${state.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'LogLevel=ERROR',
    ...extra,
    `${state.sshUser}@${state.address}`,
  ];
}

/** Run a shell command in the guest over SSH (from inside the namespace). */
export function guestSsh(state: VmLabState, command: string, options: { timeoutMs?: number; input?: string; sshOptions?: string[] } = {}): Promise<CommandResult> {
  return execInLabNs([...guestSshArgs(state, options.sshOptions), command], options);
}

export function readVmLabState(): VmLabState {
  return JSON.parse(readFileSync(join(VM_LAB_RUN, 'state.json'), 'utf8')) as VmLabState;
}

/**
 * Start the lab (build the image if needed, start libvirtd, boot the guest, wait for lease + SSH)
 * and return its state. An already answering lab is reused as it is.
 */
export async function bootVmLab(options: { timeoutMs?: number; bootTimeoutS?: number } = {}): Promise<VmLabState> {
  const env = { ...process.env, CLONEBOX_VMLAB_BOOT_TIMEOUT: String(options.bootTimeoutS ?? 90) };
  const result = await run(['bash', join(VM_LAB_DIR, 'up.sh')], { timeoutMs: options.timeoutMs ?? 160_000, env });
  if (result.code !== 0) {
    const why = result.timedOut ? `timed out after ${options.timeoutMs ?? 160_000} ms` : `exit ${result.code}`;
    const tail = result.stderr.trim().split('\n').slice(-25).join('\n');
    throw new Error(`test/lab/vm/up.sh failed (${why}); run test/lab/vm/down.sh to clean up\n${tail}`);
  }
  return readVmLabState();
}

/** Stop the lab: destroy the guests, stop the daemons, remove the namespace. Idempotent. */
export async function stopVmLab(options: { timeoutMs?: number } = {}): Promise<void> {
  const result = await run(['bash', join(VM_LAB_DIR, 'down.sh'), '--quiet'], { timeoutMs: options.timeoutMs ?? 60_000 });
  if (result.code !== 0) throw new Error(`test/lab/vm/down.sh failed (exit ${result.code}):\n${result.stderr}`);
}
