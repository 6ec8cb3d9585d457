/**
 * `clonebox health watch`: the library call behind the thin oclif command (docs/watch.md).
 *
 * One process, one SSH pool, one libvirt backend, one store, for as long as it runs:
 *   discovery (refreshed every min(interval, 30 s), and soon after a transport error)
 *     → scheduler (each VM's checks on their interval, jittered; src/engine/scheduler.ts)
 *     → checkVm over the pooled connection → thresholds (store, or in memory with --no-store) → actions
 *     → the current picture: live table / lines / JSON lines, /metrics, and the exit code at the end.
 * Everything kept between rounds is keyed by VM and check, so nothing grows with the number of rounds.
 */
import pLimit from 'p-limit';
import { formatDuration } from '../config/duration.js';
import { loadConfig } from '../config/load.js';
import { describeSsh, libvirtUri, SshConfigCache, type ResolvedVm } from '../config/resolve.js';
import type { CloneboxConfig } from '../config/schema.js';
import { runAction } from '../engine/actions.js';
import { buildFleetReport, buildVmReport } from '../engine/aggregate.js';
import { checkVm, sshTargetFor } from '../engine/check-vm.js';
import { filterProbes, resolveAll, resolveTargets, UsageError, type FleetRunOptions } from '../engine/fleet.js';
import { CheckScheduler, seededRandom, type ScheduleEntry, type ScheduleItem } from '../engine/scheduler.js';
import { advanceWithStore, describeAction, type ActionOutcome } from '../engine/stateful.js';
import { ActionGuard, advanceReports, policyFromVms, stateKey, type StateMap } from '../engine/state.js';
import type { VmTarget } from '../inventory/discover.js';
import { BackendCache, openBackend, type BackendChoice } from '../inventory/open.js';
import type { LibvirtBackend } from '../inventory/types.js';
import { LiveScreen, renderLiveFrame, type LiveRow } from '../outputs/live.js';
import { oneLine } from '../outputs/table.js';
import { wantColor } from '../outputs/types.js';
import { EXIT_CODES, type CheckResult, type FleetReport, type HealthStatus, type VMHealthReport } from '../report.js';
import type { HealthStore, TransitionRow } from '../store/types.js';
import { SshPool } from '../transport/ssh-pool.js';
import type { CommandIO } from './check.js';
import type { MetricsServer } from './metrics-server.js';

export interface WatchCommandOptions {
  vms: string[];
  config: string;
  all: boolean;
  probe?: string[];
  json: boolean;
  connect?: string;
  /** VMs checked at once. */
  concurrency: number;
  verbose: boolean;
  acceptNewHostKeys: boolean;
  libvirtBackend: BackendChoice;
  /** Overrides every check's `interval`. */
  intervalMs?: number;
  /** History store spec; default: the default store (`$XDG_DATA_HOME/clonebox/health.db`) or `history.store`. */
  store?: string;
  /** State in memory only: nothing recorded, nothing read. */
  noStore?: boolean;
  metricsPort?: number;
  metricsHost?: string;
  /** Stop after this many full rounds (tests, cron). */
  rounds?: number;
  /** Seed for the jitter (tests). */
  seed?: number;
  /** Live table on/off; default: stdout is a terminal and not --json. */
  live?: boolean;
}

export interface WatchIO extends CommandIO {
  stdout: CommandIO['stdout'] & { columns?: number; rows?: number; on?(event: 'resize', fn: () => void): unknown; off?(event: 'resize', fn: () => void): unknown };
}

export interface WatchResult {
  exitCode: number;
  rounds: number;
  /** What stopped it. */
  reason: 'interrupted' | 'rounds';
  report: FleetReport;
}

/** The latest of one check, as reported (after thresholds). */
interface CheckView {
  result: CheckResult;
  /** ms: when the reported status last changed. */
  since: number;
  streak?: string;
}

interface WatchedVm {
  name: string;
  target: VmTarget;
  /** Its checks after --probe. */
  resolved: ResolvedVm;
  /** Why it cannot be evaluated, from its latest results. */
  reason?: string;
  /** Keyed by check name: bounded by the config. */
  checks: Map<string, CheckView>;
}

/** One scheduled check. Checks of one VM with the same interval form a group: they fire together. */
interface Scheduled {
  vm: string;
  check: string;
}

/** Results of a VM's checks that finished close together, thresholded and recorded as one batch. */
interface PendingResults {
  vm: WatchedVm;
  entries: ScheduleEntry<Scheduled>[];
  reports: VMHealthReport[];
  timer: NodeJS.Timeout;
}

/** How long a finished result waits for the other checks of its VM, so they make one store transaction. */
const COALESCE_MS = 20;

/** Events of the watch, for lines, JSON lines and the live table's footer. */
type WatchEvent =
  | { type: 'transition'; ts: string; vm: string; check: string; from: HealthStatus | null; to: HealthStatus; hard: boolean; streak?: string; message: string }
  | { type: 'status'; ts: string; vm: string; check: string; from: HealthStatus | null; to: HealthStatus; state: HealthStatus; since: string; message: string }
  | {
      type: 'action';
      ts: string;
      vm: string;
      check: string;
      kind: string;
      command: string;
      status: string;
      exit_code?: number;
      duration_ms?: number;
      reason?: string;
      output?: string;
    };

/** The longest pause before redialling a VM whose SSH failed: a few intervals, between 2 s and 30 s. */
export function reconnectBackoffMs(minIntervalMs: number): number {
  return Math.max(2000, Math.min(30_000, minIntervalMs * 4));
}

/**
 * SSH keepalive under watch: past the shortest interval (+50 %, jitter included), so a connection the rounds keep
 * busy is never probed, and at least 15 s. ssh2 only counts exec replies as activity: with the default 15 s a
 * 30 s watch sent two probes per connection per round, about as many packets as the round's own work.
 */
export function keepaliveMsFor(minIntervalMs: number): number {
  return Math.max(15_000, Math.round(minIntervalMs * 1.5));
}

/** How often the list of VMs and their addresses is asked of libvirt again: min(interval, 30 s), at least 1 s. */
export function discoveryEveryMs(minIntervalMs: number): number {
  return Math.max(1000, Math.min(30_000, minIntervalMs));
}

/** `2026-11-27T21:00:00Z`: seconds are enough for a person. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** One line per event for logs and pipes (not a terminal). */
export function eventLine(e: WatchEvent, actionText?: string): string {
  const at = isoSeconds(Date.parse(e.ts));
  switch (e.type) {
    case 'transition':
      return `${at} ${e.vm}/${e.check} ${e.from ?? '(new)'} → ${e.to}${e.hard ? '' : e.streak ? ` (soft: ${e.streak})` : ' (soft)'}: ${oneLine(e.message)}`;
    case 'status': {
      const note =
        e.to === 'UNKNOWN'
          ? `not evaluated${e.state === 'UNKNOWN' ? '' : `; state stays ${e.state}`}`
          : e.from === null
            ? `state kept from the store, since ${isoSeconds(Date.parse(e.since))}`
            : 'evaluated again; state unchanged';
      return `${at} ${e.vm}/${e.check} ${e.from ?? '(new)'} → ${e.to} (${note}): ${oneLine(e.message)}`;
    }
    case 'action':
      return `${at} action ${oneLine(actionText ?? `${e.vm}/${e.check}: ${e.kind} "${e.command}" ${e.status}`)}`;
  }
}

function configuredIntervals(config: CloneboxConfig): number[] {
  return [...config.health_checks, ...Object.values(config.vms).flatMap((v) => v.health_checks)].map((c) => c.interval);
}

/** Resolves after `ms`, on `wake()`, or when the signal aborts, whichever comes first. */
class Waker {
  #wake: (() => void) | undefined;
  #pending = false;

  /** When the current wait ends (ms), if one is under way. */
  #until: number | undefined;

  wake(): void {
    if (this.#wake) this.#wake();
    else this.#pending = true;
  }

  /**
   * Wake if the current wait would end after `at`: a rescheduled check due later than the loop's next wake-up
   * needs no extra turn of the loop (at 600 checks that was 600 full scans of the schedule per round).
   */
  wakeBy(at: number): void {
    if (this.#wake === undefined || this.#until === undefined || at < this.#until) this.wake();
  }

  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      // Even "now" goes through the timer queue: the loop must never spin on microtasks and starve I/O.
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        this.#until = undefined;
        resolve();
      };
      const wait = Math.max(1, Math.min(ms, 60_000));
      this.#until = Date.now() + wait;
      const timer = setTimeout(done, wait);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }
}

/** What one VM's results became: the thresholded report, its transitions, the actions run or held back. */
interface Advanced {
  report: VMHealthReport;
  transitions: TransitionRow[];
  actions: ActionOutcome[];
}

/** With a store: the store's one-transaction advance, then the actions it claimed (src/engine/stateful.ts). */
async function advanceInStore(store: HealthStore, vm: ResolvedVm, target: VmTarget, raw: VMHealthReport, pool: SshPool, signal: AbortSignal): Promise<Advanced> {
  const round = { report: buildFleetReport([raw], new Date(raw.timestamp), raw.duration_ms), vms: [vm], targets: [target] };
  const s = await advanceWithStore(store, round, pool, signal);
  return { report: s.report.reports[0]!, transitions: s.transitions, actions: s.actions };
}

/**
 * `--no-store`: the same state machine (`advanceReports`) and the same `ActionGuard` as the store uses, kept in
 * memory: one state per VM and check, and per (VM, check, action) at most `max_runs` run times for the guard.
 */
export class MemoryState {
  readonly #states: StateMap = new Map();
  readonly #runs = new Map<string, number[]>();
  #seq = 0;

  constructor(readonly guard = new ActionGuard()) {}

  async advance(vm: ResolvedVm, target: VmTarget, raw: VMHealthReport, pool: SshPool, signal: AbortSignal): Promise<Advanced> {
    const prev: StateMap = new Map();
    const mine = this.#states.get(vm.name);
    if (mine) prev.set(vm.name, mine);
    const adv = advanceReports([raw], prev, policyFromVms([vm]));
    const next = adv.states.get(vm.name);
    if (next) this.#states.set(vm.name, next);
    const transitions: TransitionRow[] = [];
    const actions: ActionOutcome[] = [];
    for (const c of adv.checks) {
      const t = c.outcome.transition;
      if (t) transitions.push({ ts: Date.parse(t.at), vm: c.vm, check: c.check, from: t.from, to: t.to, hard: t.hard, message: t.message });
      const kind = c.outcome.action;
      const command = kind ? c.policy[kind] : undefined;
      if (!kind || !command) continue;
      const now = Date.now();
      const key = `${stateKey(c.vm, c.check)}\u0000${kind}`;
      const runs = (this.#runs.get(key) ?? []).filter((at) => at > now - this.guard.policy.window_ms);
      const decision = this.guard.decide(kind, runs, now);
      const planned = { id: ++this.#seq, vm: c.vm, check: c.check, kind, command, allowed: decision.allowed, ...(decision.reason ? { reason: decision.reason } : {}) };
      if (!decision.allowed) {
        actions.push(planned);
        continue;
      }
      runs.push(now);
      this.#runs.set(key, runs.slice(-this.guard.policy.max_runs));
      const spec = vm.checks.find((k) => k.name === c.check)?.[kind];
      const address = target.address;
      const result = spec
        ? await runAction(spec, { vm: vm.name, ...(address ? { address, session: pool.session(sshTargetFor(vm, address)) } : {}) }, signal)
        : { status: 'error' as const, reason: `no ${kind} action configured for ${c.vm}/${c.check}`, duration_ms: 0 };
      actions.push({ ...planned, result });
    }
    return { report: adv.reports[0]!, transitions, actions };
  }

  /** A VM left the watch. */
  forget(vm: string): void {
    this.#states.delete(vm);
    for (const key of [...this.#runs.keys()]) if (key.startsWith(`${vm}\u0000`)) this.#runs.delete(key);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export async function runWatch(opts: WatchCommandOptions, io: WatchIO, signal: AbortSignal): Promise<WatchResult> {
  const config = await loadConfig(opts.config);
  const uri = libvirtUri(config, opts.connect);
  const live = opts.live ?? (!opts.json && Boolean(io.stdout.isTTY));
  const color = wantColor(io.stdout);
  const recent: string[] = []; // the live table's footer: bounded
  const note = (line: string) => {
    recent.push(line);
    if (recent.length > 8) recent.shift();
  };
  const say = (msg: string) => (live ? note(msg) : io.stderr.write(`clonebox: ${msg}\n`));
  const log = (msg: string) => (opts.verbose ? say(msg) : undefined);

  const intervals = opts.intervalMs !== undefined ? [opts.intervalMs] : configuredIntervals(config);
  const minInterval = intervals.length ? Math.min(...intervals) : 30_000;
  const pool = new SshPool({
    log,
    maxBackoffMs: reconnectBackoffMs(minInterval),
    keepaliveMs: keepaliveMsFor(minInterval),
  });
  let backend: Promise<LibvirtBackend> | undefined;
  const backends = new BackendCache(opts.libvirtBackend, (msg) => log(msg));
  const openLibvirt = (): Promise<LibvirtBackend> =>
    (backend ??= openBackend(uri, opts.libvirtBackend, log).catch((err: unknown) => {
      backend = undefined; // try again at the next discovery
      throw err;
    }));

  const stop = new AbortController();
  /** The runs in flight, cancelled together when the watch stops (one listener, however many runs). */
  const runs = new Set<AbortController>();
  stop.signal.addEventListener('abort', () => {
    for (const r of runs) r.abort(stop.signal.reason);
  });
  const onInterrupt = () => stop.abort(new Error('interrupted'));
  if (signal.aborted) onInterrupt();
  signal.addEventListener('abort', onInterrupt, { once: true });

  let store: HealthStore | undefined;
  let metrics: MetricsServer | undefined;
  let screen: LiveScreen | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let redrawTimer: NodeJS.Timeout | undefined;
  let onResize: (() => void) | undefined;
  const inflight = new Set<Promise<void>>();
  let discovering: Promise<void> | undefined;

  const watched = new Map<string, WatchedVm>();
  const memory = new MemoryState(); // --no-store only
  const scheduler = new CheckScheduler<Scheduled>(opts.seed !== undefined ? { random: seededRandom(opts.seed) } : {});
  const waker = new Waker();
  const started = Date.now();
  let lastRoundAt = started;

  // ─── the current picture ───
  const snapshot = (): FleetReport => {
    const reports: VMHealthReport[] = [];
    let latest = 0;
    for (const vm of watched.values()) {
      if (vm.checks.size === 0) continue;
      const checks = vm.resolved.checks.flatMap((c) => vm.checks.get(c.name)?.result ?? []);
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
    return buildFleetReport(reports, new Date(latest || started), Math.max(0, lastRoundAt - started));
  };

  // ─── output ───
  const emit = (e: WatchEvent, actionText?: string) => {
    if (opts.json) io.stdout.write(`${JSON.stringify(e)}\n`);
    else if (live) {
      note(eventLine(e, actionText));
      scheduleRedraw();
    } else io.stdout.write(`${eventLine(e, actionText)}\n`);
  };
  const frame = (height: number): string[] => {
    const report = snapshot();
    const rows: LiveRow[] = [];
    for (const vm of [...watched.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      for (const c of vm.resolved.checks) {
        const v = vm.checks.get(c.name);
        rows.push(
          v
            ? { vm: vm.name, check: c.name, status: v.result.status, ...(v.streak ? { streak: v.streak } : {}), message: v.result.message, since: v.since, critical: c.critical }
            : { vm: vm.name, check: c.name, status: 'UNKNOWN', message: 'waiting for the first result', since: started, critical: c.critical },
        );
      }
    }
    const every = opts.intervalMs !== undefined ? `every ${formatDuration(opts.intervalMs)}` : 'per-check intervals';
    const time = new Date().toTimeString().slice(0, 8);
    const title = `clonebox health watch · ${watched.size} VM${watched.size === 1 ? '' : 's'}, ${rows.length} checks, ${every} · round ${scheduler.rounds} · fleet ${report.summary.overall_status} · ${time} · Ctrl-C stops`;
    return renderLiveFrame(
      { title, status: report.summary.overall_status, rows, events: recent },
      { columns: io.stdout.columns ?? 80, rows: height, color, now: Date.now() },
    );
  };
  const redraw = () => screen?.draw(frame(io.stdout.rows ?? 24));
  function scheduleRedraw() {
    if (!screen || redrawTimer) return;
    redrawTimer = setTimeout(() => {
      redrawTimer = undefined;
      redraw();
    }, 50);
  }

  // ─── discovery ───
  const fleetOpts: FleetRunOptions = {
    config,
    selectors: opts.vms,
    all: opts.all,
    ...(opts.probe ? { probes: opts.probe } : {}),
    concurrency: opts.concurrency,
    backend: openLibvirt,
    backendFor: (hv) => backends.get(hv.uri),
    pool,
    signal: stop.signal,
    acceptNewHostKeys: opts.acceptNewHostKeys,
    sshConfigs: new SshConfigCache(),
    onResolved: (vm, t) => {
      const line = describeSsh(vm.name, vm.ssh, t.address);
      if (said.get(vm.name) !== line) log(line);
      said.set(vm.name, line);
    },
  };
  const said = new Map<string, string>();
  const refreshEvery = discoveryEveryMs(minInterval);
  const urgentGap = Math.min(refreshEvery, 2000);
  let lastDiscovery = 0;
  let nextDiscovery = 0;
  let discoveryWanted = false;
  let lastDiscoveryError: string | undefined;

  const scheduleOf = (vm: WatchedVm): ScheduleItem<Scheduled>[] =>
    vm.resolved.checks.map((c) => ({
      key: stateKey(vm.name, c.name),
      intervalMs: opts.intervalMs ?? c.interval,
      group: vm.name,
      data: { vm: vm.name, check: c.name },
    }));

  const applyTargets = (targets: VmTarget[]) => {
    const resolved = filterProbes(resolveAll(config, targets, fleetOpts), opts.probe);
    const keep = new Set<string>();
    targets.forEach((t, i) => {
      keep.add(t.name);
      const r = resolved[i]!;
      const existing = watched.get(t.name);
      if (!existing) {
        watched.set(t.name, { name: t.name, target: t, resolved: r, checks: new Map() });
        return;
      }
      if (existing.target.address !== t.address || existing.target.unavailable !== t.unavailable) {
        log(`VM ${t.name}: ${t.address ? `address ${t.address}` : `unavailable: ${t.unavailable ?? 'no address'}`}${existing.target.address && existing.target.address !== t.address ? ` (was ${existing.target.address})` : ''}`);
      }
      existing.target = t;
      existing.resolved = r;
      const names = new Set(r.checks.map((c) => c.name));
      for (const name of existing.checks.keys()) if (!names.has(name)) existing.checks.delete(name);
    });
    for (const name of [...watched.keys()]) {
      if (keep.has(name)) continue;
      log(`VM ${name}: gone from libvirt; no longer watched`);
      watched.delete(name);
      memory.forget(name);
    }
    scheduler.sync([...watched.values()].flatMap(scheduleOf), Date.now());
  };

  const discover = async (): Promise<void> => {
    lastDiscovery = Date.now();
    nextDiscovery = lastDiscovery + refreshEvery;
    discoveryWanted = false;
    try {
      applyTargets(await resolveTargets(fleetOpts));
      if (lastDiscoveryError) say('libvirt answers again');
      lastDiscoveryError = undefined;
    } catch (err) {
      if (stop.signal.aborted) return;
      const msg = (err as Error).message;
      // Said once per distinct failure, not every refresh.
      if (msg !== lastDiscoveryError) say(`cannot refresh the VM list (${msg}); keeping the last known addresses`);
      lastDiscoveryError = msg;
    }
  };

  // ─── one slot: run, threshold, act, report ───
  const limit = pLimit(Math.max(1, opts.concurrency));

  const publish = (vm: WatchedVm, raw: VMHealthReport, report: VMHealthReport, transitions: TransitionRow[], actions: ActionOutcome[]) => {
    vm.reason = report.reason;
    const rawByName = new Map(raw.checks.map((c) => [c.name, c]));
    for (const c of report.checks) {
      const before = vm.checks.get(c.name);
      const th = c.details.threshold as { state?: HealthStatus; streak?: string; since?: string } | undefined;
      const at = Date.parse(c.timestamp);
      const since =
        th?.since && th.state === c.status ? Date.parse(th.since) : before && before.result.status === c.status ? before.since : at;
      vm.checks.set(c.name, { result: c, since, ...(th?.streak ? { streak: th.streak } : {}) });
      const message = rawByName.get(c.name)?.message ?? c.message;
      const t = transitions.find((x) => x.check === c.name);
      if (t) {
        emit({
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
        emit({
          type: 'status',
          ts: c.timestamp,
          vm: vm.name,
          check: c.name,
          from: before?.result.status ?? null,
          to: c.status,
          state: th?.state ?? c.status,
          since: new Date(since).toISOString(),
          message,
        });
      }
    }
    for (const a of actions) {
      const r = a.result;
      emit(
        {
          type: 'action',
          ts: new Date().toISOString(),
          vm: a.vm,
          check: a.check,
          kind: a.kind,
          command: a.command,
          status: r?.status ?? 'suppressed',
          ...(r?.exit_code !== undefined ? { exit_code: r.exit_code } : {}),
          ...(r?.duration_ms !== undefined ? { duration_ms: Math.round(r.duration_ms) } : {}),
          ...(r?.reason ?? a.reason ? { reason: r?.reason ?? a.reason } : {}),
          ...(r?.output ? { output: r.output } : {}),
        },
        describeAction(a),
      );
    }
  };

  const onRound = () => {
    const n = scheduler.rounds;
    const now = Date.now();
    const report = snapshot();
    const s = report.summary;
    const ssh = pool.stats();
    if (opts.json) {
      io.stdout.write(
        `${JSON.stringify({
          type: 'round',
          round: n,
          ts: new Date(now).toISOString(),
          duration_ms: now - lastRoundAt,
          status: s.overall_status,
          exit_code: EXIT_CODES[s.overall_status],
          vms: s.vms,
          checks: s.checks,
          ssh_connections_opened: ssh.connectionsOpened,
          ssh_connections_open: ssh.open,
          ssh_connect_attempts: ssh.connectAttempts,
          rss_bytes: process.memoryUsage.rss(),
        })}\n`,
      );
    } else {
      log(`round ${n} in ${formatDuration(now - lastRoundAt)}: fleet ${s.overall_status}, ${s.vms.total} VMs, ${s.checks.total} checks, ${ssh.connectionsOpened} SSH connections opened so far`);
    }
    lastRoundAt = now;
    scheduleRedraw();
    if (opts.rounds !== undefined && n >= opts.rounds && !stop.signal.aborted) stop.abort(new Error('rounds'));
  };

  /** A run is over (or was dropped): reschedule it; a completed round is announced. */
  const finish = (entry: ScheduleEntry<Scheduled>) => {
    if (!stop.signal.aborted && scheduler.complete(entry.key, Date.now())) onRound();
    // complete() moved entry.nextDue (the scheduler's own object) to its next run.
    waker.wakeBy(entry.nextDue);
  };

  const pending = new Map<string, PendingResults>();

  /** Threshold, record and report what a VM's checks found; then reschedule them. */
  const flush = async (name: string): Promise<void> => {
    const p = pending.get(name);
    if (!p) return;
    pending.delete(name);
    clearTimeout(p.timer);
    try {
      // Cut short by Ctrl-C or --rounds, or the VM left: not evidence about it.
      if (stop.signal.aborted || watched.get(name) !== p.vm) return;
      const vm = p.vm;
      const checks = p.reports.flatMap((r) => r.checks);
      const first = p.reports[0]!;
      const raw = buildVmReport(
        {
          vm_name: name,
          timestamp: first.timestamp,
          duration_ms: Math.max(...p.reports.map((r) => r.duration_ms)),
          ...(first.address ? { address: first.address } : {}),
          ...(first.domain_state ? { domain_state: first.domain_state } : {}),
          ...(first.reason ? { reason: first.reason } : {}),
        },
        checks,
      );
      if (checks.some((c) => c.details.transport_error !== undefined)) discoveryWanted = true;
      const names = new Set(checks.map((c) => c.name));
      const subset: ResolvedVm = { ...vm.resolved, checks: vm.resolved.checks.filter((c) => names.has(c.name)) };
      const out = store
        ? await advanceInStore(store, subset, vm.target, raw, pool, stop.signal)
        : await memory.advance(subset, vm.target, raw, pool, stop.signal);
      if (watched.get(name) === vm) publish(vm, raw, out.report, out.transitions, out.actions);
    } catch (err) {
      if (!stop.signal.aborted) say(`${name}: ${(err as Error).message}`);
    } finally {
      for (const e of p.entries) finish(e);
    }
  };

  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  /** Run the due checks of one VM, each on its own: a slow one never holds back the others' results. */
  const runChecks = async (name: string, entries: ScheduleEntry<Scheduled>[]): Promise<void> => {
    // A controller per run: the probes' AbortSignal.any() then hangs off a short-lived signal, not the watch's.
    const batch = new AbortController();
    runs.add(batch);
    try {
      const vm = watched.get(name);
      if (!vm) return entries.forEach(finish);
      const target = vm.target;
      await limit(() =>
        Promise.all(
          entries.map(async (entry) => {
            const check = vm.resolved.checks.find((c) => c.name === entry.data.check);
            if (!check) return finish(entry);
            let raw: VMHealthReport;
            try {
              raw = await checkVm({ ...vm.resolved, checks: [check] }, target, { pool, signal: batch.signal });
            } catch (err) {
              if (!stop.signal.aborted) say(`${name}/${check.name}: ${(err as Error).message}`);
              return finish(entry);
            }
            if (batch.signal.aborted) return;
            let p = pending.get(name);
            if (!p) {
              p = { vm, entries: [], reports: [], timer: setTimeout(() => track(flush(name)), COALESCE_MS) };
              pending.set(name, p);
            }
            p.entries.push(entry);
            p.reports.push(raw);
          }),
        ),
      );
    } finally {
      runs.delete(batch);
    }
  };

  // ─── run ───
  try {
    const storeSpec = opts.noStore ? undefined : (opts.store ?? config.history?.store ?? 'default');
    if (storeSpec !== undefined) {
      const { openStore } = await import('../store/index.js');
      try {
        store = await openStore(storeSpec, { retentionMs: config.history?.retention ?? 30 * 86_400_000 });
      } catch (err) {
        const why = (err as Error).message;
        const what = why.startsWith('cannot open the history store') ? why : `cannot open the history store ${storeSpec}: ${why}`;
        throw new UsageError(`${what}; choose another with --store, or keep state in memory with --no-store`);
      }
      log(`history: ${store.kind} at ${store.location}`);
    } else log('history: none (--no-store); thresholds kept in memory');

    // The first discovery decides what is watched; its errors (no such check, libvirt down with --all) end the watch.
    lastDiscovery = Date.now();
    nextDiscovery = lastDiscovery + refreshEvery;
    applyTargets(await resolveTargets(fleetOpts));
    if (scheduler.size === 0) throw new UsageError('nothing to watch: no health checks are configured for these VMs (health_checks in the config)');

    if (opts.metricsPort !== undefined) {
      const { startMetricsServer } = await import('./metrics-server.js');
      metrics = await startMetricsServer({
        host: opts.metricsHost ?? '127.0.0.1',
        port: opts.metricsPort,
        snapshot,
        counters: () => {
          const ssh = pool.stats();
          return { rounds: scheduler.rounds, connectionsOpened: ssh.connectionsOpened, connectionsOpen: ssh.open };
        },
      });
      say(`metrics at ${metrics.url}`);
    }

    if (live) {
      screen = new LiveScreen(io.stdout);
      screen.start();
      ticker = setInterval(redraw, 1000);
      onResize = () => redraw();
      io.stdout.on?.('resize', onResize);
      redraw();
    }

    while (!stop.signal.aborted) {
      const now = Date.now();
      if (!discovering && (now >= nextDiscovery || (discoveryWanted && now >= lastDiscovery + urgentGap))) {
        const d: Promise<void> = discover().finally(() => {
          discovering = undefined;
          waker.wake();
        });
        discovering = d;
      }
      const due = new Map<string, ScheduleEntry<Scheduled>[]>();
      for (const entry of scheduler.takeDue(now)) {
        const list = due.get(entry.data.vm);
        if (list) list.push(entry);
        else due.set(entry.data.vm, [entry]);
      }
      for (const [name, entries] of due) track(runChecks(name, entries));
      // A discovery in flight wakes the loop when it ends; until then only the schedule counts.
      let wakeAt = discovering ? Infinity : discoveryWanted ? Math.min(nextDiscovery, lastDiscovery + urgentGap) : nextDiscovery;
      const next = scheduler.nextWake();
      if (next !== undefined) wakeAt = Math.min(wakeAt, next);
      await waker.wait(wakeAt - Date.now(), stop.signal);
    }
  } finally {
    signal.removeEventListener('abort', onInterrupt);
    if (!stop.signal.aborted) stop.abort(new Error('error'));
    // In-flight probes were cancelled by the abort; give them a moment to hand their channels back.
    for (const p of pending.values()) clearTimeout(p.timer);
    pending.clear();
    await Promise.race([Promise.allSettled([...inflight, ...(discovering ? [discovering] : [])]), sleep(1500)]);
    if (ticker) clearInterval(ticker);
    if (redrawTimer) clearTimeout(redrawTimer);
    if (onResize) io.stdout.off?.('resize', onResize);
    // The final table goes to the normal screen whole, whatever the terminal's height.
    screen?.stop(frame(1_000_000));
    await Promise.allSettled([
      metrics?.close(),
      pool.close(),
      store?.close(),
      (async () => (backend ? (await backend.catch(() => undefined))?.close() : undefined))(),
      backends.close(),
    ]);
  }

  const report = snapshot();
  const reason: WatchResult['reason'] = (stop.signal.reason as Error | undefined)?.message === 'rounds' ? 'rounds' : 'interrupted';
  const exitCode = EXIT_CODES[report.summary.overall_status];
  if (opts.json) {
    io.stdout.write(`${JSON.stringify({ type: 'stop', ts: new Date().toISOString(), reason, rounds: scheduler.rounds, status: report.summary.overall_status, exit_code: exitCode })}\n`);
  } else {
    log(`stopped (${reason === 'rounds' ? `${scheduler.rounds} rounds done` : 'interrupted'}) after ${formatDuration(Date.now() - started)}: fleet ${report.summary.overall_status}`);
  }
  return { exitCode, rounds: scheduler.rounds, reason, report };
}
