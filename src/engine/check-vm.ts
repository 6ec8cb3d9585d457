/** Run every check of one VM: guest probes over its pooled SSH connection, host probes from here. */
import { connect as netConnect, type Socket } from 'node:net';
import type { ResolvedVm } from '../config/resolve.js';
import type { HealthCheck } from '../config/schema.js';
import type { VmTarget } from '../inventory/discover.js';
import { isGuestLocal, transportOf } from '../probes/registry.js';
import type { ProbeTarget } from '../probes/types.js';
import type { CheckResult, VMHealthReport } from '../report.js';
import type { SshPool, SshTarget } from '../transport/ssh-pool.js';
import { agentExec as agentExecCommand } from '../transport/agent.js';
import { TransportError, type ExecOptions, type ExecResult, type GuestSession } from '../transport/types.js';
import type { LibvirtBackend } from '../inventory/types.js';
import { buildVmReport } from './aggregate.js';
import { result, runChecks } from './run-checks.js';

/** Dial host:port from the hypervisor, honouring the signal. */
export function dial(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const socket = netConnect({ host, port });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

/** `{{address}}` in a check's url or host stands for the VM's address (for probes from the host). */
export function expandPlaceholders(check: HealthCheck, address: string): HealthCheck {
  const forUrl = address.includes(':') ? `[${address}]` : address;
  if (check.type === 'http' && check.url.includes('{{address}}')) return { ...check, url: check.url.replaceAll('{{address}}', forUrl) };
  if (check.type === 'tcp' && check.host.includes('{{address}}')) return { ...check, host: check.host.replaceAll('{{address}}', address) };
  return check;
}

/** SSH failures after which a guest command may go through the guest agent instead (never a changed host key). */
const AGENT_FALLBACK_KINDS: ReadonlySet<TransportError['kind']> = new Set(['refused', 'auth', 'timeout', 'unreachable', 'config', 'host-key-unknown', 'closed']);

export interface ProbeTargetOptions {
  /** Guest commands through the QEMU guest agent when SSH fails (opt-in). */
  agentExec?: (command: string, options: ExecOptions) => Promise<ExecResult>;
  /** Told when a command really ran through the agent, so the report can say so. */
  onAgent?: () => void;
}

/**
 * What probes may use to reach one VM. `address` may be empty (a running VM without an address whose
 * guest agent answers): then only guest commands can run, and nothing is dialled from the host.
 */
export function makeProbeTarget(vm: string, address: string, session: () => GuestSession, opts: ProbeTargetOptions = {}): ProbeTarget {
  const noAddress = () => new TransportError(`VM ${vm} has no address`, 'unreachable');
  return {
    vm,
    address,
    exec: async (command, options) => {
      try {
        if (!address) throw noAddress();
        return await session().exec(command, options);
      } catch (err) {
        // Never past the check's deadline: the agent would only run a command nobody waits for.
        if (!opts.agentExec || !(err instanceof TransportError) || !AGENT_FALLBACK_KINDS.has(err.kind) || options.signal.aborted) throw err;
        const r = await opts.agentExec(command, options);
        opts.onAgent?.();
        return r;
      }
    },
    connect: async (host, port, signal, connectOptions) => {
      if (connectOptions?.fromGuest || isGuestLocal(host)) {
        if (!address) throw noAddress();
        const { stream, remote } = await session().forward(host, port, signal);
        return { socket: stream, via: 'ssh-tunnel', remote };
      }
      // Never dial an empty host: it would mean the hypervisor's own localhost.
      if (!host) throw noAddress();
      return { socket: await dial(host, port, signal), via: 'host' };
    },
  };
}

/** How to reach a VM over SSH at an address (HostName from ~/.ssh/config wins over libvirt's address). */
export function sshTargetFor(vm: ResolvedVm, address: string): SshTarget {
  const s = vm.ssh;
  return {
    vm: vm.name,
    host: s.host ?? address,
    port: s.port,
    user: s.user,
    ...(s.identityFiles.length ? { identityFiles: s.identityFiles } : {}),
    ...(s.useAgent !== undefined ? { useAgent: s.useAgent } : {}),
    ...(s.agentSocket ? { agentSocket: s.agentSocket } : {}),
    knownHostsFile: s.knownHostsFile,
    hostKeyPolicy: s.hostKeyPolicy,
    connectTimeoutMs: s.connectTimeoutMs,
    maxSessions: s.maxSessions,
    ...(s.residentSession ? {} : { residentSession: false }),
    ...(s.keepaliveMs ? { keepaliveMs: s.keepaliveMs } : {}),
    ...(s.jump.length ? { jump: s.jump } : {}),
  };
}

/** A session that fails every use with the VM's SSH configuration problem (e.g. StrictHostKeyChecking no). */
function refusedSession(vm: string, problem: string): GuestSession {
  const err = () => Promise.reject(new TransportError(`VM ${vm}: ${problem}`, 'config'));
  return { exec: err, forward: err };
}

export interface CheckVmContext {
  pool: SshPool;
  signal: AbortSignal;
  /** libvirt, for the guest-agent fallback. */
  backend?: () => Promise<LibvirtBackend>;
  /**
   * Told of each check as soon as it has a result, as a report of that check alone (what checking the VM with only
   * that check would have returned): the watch hands each result on without waiting for the VM's slowest check.
   */
  onReport?: (report: VMHealthReport) => void;
}

/** What running a VM's checks gave: enough to build its whole report. */
interface VmRun {
  base: Pick<VMHealthReport, 'vm_name' | 'timestamp'> & Partial<Pick<VMHealthReport, 'hypervisor' | 'address' | 'domain_state'>>;
  t0: number;
  checks: CheckResult[];
  /** Nothing ran: why. */
  unavailable?: string;
  problem?: string;
}

/** Check a VM: its report, with every check's result (`onReport`, if given, is told of each as it comes). */
export async function checkVm(vm: ResolvedVm, target: VmTarget, ctx: CheckVmContext): Promise<VMHealthReport> {
  const { base, t0, checks, unavailable, problem } = await runVm(vm, target, ctx);
  if (unavailable) return buildVmReport({ ...base, reason: unavailable, duration_ms: 0 }, checks);
  // A refused SSH configuration is said once, as the VM's reason, when it kept every guest check from running.
  const notReached = problem && checks.some((c) => c.details.transport_error === 'config') ? problem : guestNotReached(vm.checks, checks);
  return buildVmReport({ ...base, ...(notReached ? { reason: notReached } : {}), duration_ms: Math.round(performance.now() - t0) }, checks);
}

/** Check a VM, telling `onReport` of each check as it comes, and nothing more: the watch needs no whole report. */
export async function checkVmEach(vm: ResolvedVm, target: VmTarget, ctx: CheckVmContext & Required<Pick<CheckVmContext, 'onReport'>>): Promise<void> {
  await runVm(vm, target, ctx);
}

async function runVm(vm: ResolvedVm, target: VmTarget, ctx: CheckVmContext): Promise<VmRun> {
  const startedAt = new Date();
  const t0 = performance.now();
  const base = {
    vm_name: vm.name,
    ...(vm.hypervisor ? { hypervisor: vm.hypervisor } : {}),
    timestamp: startedAt.toISOString(),
    ...(target.address ? { address: target.address } : {}),
    ...(target.state ? { domain_state: target.state } : {}),
  };
  const agentOk = vm.agentFallback && ctx.backend !== undefined;
  // A running VM without an address can still be checked through its guest agent, when allowed.
  const viaAgentOnly = agentOk && !target.address && target.state === 'running';
  if (!viaAgentOnly && (target.unavailable || !target.address)) {
    const reason = target.unavailable ?? 'no address';
    const checks = vm.checks.map((c) => result(c, startedAt, 0, { status: 'UNKNOWN', message: `not run: ${reason}`, transport: 'none' }));
    if (ctx.onReport) for (const c of checks) ctx.onReport(buildVmReport({ ...base, reason, duration_ms: 0 }, [c]));
    return { base, t0, checks, unavailable: reason };
  }
  const address = target.address ?? '';
  let session: GuestSession | undefined;
  const problem = vm.ssh.problem;
  const sessionOf = () => (session ??= problem ? refusedSession(vm.name, problem) : ctx.pool.session(sshTargetFor(vm, address)));
  const agentExec = agentOk
    ? async (command: string, options: ExecOptions) => agentExecCommand(await ctx.backend!(), vm.domain, command, options)
    : undefined;
  const viaAgent: boolean[] = [];
  // One probe target for all checks, unless the agent fallback must say which check went through the agent.
  const shared = agentExec ? undefined : makeProbeTarget(vm.name, address, sessionOf);
  const targetOf = (i: number): ProbeTarget =>
    shared ?? makeProbeTarget(vm.name, address, sessionOf, { agentExec: agentExec!, onAgent: () => (viaAgent[i] = true) });
  const checks = await Promise.all(
    runChecks(
      vm.checks.map((c) => expandPlaceholders(c, address)),
      targetOf,
      ctx.signal,
      (raw, i) => {
        const r = viaAgent[i] ? { ...raw, transport: 'agent' as const } : raw;
        if (ctx.onReport) {
          const reason = problem && r.details.transport_error === 'config' ? problem : guestNotReached([vm.checks[i]!], [r]);
          ctx.onReport(buildVmReport({ ...base, ...(reason ? { reason } : {}), duration_ms: Math.round(performance.now() - t0) }, [r]));
        }
        return r;
      },
    ),
  );
  return { base, t0, checks, ...(problem ? { problem } : {}) };
}

/** Transport failures that mean the guest's sshd was never reached (not a refused tunnel, not a busy channel). */
const NOT_REACHED_KINDS: ReadonlySet<string> = new Set(['refused', 'auth', 'host-key-changed', 'host-key-unknown', 'unreachable', 'timeout']);
const DIAL_PHASES: ReadonlySet<unknown> = new Set(['jump', 'tcp', 'banner', 'kex', 'auth']);

/**
 * When no guest check reached the guest and at least one failed to dial it, the VM's reason says so once
 * (`guest not reached within 2s: no SSH banner from …`); its checks keep their own UNKNOWN results and the checks
 * run from the host are still judged.
 */
export function guestNotReached(configured: readonly HealthCheck[], results: readonly CheckResult[]): string | undefined {
  let first: string | undefined;
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    const t = transportOf(configured[i]!);
    if (t !== 'ssh' && t !== 'ssh-tunnel') continue;
    if (r.transport === 'agent') return undefined;
    const kind = r.details.transport_error;
    const phase = r.details.transport_phase;
    const dialFailed = r.status === 'UNKNOWN' && typeof kind === 'string' && NOT_REACHED_KINDS.has(kind) && (phase === undefined || DIAL_PHASES.has(phase));
    if (!dialFailed) return undefined;
    first ??= r.message.replace(/^VM .*?: /, '');
  }
  return first === undefined || first.startsWith('guest not reached') || first.startsWith('jump host ') ? first : `guest not reached: ${first}`;
}
