/**
 * What the watch knows of each VM between rounds: its target and checks, the latest reported result of each
 * check, and whether it can be reached. Everything is keyed by VM and check, so nothing grows with the rounds.
 */
import type { ResolvedVm } from '../../config/resolve.js';
import type { VmTarget } from '../../inventory/discover.js';
import { countStatuses, type CheckResult, type FleetReport, type HealthStatus, type VMHealthReport } from '../../report.js';
import { buildFleetReport, buildVmReport, vmStatus, worstStatus } from '../aggregate.js';
import { summarizeAction } from '../stateful.js';
import type { Advanced } from './advance.js';
import type { WatchEvent } from './events.js';

/** The latest of one check, as reported (after thresholds). */
export interface CheckView {
  result: CheckResult;
  /** ms: when the reported status last changed. */
  since: number;
  streak?: string;
}

/** Where the chain domain → address → SSH is broken: `domain` (not running, no address) or `ssh`. */
export type Unreachable = { level: 'domain' | 'ssh'; reason: string };

export interface WatchedVm {
  name: string;
  target: VmTarget;
  /** Its checks after --probe. */
  resolved: ResolvedVm;
  /** Why it cannot be evaluated, from its latest results. */
  reason?: string;
  /** Keyed by check name: bounded by the config. */
  checks: Map<string, CheckView>;
  /** Undefined until its first results; then reachable, or where and why not. */
  reach?: 'reachable' | Unreachable;
}

/**
 * What one VM's results (one report per check run) say about reaching it, at the level where the chain
 * domain → address → SSH broke:
 * - a check not run (`transport: none`: not running, no address) breaks it at the domain, with that reason;
 * - a guest check whose report says its guest was not reached (src/engine/check-vm.ts `guestNotReached`) breaks it
 *   at SSH;
 * - a guest check that came back without a transport error mends both;
 * - host checks alone (HTTP or TCP from the hypervisor) say nothing about SSH, only that the domain is there;
 * - anything else (a connection lost mid-run, a tunnel refused by the guest's sshd) is no evidence either way:
 *   the next run will tell.
 */
export function reachability(reports: readonly VMHealthReport[], current: WatchedVm['reach']): WatchedVm['reach'] {
  const notRun = reports.find((r) => r.reason && r.checks.some((c) => c.transport === 'none'));
  if (notRun) return { level: 'domain', reason: notRun.reason! };
  const notReached = reports.find((r) => r.reason);
  if (notReached) return { level: 'ssh', reason: notReached.reason! };
  const checks = reports.flatMap((r) => r.checks);
  const guest = (c: CheckResult) => c.transport === 'ssh' || c.transport === 'ssh-tunnel' || c.transport === 'agent';
  if (checks.some((c) => guest(c) && c.details.transport_error === undefined)) return 'reachable';
  const hostOnly = checks.length > 0 && !checks.some(guest);
  if (hostOnly && (current === undefined || (current !== 'reachable' && current.level === 'domain'))) return 'reachable';
  return undefined;
}

/** The VM event to emit when reachability changes (none for a VM reachable from the start). */
export function reachEvent(vm: WatchedVm, next: WatchedVm['reach'], ts: string): WatchEvent | undefined {
  const before = vm.reach;
  if (next === undefined) return undefined;
  vm.reach = next;
  if (next === 'reachable') return before !== undefined && before !== 'reachable' ? { type: 'vm', ts, vm: vm.name, reachable: true } : undefined;
  if (before !== undefined && before !== 'reachable') return undefined; // already said; the reason may be worded differently now
  return { type: 'vm', ts, vm: vm.name, reachable: false, reason: next.reason };
}

/**
 * Take a VM's thresholded results into its picture and say what changed: a transition where the state moved, a
 * status line where only what is reported moved (not evaluated, evaluated again, state kept from the store), and
 * each action.
 */
export function publish(vm: WatchedVm, raw: VMHealthReport, out: Advanced, now: number): WatchEvent[] {
  const events: WatchEvent[] = [];
  vm.reason = out.report.reason;
  const rawByName = new Map(raw.checks.map((c) => [c.name, c]));
  for (const c of out.report.checks) {
    const before = vm.checks.get(c.name);
    const th = c.details.threshold as { state?: HealthStatus; streak?: string; since?: string } | undefined;
    const at = Date.parse(c.timestamp);
    const since = th?.since && th.state === c.status ? Date.parse(th.since) : before && before.result.status === c.status ? before.since : at;
    vm.checks.set(c.name, { result: c, since, ...(th?.streak ? { streak: th.streak } : {}) });
    const t = out.transitions.find((x) => x.check === c.name);
    if (t) {
      events.push({
        type: 'transition',
        ts: new Date(t.ts).toISOString(),
        vm: vm.name,
        check: c.name,
        from: t.from,
        to: t.to,
        hard: t.hard,
        ...(th?.streak ? { streak: th.streak } : {}),
        message: t.message,
      });
    } else if (!before || before.result.status !== c.status) {
      events.push({
        type: 'status',
        ts: c.timestamp,
        vm: vm.name,
        check: c.name,
        from: before?.result.status ?? null,
        to: c.status,
        state: th?.state ?? c.status,
        since: new Date(since).toISOString(),
        message: rawByName.get(c.name)?.message ?? c.message,
      });
    }
  }
  for (const a of out.actions) events.push({ type: 'action', ts: new Date(now).toISOString(), ...summarizeAction(a) });
  for (const n of out.notifications ?? []) events.push({ type: 'alert', ts: n.at, notification: n });
  return events;
}

/** A VM's latest result of each of its configured checks, in the config's order (checks without one left out). */
function latestResults(vm: WatchedVm): CheckResult[] {
  return vm.resolved.checks.flatMap((c) => vm.checks.get(c.name)?.result ?? []);
}

/** The fleet as the watch knows it now: each VM's latest result per check (VMs without any result left out). */
export function snapshot(watched: Iterable<WatchedVm>, startedAt: number, lastRoundAt: number): FleetReport {
  const reports: VMHealthReport[] = [];
  let latest = 0;
  for (const vm of watched) {
    if (vm.checks.size === 0) continue;
    const checks = latestResults(vm);
    let ts = 0;
    for (const c of checks) ts = Math.max(ts, Date.parse(c.timestamp));
    latest = Math.max(latest, ts);
    reports.push(
      buildVmReport(
        {
          vm_name: vm.name,
          timestamp: new Date(ts).toISOString(),
          duration_ms: Math.max(0, ...checks.map((c) => c.duration_ms)),
          ...(vm.target.address ? { address: vm.target.address } : {}),
          ...(vm.target.state ? { domain_state: vm.target.state } : {}),
          ...(vm.reason ? { reason: vm.reason } : {}),
        },
        checks,
      ),
    );
  }
  reports.sort((a, b) => a.vm_name.localeCompare(b.vm_name));
  return buildFleetReport(reports, new Date(latest || startedAt), Math.max(0, lastRoundAt - startedAt));
}

/**
 * The fleet's summary as `snapshot` would give it (the same statuses and counts), without building its reports: the
 * watch says it at the end of every round.
 */
export function summarize(watched: Iterable<WatchedVm>): Pick<FleetReport['summary'], 'overall_status' | 'vms' | 'checks'> {
  const vms: HealthStatus[] = [];
  const checks: HealthStatus[] = [];
  for (const vm of watched) {
    if (vm.checks.size === 0) continue;
    const results = latestResults(vm);
    for (const r of results) checks.push(r.status);
    vms.push(vmStatus(results, vm.reason));
  }
  return { overall_status: worstStatus(vms), vms: countStatuses(vms), checks: countStatuses(checks) };
}
