/** Run every check of one VM: guest probes over its pooled SSH connection, host probes from here. */
import { connect as netConnect, type Socket } from 'node:net';
import type { ResolvedVm } from '../config/resolve.js';
import type { HealthCheck } from '../config/schema.js';
import { formatDuration } from '../config/duration.js';
import type { VmTarget } from '../inventory/discover.js';
import { isGuestLocal, probeFor, transportOf } from '../probes/registry.js';
import { transportOutcome } from '../probes/common.js';
import type { ProbeOutcome, ProbeTarget } from '../probes/types.js';
import type { CheckResult, VMHealthReport } from '../report.js';
import type { SshPool, SshTarget } from '../transport/ssh-pool.js';
import { agentExec as agentExecCommand } from '../transport/agent.js';
import { TransportError, type ExecOptions, type ExecResult, type GuestSession } from '../transport/types.js';
import type { LibvirtBackend } from '../inventory/types.js';
import { buildVmReport } from './aggregate.js';

/** How long past its own timeout a probe may take before the engine gives up on it. */
export const DEADLINE_MARGIN_MS = 1000;

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

function result(check: HealthCheck, startedAt: Date, durationMs: number, outcome: ProbeOutcome): CheckResult {
  return {
    name: check.name,
    type: check.type,
    status: outcome.status,
    timestamp: startedAt.toISOString(),
    duration_ms: Math.round(durationMs * 10) / 10,
    message: outcome.message,
    critical: check.critical,
    transport: outcome.transport ?? transportOf(check),
    details: outcome.details ?? {},
  };
}

/** Checks running under each parent signal: ONE abort listener per parent, however many checks run at once. */
const followers = new WeakMap<AbortSignal, Set<AbortController>>();

/** Abort `child` when `parent` aborts, until the returned function is called. */
function follow(parent: AbortSignal, child: AbortController): () => void {
  if (parent.aborted) {
    child.abort(parent.reason);
    return () => {};
  }
  let set = followers.get(parent);
  if (!set) {
    const created = new Set<AbortController>();
    set = created;
    followers.set(parent, created);
    parent.addEventListener(
      'abort',
      () => {
        for (const c of created) c.abort(parent.reason);
        created.clear();
      },
      { once: true },
    );
  }
  const mine = set;
  mine.add(child);
  return () => {
    mine.delete(child);
  };
}

/** Run one check with its own deadline; whatever the probe does, this returns within timeout + margin. */
export async function runCheck(check: HealthCheck, target: ProbeTarget, parent: AbortSignal): Promise<CheckResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  // One controller and one timer, both gone when the check is: AbortSignal.timeout's timer outlives
  // the check and fires for nothing later (a DOMException with a stack each), and AbortSignal.any
  // registers every check on the long-lived parent signal; at N=200 under watch that was ~8% of
  // the client's CPU per round.
  const controller = new AbortController();
  const signal = controller.signal;
  const unfollow = follow(parent, controller);
  const deadline = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), check.timeout);
  let timer: NodeJS.Timeout | undefined;
  const backstop = new Promise<ProbeOutcome>((resolve) => {
    timer = setTimeout(
      () => resolve({ status: 'UNHEALTHY', message: `no result within ${formatDuration(check.timeout)} (probe did not stop in time)`, details: { timed_out: true } }),
      check.timeout + DEADLINE_MARGIN_MS,
    );
  });
  let outcome: ProbeOutcome;
  try {
    outcome = await Promise.race([probeFor(check)(check, target, signal), backstop]);
  } catch (err) {
    outcome =
      err instanceof TransportError
        ? transportOutcome(err, check.timeout)
        : { status: 'UNKNOWN', message: `probe failed unexpectedly: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
    clearTimeout(deadline);
    unfollow();
  }
  if (parent.aborted && outcome.status !== 'HEALTHY') outcome = { status: 'UNKNOWN', message: 'cancelled before it finished' };
  return result(check, startedAt, performance.now() - t0, outcome);
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

export async function checkVm(vm: ResolvedVm, target: VmTarget, ctx: CheckVmContext): Promise<VMHealthReport> {
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
    return buildVmReport({ ...base, reason, duration_ms: 0 }, checks);
  }
  const address = target.address ?? '';
  let session: GuestSession | undefined;
  const problem = vm.ssh.problem;
  const sessionOf = () => (session ??= problem ? refusedSession(vm.name, problem) : ctx.pool.session(sshTargetFor(vm, address)));
  const agentExec = agentOk
    ? async (command: string, options: ExecOptions) => agentExecCommand(await ctx.backend!(), vm.domain, command, options)
    : undefined;
  const checks = await Promise.all(
    vm.checks.map(async (c) => {
      let viaAgent = false;
      const probeTarget = makeProbeTarget(vm.name, address, sessionOf, {
        ...(agentExec ? { agentExec, onAgent: () => (viaAgent = true) } : {}),
      });
      const raw = await runCheck(expandPlaceholders(c, address), probeTarget, ctx.signal);
      const r = viaAgent ? { ...raw, transport: 'agent' as const } : raw;
      if (ctx.onReport) {
        const reason = problem && r.details.transport_error === 'config' ? problem : guestNotReached([c], [r]);
        ctx.onReport(buildVmReport({ ...base, ...(reason ? { reason } : {}), duration_ms: Math.round(performance.now() - t0) }, [r]));
      }
      return r;
    }),
  );
  // A refused SSH configuration is said once, as the VM's reason, when it kept every guest check from running.
  const notReached = problem && checks.some((c) => c.details.transport_error === 'config') ? problem : guestNotReached(vm.checks, checks);
  return buildVmReport({ ...base, ...(notReached ? { reason: notReached } : {}), duration_ms: Math.round(performance.now() - t0) }, checks);
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
