/**
 * When each check of `health watch` runs next. Pure and clock-free (the caller passes `now`), so tests drive it
 * with a fake clock and a seeded random source.
 *
 * - Each entry has its own interval (a check's `interval`, or `--interval` for all).
 * - First runs are spread uniformly over min(interval, 5 s), so 100 VMs started together do not all open their
 *   SSH connections in the same millisecond.
 * - Every later run is due at `anchor + k·interval ± 10 %`: jittered, but anchored, so the schedule neither
 *   drifts nor bunches up again over a long watch.
 * - A run that overran its period does not cause a burst of catch-up runs: missed periods are skipped.
 * - Runs due within a moment of each other go out together: `takeDue` also takes what is due within 2 % of its
 *   interval (at most 1 s) from now. One wake-up then serves several VMs: at 200 VMs and 30 s the watch woke ~200
 *   times a round, each on cold caches after the idle; gathered, the round costs a third less CPU (bench/README.md).
 * - A "round" is complete when every entry has run that many times: the slowest entry sets the pace.
 * - Entries of one `group` (a VM's checks with the same interval) share their phase and each period's jitter, so
 *   they fire together (one burst on the VM's connection); each still completes and is rescheduled on its own, so
 *   a slow check never holds back the others.
 *
 * The map is keyed by entry: it holds exactly what the last `sync` named, so it never grows over a watch. The idle
 * entries are also in a min-heap by due time, so a turn of the watch loop (one per VM group that fires: ~N per round)
 * costs O(log N), not a scan of every entry: at 200 VMs × 3 checks the two scans per turn were a third of what a
 * steady round allocated.
 */
import { MinHeap } from '../util/min-heap.js';

/** A small, fast, seedable PRNG (mulberry32): deterministic jitter for tests, `Math.random` otherwise. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SchedulerOptions {
  /** Uniform in [0, 1). Default Math.random. */
  random?: () => number;
  /** First runs are spread over [0, min(interval, this)). Default 5 s. */
  maxInitialSpreadMs?: number;
  /** Each later run is moved by up to ± this share of its interval. Default 0.1. */
  jitter?: number;
  /** A run may start up to this share of its interval early, with runs due before it. Default 0.02. */
  gather?: number;
  /** …and never more than this early. Default 1 s. */
  maxGatherMs?: number;
}

export interface ScheduleItem<T> {
  key: string;
  intervalMs: number;
  /** Entries with the same group and interval fire together; default: the entry's own key. */
  group?: string;
  data: T;
}

export interface ScheduleEntry<T> extends ScheduleItem<T> {
  /** When the next run is due (ms, the caller's clock). */
  nextDue: number;
  /** Taken by `takeDue` and not yet `complete`d. */
  running: boolean;
  /** Completed runs (an entry added mid-watch starts at the rounds already completed). */
  runs: number;
  /** Time the period count starts from (its group's). */
  anchor: number;
  /** Index of the period of the next run. */
  period: number;
  /** When it was first synced (ties of `nextDue` are taken in this order: the config's). */
  order: number;
}

const dueFirst = <T>(a: ScheduleEntry<T>, b: ScheduleEntry<T>): boolean => a.nextDue < b.nextDue || (a.nextDue === b.nextDue && a.order < b.order);

/** What the entries of one group (and interval) share: phase, and the jitter of the latest period. */
interface Group {
  anchor: number;
  intervalMs: number;
  period: number;
  offset: number;
}

export const DEFAULT_INITIAL_SPREAD_MS = 5000;
export const DEFAULT_JITTER = 0.1;
export const DEFAULT_GATHER = 0.02;
export const DEFAULT_MAX_GATHER_MS = 1000;

export class CheckScheduler<T> {
  readonly #entries = new Map<string, ScheduleEntry<T>>();
  /** The entries not running, earliest due first (may hold entries a sync replaced or dropped: skipped when met). */
  readonly #idle = new MinHeap<ScheduleEntry<T>>(dueFirst);
  #nextOrder = 0;
  readonly #groups = new Map<string, Group>();
  /** The group of each entry. */
  readonly #groupOf = new Map<string, string>();
  readonly #random: () => number;
  readonly #spreadMs: number;
  readonly #jitter: number;
  readonly #gather: number;
  readonly #maxGatherMs: number;
  #rounds = 0;
  /** Entries that have not run more than `#rounds` times: the round completes when the last of them does. */
  #lagging = 0;

  constructor(options: SchedulerOptions = {}) {
    this.#random = options.random ?? Math.random;
    this.#spreadMs = Math.max(0, options.maxInitialSpreadMs ?? DEFAULT_INITIAL_SPREAD_MS);
    this.#jitter = Math.min(0.5, Math.max(0, options.jitter ?? DEFAULT_JITTER));
    this.#gather = Math.min(0.1, Math.max(0, options.gather ?? DEFAULT_GATHER));
    this.#maxGatherMs = Math.max(0, options.maxGatherMs ?? DEFAULT_MAX_GATHER_MS);
  }

  get size(): number {
    return this.#entries.size;
  }

  entries(): IterableIterator<ScheduleEntry<T>> {
    return this.#entries.values();
  }

  get(key: string): ScheduleEntry<T> | undefined {
    return this.#entries.get(key);
  }

  /**
   * Hold exactly these items: new ones get a first run spread over min(interval, spread) from `now`, gone ones
   * are dropped (a run in flight just completes into nothing), a changed interval starts a new anchor at the
   * next due time, and `data` is replaced.
   */
  sync(items: Iterable<ScheduleItem<T>>, now: number): void {
    const seen = new Set<string>();
    for (const item of items) {
      if (!(item.intervalMs > 0)) throw new RangeError(`interval of ${item.key} must be > 0, got ${item.intervalMs}`);
      seen.add(item.key);
      const groupKey = `${item.group ?? item.key}\u0000${item.intervalMs}`;
      const e = this.#entries.get(item.key);
      if (e && this.#groupOf.get(item.key) === groupKey) {
        e.data = item.data;
        continue;
      }
      // New, or its interval changed: join (or start) the group of its new interval, from its next run on.
      let g = this.#groups.get(groupKey);
      if (!g) {
        const first = Math.max(now, e?.nextDue ?? now + this.#random() * Math.min(item.intervalMs, this.#spreadMs));
        g = { anchor: first, intervalMs: item.intervalMs, period: 0, offset: 0 };
        this.#groups.set(groupKey, g);
      }
      const period = Math.max(g.period, Math.ceil((now - g.anchor) / g.intervalMs));
      const nextDue = Math.max(now, g.anchor + period * g.intervalMs + (period === g.period ? g.offset : 0));
      this.#groupOf.set(item.key, groupKey);
      const order = e?.order ?? this.#nextOrder++;
      this.#entries.set(item.key, { ...item, nextDue, running: e?.running ?? false, runs: e?.runs ?? this.#rounds, anchor: g.anchor, period, order });
    }
    for (const key of [...this.#entries.keys()]) {
      if (seen.has(key)) continue;
      this.#entries.delete(key);
      this.#groupOf.delete(key);
    }
    const used = new Set(this.#groupOf.values());
    for (const key of [...this.#groups.keys()]) if (!used.has(key)) this.#groups.delete(key);
    this.#rebuildIdle();
    this.#advanceRounds();
  }

  #rebuildIdle(): void {
    this.#idle.clear();
    for (const e of this.#entries.values()) if (!e.running) this.#idle.push(e);
  }

  /** The heap's earliest entry that is still current and idle (stale ones are dropped on the way). */
  #peekIdle(): ScheduleEntry<T> | undefined {
    for (let top = this.#idle.peek(); top; top = this.#idle.peek()) {
      if (!top.running && this.#entries.get(top.key) === top) return top;
      this.#idle.pop();
    }
    return undefined;
  }

  /**
   * The entries due at `now` that are not already running, marked running (earliest first), with those due within
   * their gathering window (a share of their interval) after `now`: they go out together.
   */
  takeDue(now: number): ScheduleEntry<T>[] {
    const due: ScheduleEntry<T>[] = [];
    for (let e = this.#peekIdle(); e && e.nextDue <= now + Math.min(this.#maxGatherMs, e.intervalMs * this.#gather); e = this.#peekIdle()) {
      this.#idle.pop();
      e.running = true;
      due.push(e);
    }
    return due;
  }

  /**
   * A run of `key` finished at `now`: count it and schedule the next one. Returns whether that completed a
   * round (every entry has now run at least `rounds` times).
   */
  complete(key: string, now: number): boolean {
    const e = this.#entries.get(key);
    const g = this.#groups.get(this.#groupOf.get(key) ?? '');
    if (!e || !g) return false; // dropped by a sync while it ran
    const wasRunning = e.running;
    e.running = false;
    e.runs++;
    // Periods that passed while it ran are skipped, not made up for.
    const k = Math.max(e.period + 1, Math.floor((now - g.anchor) / g.intervalMs));
    let offset: number;
    if (k === g.period) offset = g.offset;
    else {
      offset = (this.#random() * 2 - 1) * this.#jitter * g.intervalMs;
      if (k > g.period) {
        g.period = k;
        g.offset = offset;
      }
    }
    e.period = k;
    e.nextDue = Math.max(now, g.anchor + k * g.intervalMs + offset);
    // An entry completed without being taken is already in the heap, under its old due time.
    if (wasRunning) this.#idle.push(e);
    else this.#rebuildIdle();
    // Only the last entry of a round to finish completes it: count down instead of scanning every entry at every
    // completion (at 200 VMs × 3 checks that scan was a visible share of a steady watch's CPU).
    if (e.runs - 1 > this.#rounds) return false;
    if (--this.#lagging > 0) return false;
    return this.#advanceRounds();
  }

  /** When the earliest idle entry is due; undefined when none is idle. */
  nextWake(): number | undefined {
    return this.#peekIdle()?.nextDue;
  }

  /** Full rounds completed: never goes down, even when entries come and go. */
  get rounds(): number {
    return this.#rounds;
  }

  /** Recount: the rounds all entries have completed, and how many entries have not gone past it. */
  #advanceRounds(): boolean {
    if (this.#entries.size === 0) {
      this.#lagging = 0;
      return false;
    }
    let min = Infinity;
    for (const e of this.#entries.values()) if (e.runs < min) min = e.runs;
    const advanced = min > this.#rounds;
    if (advanced) this.#rounds = min;
    let lagging = 0;
    for (const e of this.#entries.values()) if (e.runs <= this.#rounds) lagging++;
    this.#lagging = lagging;
    return advanced;
  }
}
