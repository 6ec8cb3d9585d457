/**
 * What the status page shows, read through the store's public interface (src/store/types.ts) and shaped into
 * view models that the HTML templates, the JSON API, the badges and /metrics share. Nothing here renders.
 *
 * The fleet view reads only the state table (one row per check): its cost does not grow with history. Uptime bars
 * read one check's results grouped per bucket and status, in the database.
 */
import type { CloneboxConfig } from '../config/schema.js';
import { overallStatus } from '../engine/aggregate.js';
import { globToRegExp } from '../inventory/discover.js';
import { countStatuses, STATUSES, type HealthStatus, type StatusCounts } from '../report.js';
import type { CurrentCheckRow, HealthStore, ResultRow, TransitionRow } from '../store/types.js';
import { alertKey } from '../alerting/types.js';
import { activeSilence } from '../alerting/silences.js';
import { byName, displayMessage, SEVERITY } from './status.js';
import { loadBars, toBars, uptimeOf, WINDOW_24H, WINDOWS, type Bar, type Uptime, type UptimeWindow } from './uptime.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** What the config says about a check; the store does not keep it. */
export interface CheckMeta {
  type: string;
  critical: boolean;
  tags: readonly string[];
  interval_ms: number;
}

export type MetaLookup = (vm: string, check: string) => CheckMeta | undefined;

/** Criticality, tags and intervals from the config, when serve has one; a check it does not name is non-critical. */
export function metaFromConfig(config: CloneboxConfig | undefined): MetaLookup {
  if (!config) return () => undefined;
  const meta = (c: CloneboxConfig['health_checks'][number]): CheckMeta => ({ type: c.type, critical: c.critical, tags: c.tags, interval_ms: c.interval });
  const global = new Map(config.health_checks.map((c) => [c.name, meta(c)]));
  const perVm = new Map(Object.entries(config.vms).map(([vm, v]) => [vm, new Map(v.health_checks.map((c) => [c.name, meta(c)]))]));
  return (vm, check) => perVm.get(vm)?.get(check) ?? global.get(check);
}

export interface CheckSummary {
  vm: string;
  check: string;
  /** The thresholded state. */
  status: HealthStatus;
  /** The raw status of the latest result (differs from `status` while a streak is counting). */
  last_result_status: HealthStatus;
  /** ms: when `status` last changed. */
  since: number;
  last_result_at: number;
  message: string;
  consecutive_failures: number;
  consecutive_successes: number;
  critical: boolean;
  tags: readonly string[];
  type?: string;
  /** No result for much longer than its interval (or an hour, without a config): the watch may have stopped. */
  stale: boolean;
}

export interface VmSummary {
  vm: string;
  status: HealthStatus;
  /** ms: since when the VM looks like this (see `vmSince`). */
  since: number;
  last_result_at: number;
  checks: CheckSummary[];
  counts: StatusCounts;
}

export interface FleetFilter {
  status?: HealthStatus;
  /** A VM name or glob (`web-*`). */
  vm?: string;
  tag?: string;
}

export interface FleetView {
  now: number;
  overall_status: HealthStatus;
  /** Counts over the whole fleet, whatever the filter. */
  counts: { vms: StatusCounts; checks: StatusCounts };
  /** The VMs the filter keeps, worst first, then by name. */
  vms: VmSummary[];
  /** Every tag the config gives a recorded check (for the filter's choices). */
  tags: string[];
  filter: FleetFilter;
  last_result_at: number | null;
}

function summarize(r: CurrentCheckRow, meta: MetaLookup, now: number): CheckSummary {
  const m = meta(r.vm, r.check);
  const staleAfter = m ? Math.max(3 * m.interval_ms, 5 * MIN) : HOUR;
  return {
    vm: r.vm,
    check: r.check,
    status: r.state,
    last_result_status: r.last_result_status,
    since: r.last_change,
    last_result_at: r.last_result_at,
    message: displayMessage(r.last_message),
    consecutive_failures: r.consecutive_failures,
    consecutive_successes: r.consecutive_successes,
    critical: m?.critical ?? false,
    tags: m?.tags ?? [],
    ...(m ? { type: m.type } : {}),
    stale: now - r.last_result_at > staleAfter,
  };
}

/**
 * Since when a VM has its status: for a HEALTHY VM the last change of any check (the latest recovery); otherwise
 * the earliest change among its checks that are not HEALTHY (when the trouble started).
 */
export function vmSince(status: HealthStatus, checks: readonly Pick<CheckSummary, 'status' | 'since'>[]): number {
  if (checks.length === 0) return 0;
  if (status === 'HEALTHY') return Math.max(...checks.map((c) => c.since));
  const troubled = checks.filter((c) => c.status !== 'HEALTHY');
  return Math.min(...(troubled.length ? troubled : checks).map((c) => c.since));
}

function groupVms(rows: readonly CurrentCheckRow[], meta: MetaLookup, now: number): VmSummary[] {
  const byVm = new Map<string, CheckSummary[]>();
  for (const r of rows) {
    const list = byVm.get(r.vm);
    const c = summarize(r, meta, now);
    if (list) list.push(c);
    else byVm.set(r.vm, [c]);
  }
  const vms: VmSummary[] = [];
  for (const [vm, checks] of byVm) {
    checks.sort((a, b) => SEVERITY[b.status] - SEVERITY[a.status] || byName(a.check, b.check));
    const status = overallStatus(checks);
    vms.push({
      vm,
      status,
      since: vmSince(status, checks),
      last_result_at: Math.max(...checks.map((c) => c.last_result_at)),
      checks,
      counts: countStatuses(checks.map((c) => c.status)),
    });
  }
  return vms.sort((a, b) => SEVERITY[b.status] - SEVERITY[a.status] || byName(a.vm, b.vm));
}

export function parseStatus(value: unknown): HealthStatus | undefined {
  if (typeof value !== 'string') return undefined;
  const up = value.toUpperCase();
  return (STATUSES as readonly string[]).includes(up) ? (up as HealthStatus) : undefined;
}

/** The filter from a query string; anything unusable is dropped, never an error (a page always renders). */
export function parseFilter(query: Record<string, unknown>): FleetFilter {
  const text = (v: unknown, max: number) => (typeof v === 'string' && v.trim() !== '' && v.length <= max ? v.trim() : undefined);
  const status = parseStatus(query.status);
  const vm = text(query.vm, 200);
  const tag = text(query.tag, 100);
  return { ...(status ? { status } : {}), ...(vm ? { vm } : {}), ...(tag ? { tag } : {}) };
}

export function applyFilter(vms: readonly VmSummary[], filter: FleetFilter): VmSummary[] {
  const nameRe = filter.vm ? globToRegExp(filter.vm.includes('*') || filter.vm.includes('?') || filter.vm.includes('[') ? filter.vm : `*${filter.vm}*`) : undefined;
  const out: VmSummary[] = [];
  for (const v of vms) {
    if (nameRe && !nameRe.test(v.vm)) continue;
    const checks = filter.tag ? v.checks.filter((c) => c.tags.includes(filter.tag!)) : v.checks;
    if (checks.length === 0) continue;
    if (filter.status && v.status !== filter.status && !checks.some((c) => c.status === filter.status)) continue;
    out.push(checks === v.checks ? v : { ...v, checks });
  }
  return out;
}

export async function loadFleet(store: HealthStore, meta: MetaLookup, filter: FleetFilter, now = Date.now()): Promise<FleetView> {
  const all = groupVms(await store.currentChecks(), meta, now);
  const tags = new Set<string>();
  let last: number | null = null;
  for (const v of all) {
    for (const c of v.checks) for (const t of c.tags) tags.add(t);
    last = last === null ? v.last_result_at : Math.max(last, v.last_result_at);
  }
  const checks = all.flatMap((v) => v.checks.map((c) => c.status));
  return {
    now,
    overall_status: all.length ? all[0]!.status : 'UNKNOWN',
    counts: { vms: countStatuses(all.map((v) => v.status)), checks: countStatuses(checks) },
    vms: applyFilter(all, filter),
    tags: [...tags].sort(),
    filter,
    last_result_at: last,
  };
}

/** One VM's current summary; undefined when the store has no state for it. */
export async function loadVmSummary(store: HealthStore, meta: MetaLookup, vm: string, now = Date.now()): Promise<VmSummary | undefined> {
  return groupVms(await store.currentChecks(vm), meta, now)[0];
}

// ─── one VM, one check ───

export interface VmView {
  now: number;
  summary: VmSummary;
  /** Per check (same order as summary.checks): the last 24 hours. */
  bars: Map<string, Bar[]>;
  uptime24h: Uptime;
}

export async function loadVm(store: HealthStore, meta: MetaLookup, vm: string, now = Date.now()): Promise<VmView | undefined> {
  const summary = await loadVmSummary(store, meta, vm, now);
  if (!summary) return undefined;
  const bars = new Map<string, Bar[]>();
  for (const c of summary.checks) bars.set(c.check, await loadBars(store, vm, c.check, WINDOW_24H, now));
  return { now, summary, bars, uptime24h: uptimeOf([...bars.values()].flat()) };
}

export interface CheckView {
  now: number;
  vm: VmSummary;
  check: CheckSummary;
  windows: { window: UptimeWindow; bars: Bar[]; uptime: Uptime }[];
  /** Newest first, at most TRANSITIONS_SHOWN, over 30 days. */
  transitions: TransitionRow[];
  /** A maintenance silence covering this check now (docs/alerting.md). */
  silence?: { until: number; reason: string };
  /** This check's alert, when it is open or flapping. */
  alert?: { firing: boolean; flapping: boolean; since?: number };
}

export const TRANSITIONS_SHOWN = 50;

export async function loadCheck(store: HealthStore, meta: MetaLookup, vm: string, check: string, now = Date.now()): Promise<CheckView | undefined> {
  const summary = await loadVmSummary(store, meta, vm, now);
  const c = summary?.checks.find((x) => x.check === check);
  if (!summary || !c) return undefined;
  const windows = [];
  for (const w of WINDOWS) {
    const bars = await loadBars(store, vm, check, w, now);
    windows.push({ window: w, bars, uptime: uptimeOf(bars) });
  }
  const transitions = await store.transitions({ vm, check, sinceMs: now - 30 * DAY });
  const silence = activeSilence(await store.silences(now), vm, check, now);
  const alert = (await store.alertStates([vm])).get(alertKey(vm, check));
  return {
    now,
    ...(silence ? { silence: { until: silence.ends_at, reason: displayMessage(silence.reason) } } : {}),
    ...(alert && (alert.firing || alert.flapping) ? { alert: { firing: alert.firing, flapping: alert.flapping, ...(alert.since !== undefined ? { since: alert.since } : {}) } } : {}),
    vm: summary,
    check: c,
    windows,
    transitions: transitions
      .slice(-TRANSITIONS_SHOWN)
      .reverse()
      .map((t) => ({ ...t, message: displayMessage(t.message) })),
  };
}

export interface HistoryPage {
  results: Pick<ResultRow, 'ts' | 'status' | 'state' | 'duration_ms' | 'message'>[];
  /** More results follow: ask again with since = next_since. */
  next_since: number | null;
}

export const HISTORY_LIMIT_MAX = 5000;

export async function loadHistory(store: HealthStore, vm: string, check: string, sinceMs: number, untilMs: number, limit: number): Promise<HistoryPage> {
  const rows = await store.history({ vm, check, sinceMs, untilMs, limit: limit + 1 });
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return {
    results: page.map((r) => ({ ts: r.ts, status: r.status, state: r.state, duration_ms: r.duration_ms, message: displayMessage(r.message) })),
    next_since: more ? rows[limit]!.ts : null,
  };
}

/** A VM's or a check's status and 24-hour uptime, for badges. */
export async function loadBadge(store: HealthStore, meta: MetaLookup, vm: string, check: string | undefined, now = Date.now()): Promise<{ status: HealthStatus; uptime: Uptime } | undefined> {
  const summary = await loadVmSummary(store, meta, vm, now);
  if (!summary) return undefined;
  const checks = check === undefined ? summary.checks : summary.checks.filter((c) => c.check === check);
  if (checks.length === 0) return undefined;
  // The last 24 hours exactly: one bucket, not aligned.
  const sinceMs = now - DAY;
  const bars: Bar[] = [];
  for (const c of checks) bars.push(...toBars(await store.resultBuckets({ vm, check: c.check, sinceMs, untilMs: now + 1, bucketMs: DAY + 1 }), sinceMs, DAY + 1, 1));
  return { status: check === undefined ? summary.status : checks[0]!.status, uptime: uptimeOf(bars) };
}
