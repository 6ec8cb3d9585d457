/**
 * The watch loop: discovery (discovery.ts: refreshed every min(interval, 30 s), and soon after a transport error)
 *   → scheduler (each VM's checks on their interval, jittered; src/engine/scheduler.ts)
 *   → a VM's due checks in one call (`sources.runChecks`), each result handed on as it comes; those that finish together
 *     coalesced → thresholds and actions (`sources.advance`: the store, or memory)
 *   → events (events.ts) for whoever subscribed: the CLI's outputs, /metrics, later alerting.
 *
 * Its inputs are functions (WatchSources) and its time a Clock, so tests run it on a fake clock against fake VMs.
 * Everything kept between rounds is keyed by VM and check, so nothing grows with the number of rounds.
 */
import pLimit from 'p-limit';
import type { ResolvedVm } from '../../config/resolve.js';
import type { HealthCheck } from '../../config/schema.js';
import type { VmTarget } from '../../inventory/discover.js';
import { EXIT_CODES, type FleetReport, type VMHealthReport } from '../../report.js';
import { buildVmReport } from '../aggregate.js';
import { UsageError } from '../fleet.js';
import { CheckScheduler, seededRandom, type ScheduleEntry, type ScheduleItem } from '../scheduler.js';
import { stateKey } from '../state.js';
import type { Advancer } from './advance.js';
import { systemClock, type Clock } from './clock.js';
import { WatchEvents, type StopEvent } from './events.js';
import { Discovery } from './discovery.js';
import { COALESCE_MS } from './policy.js';
import { Waker } from './waker.js';
import { publish, reachability, reachEvent, snapshot, summarize, type WatchedVm } from './watched.js';

/** A VM to watch: where it is, and its checks (after --probe). */
export interface WatchTarget {
  target: VmTarget;
  resolved: ResolvedVm;
}

/** Where the loop's VMs, results and thresholds come from (src/engine/watch/sources.ts wires the real ones). */
export interface WatchSources {
  /** The VMs to watch now. Throws when it cannot say (libvirt down); the first call's error ends the watch. */
  discover(): Promise<WatchTarget[]>;
  /**
   * Run the checks in `vm.checks` once, honouring the signal; `onReport` is told of each as soon as it has a
   * result, as a report of that check alone. Resolves when all have been reported.
   */
  runChecks(vm: ResolvedVm, target: VmTarget, signal: AbortSignal, onReport: (report: VMHealthReport) => void): Promise<void>;
  /** Threshold a VM's results (the checks in `vm.checks`) and run the actions they call for. */
  advance: Advancer;
  /** A VM left the watch: drop what is kept for it. */
  forget?(vm: string): void;
}

export interface WatchLoopOptions {
  /** Overrides every check's `interval`. */
  intervalMs?: number;
  /** How often the VM list is asked for again (policy.ts `discoveryEveryMs`). */
  discoveryEveryMs: number;
  /** VMs checked at once. */
  concurrency: number;
  /** Stop after this many full rounds. */
  rounds?: number;
  /** Seed for the jitter (tests). */
  seed?: number;
  clock?: Clock;
  /** Subscribe before the loop starts to hear everything (notes included); default: a bus of its own. */
  events?: WatchEvents;
}

export interface WatchOutcome {
  exitCode: number;
  rounds: number;
  /** What stopped it. */
  reason: StopEvent['reason'];
  report: FleetReport;
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
  /** Set while some of the run's checks have not reported. */
  timer?: unknown;
}

export class WatchLoop {
  readonly events: WatchEvents;
  readonly startedAt: number;
  readonly #clock: Clock;
  readonly #sources: WatchSources;
  readonly #opts: WatchLoopOptions;
  readonly #watched = new Map<string, WatchedVm>();
  readonly #scheduler: CheckScheduler<Scheduled>;
  readonly #waker: Waker;
  readonly #stop = new AbortController();
  /** The runs in flight, cancelled together when the watch stops (one listener, however many runs). */
  readonly #runs = new Set<AbortController>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #pending = new Map<string, PendingResults>();
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #discovery: Discovery;
  #started = false;
  #lastRoundAt: number;

  constructor(sources: WatchSources, opts: WatchLoopOptions) {
    this.#sources = sources;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.events = opts.events ?? new WatchEvents(() => this.#clock.now());
    this.#scheduler = new CheckScheduler<Scheduled>(opts.seed !== undefined ? { random: seededRandom(opts.seed) } : {});
    this.#waker = new Waker(this.#clock);
    this.#limit = pLimit(Math.max(1, opts.concurrency));
    this.#discovery = new Discovery(opts.discoveryEveryMs, this.#clock, this.events, async () => this.#apply(await this.#sources.discover()));
    this.startedAt = this.#clock.now();
    this.#lastRoundAt = this.startedAt;
    this.#stop.signal.addEventListener('abort', () => {
      for (const r of this.#runs) r.abort(this.#stop.signal.reason);
    });
  }

  /** Full rounds completed. */
  get rounds(): number {
    return this.#scheduler.rounds;
  }

  /** The VMs being watched, by name (read-only: for views such as the live table). */
  get watched(): ReadonlyMap<string, Readonly<WatchedVm>> {
    return this.#watched;
  }

  /** The fleet as the watch knows it now. */
  snapshot(): FleetReport {
    return snapshot(this.#watched.values(), this.startedAt, this.#lastRoundAt);
  }

  #ts(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  #debug(message: string): void {
    this.events.note(message, 'debug');
  }

  // ─── discovery ───

  #scheduleOf(vm: WatchedVm): ScheduleItem<Scheduled>[] {
    return vm.resolved.checks.map((c) => ({
      key: stateKey(vm.name, c.name),
      intervalMs: this.#opts.intervalMs ?? c.interval,
      group: vm.name,
      data: { vm: vm.name, check: c.name },
    }));
  }

  #apply(targets: WatchTarget[]): void {
    const keep = new Set<string>();
    for (const { target: t, resolved: r } of targets) {
      keep.add(t.name);
      const existing = this.#watched.get(t.name);
      if (!existing) {
        this.#watched.set(t.name, { name: t.name, target: t, resolved: r, checks: new Map() });
        continue;
      }
      if (existing.target.address !== t.address || existing.target.unavailable !== t.unavailable) {
        const was = existing.target.address && existing.target.address !== t.address ? ` (was ${existing.target.address})` : '';
        this.#debug(`VM ${t.name}: ${t.address ? `address ${t.address}` : `unavailable: ${t.unavailable ?? 'no address'}`}${was}`);
      }
      existing.target = t;
      existing.resolved = r;
      const names = new Set(r.checks.map((c) => c.name));
      for (const name of existing.checks.keys()) if (!names.has(name)) existing.checks.delete(name);
    }
    for (const name of [...this.#watched.keys()]) {
      if (keep.has(name)) continue;
      this.#debug(`VM ${name}: gone from libvirt; no longer watched`);
      this.#watched.delete(name);
      this.#sources.forget?.(name);
    }
    this.#scheduler.sync([...this.#watched.values()].flatMap((vm) => this.#scheduleOf(vm)), this.#clock.now());
  }

  // ─── one slot: run, threshold, act, report ───

  #onRound(): void {
    const n = this.#scheduler.rounds;
    const now = this.#clock.now();
    const s = summarize(this.#watched.values());
    this.events.emit({
      type: 'round',
      round: n,
      ts: new Date(now).toISOString(),
      duration_ms: now - this.#lastRoundAt,
      status: s.overall_status,
      exit_code: EXIT_CODES[s.overall_status],
      vms: s.vms,
      checks: s.checks,
    });
    this.#lastRoundAt = now;
    if (this.#opts.rounds !== undefined && n >= this.#opts.rounds && !this.#stop.signal.aborted) this.#stop.abort(new Error('rounds'));
  }

  /** A run is over (or was dropped): reschedule it; a completed round is announced. */
  #finish(entry: ScheduleEntry<Scheduled>): void {
    if (!this.#stop.signal.aborted && this.#scheduler.complete(entry.key, this.#clock.now())) this.#onRound();
    // complete() moved entry.nextDue (the scheduler's own object) to its next run.
    this.#waker.wakeBy(entry.nextDue);
  }

  /** Threshold, record and report what a VM's checks found; then reschedule them. */
  async #flush(name: string): Promise<void> {
    const p = this.#pending.get(name);
    if (!p) return;
    this.#pending.delete(name);
    if (p.timer !== undefined) this.#clock.clearTimeout(p.timer);
    try {
      // Cut short by Ctrl-C or --rounds, or the VM left: not evidence about it.
      if (this.#stop.signal.aborted || this.#watched.get(name) !== p.vm) return;
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
      if (checks.some((c) => c.details.transport_error !== undefined)) this.#discovery.want();
      const names = new Set(checks.map((c) => c.name));
      const reported = vm.resolved.checks.filter((c) => names.has(c.name));
      // All of the VM's checks (the usual case): the VM itself, so what is derived from it can be kept (advance.ts).
      const subset: ResolvedVm = reported.length === vm.resolved.checks.length ? vm.resolved : { ...vm.resolved, checks: reported };
      const out = await this.#sources.advance(subset, vm.target, raw, this.#stop.signal);
      if (this.#watched.get(name) !== vm) return;
      const reach = reachEvent(vm, reachability(p.reports, vm.reach), this.#ts());
      if (reach) this.events.emit(reach);
      for (const e of publish(vm, raw, out, this.#clock.now())) this.events.emit(e);
    } catch (err) {
      if (!this.#stop.signal.aborted) this.events.note(`${name}: ${(err as Error).message}`);
    } finally {
      for (const e of p.entries) this.#finish(e);
    }
  }

  #track(p: Promise<void>): void {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
  }

  /** Run the due checks of one VM, each on its own: a slow one never holds back the others' results. */
  async #runChecks(name: string, entries: ScheduleEntry<Scheduled>[]): Promise<void> {
    // A controller per run: the probes' signals then hang off a short-lived signal, not the watch's.
    const batch = new AbortController();
    this.#runs.add(batch);
    try {
      const vm = this.#watched.get(name);
      if (!vm) return entries.forEach((e) => this.#finish(e));
      const target = vm.target;
      const checks: HealthCheck[] = [];
      /** The entries not reported yet, by check name. */
      const waiting = new Map<string, ScheduleEntry<Scheduled>>();
      for (const entry of entries) {
        const check = vm.resolved.checks.find((c) => c.name === entry.data.check);
        if (!check) this.#finish(entry);
        else {
          checks.push(check);
          waiting.set(check.name, entry);
        }
      }
      if (checks.length === 0) return;
      const onReport = (raw: VMHealthReport): void => {
        const name0 = raw.checks[0]?.name;
        const entry = name0 === undefined ? undefined : waiting.get(name0);
        if (!entry || batch.signal.aborted) return;
        waiting.delete(name0!);
        let p = this.#pending.get(name);
        if (!p) {
          p = { vm, entries: [], reports: [] };
          this.#pending.set(name, p);
        }
        p.entries.push(entry);
        p.reports.push(raw);
        // The last of the run's checks: nothing more to wait for (at 200 VMs, 200 timer wake-ups a round fewer).
        // Otherwise the others have COALESCE_MS to join this batch.
        if (waiting.size === 0) this.#track(this.#flush(name));
        else p.timer ??= this.#clock.setTimeout(() => this.#track(this.#flush(name)), COALESCE_MS);
      };
      // One call for the VM's due checks (one connection lookup, one batch in the guest); each result still goes on
      // by itself, so a slow check never holds back the others'.
      await this.#limit(async () => {
        try {
          await this.#sources.runChecks(checks.length === vm.resolved.checks.length ? vm.resolved : { ...vm.resolved, checks }, target, batch.signal, onReport);
        } catch (err) {
          if (!this.#stop.signal.aborted) this.events.note(`${name}: ${(err as Error).message}`);
        }
      });
      if (batch.signal.aborted) return;
      // Whatever was not reported (a source that failed) is rescheduled, never left running.
      for (const entry of waiting.values()) this.#finish(entry);
    } finally {
      this.#runs.delete(batch);
    }
  }

  // ─── run ───

  /**
   * The first discovery: it decides what is watched, and its errors (no such check, libvirt down with --all,
   * nothing to watch) end the watch before anything is shown.
   */
  async start(): Promise<void> {
    this.#started = true;
    await this.#discovery.first();
    if (this.#scheduler.size === 0) throw new UsageError('nothing to watch: no health checks are configured for these VMs (health_checks in the config)');
  }

  /** Watch until the signal aborts or `rounds` are done; ends with a `stop` event. */
  async run(signal: AbortSignal): Promise<WatchOutcome> {
    const onInterrupt = () => this.#stop.abort(new Error('interrupted'));
    if (signal.aborted) onInterrupt();
    signal.addEventListener('abort', onInterrupt, { once: true });
    try {
      if (!this.#started) await this.start();
      while (!this.#stop.signal.aborted) await this.#turn();
    } finally {
      signal.removeEventListener('abort', onInterrupt);
      await this.#wind();
    }
    const report = this.snapshot();
    const reason: StopEvent['reason'] = (this.#stop.signal.reason as Error | undefined)?.message === 'rounds' ? 'rounds' : 'interrupted';
    const exitCode = EXIT_CODES[report.summary.overall_status];
    this.events.emit({ type: 'stop', ts: this.#ts(), reason, rounds: this.#scheduler.rounds, status: report.summary.overall_status, exit_code: exitCode });
    return { exitCode, rounds: this.#scheduler.rounds, reason, report };
  }

  /** One turn of the loop: start a discovery and the due checks, then sleep until the next thing is due. */
  async #turn(): Promise<void> {
    const now = this.#clock.now();
    this.#discovery.startIfDue(now, () => this.#stop.signal.aborted, () => this.#waker.wake());
    const due = new Map<string, ScheduleEntry<Scheduled>[]>();
    for (const entry of this.#scheduler.takeDue(now)) {
      const list = due.get(entry.data.vm);
      if (list) list.push(entry);
      else due.set(entry.data.vm, [entry]);
    }
    for (const [name, entries] of due) this.#track(this.#runChecks(name, entries));
    let wakeAt = this.#discovery.wakeAt();
    const next = this.#scheduler.nextWake();
    if (next !== undefined) wakeAt = Math.min(wakeAt, next);
    await this.#waker.wait(wakeAt - this.#clock.now(), this.#stop.signal);
  }

  /** Stop: cancel what runs, drop results not yet thresholded, give in-flight work a moment to hand back. */
  async #wind(): Promise<void> {
    if (!this.#stop.signal.aborted) this.#stop.abort(new Error('error'));
    for (const p of this.#pending.values()) if (p.timer !== undefined) this.#clock.clearTimeout(p.timer);
    this.#pending.clear();
    let timer: unknown;
    const grace = new Promise<void>((resolve) => (timer = this.#clock.setTimeout(resolve, 1500)));
    await Promise.race([Promise.allSettled([...this.#inflight, ...(this.#discovery.running ? [this.#discovery.running] : [])]), grace]);
    this.#clock.clearTimeout(timer);
  }
}
