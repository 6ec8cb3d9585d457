/**
 * `health history VM`: per check, uptime, failures, durations, transitions and a timeline over the window.
 * Two pure steps: `summarizeHistory` (store rows → the `--json` shape) and `renderHistory` (that shape → text).
 */
import { printable } from '../util/printable.js';
import { Chalk, type ChalkInstance } from 'chalk';
import { paintStatus } from './colour.js';
import type { CheckState } from '../engine/state.js';
import type { HealthStatus } from '../report.js';
import type { ActionRow, ResultRow, TransitionRow } from '../store/types.js';

export interface HistoryInput {
  vm: string;
  /** The window, ms since the epoch: [sinceMs, untilMs). */
  sinceMs: number;
  untilMs: number;
  results: readonly ResultRow[];
  transitions: readonly TransitionRow[];
  actions?: readonly ActionRow[];
  /** The checks' current states (from the store), shown as "now". */
  states?: ReadonlyMap<string, CheckState>;
}

/** One timeline bucket: H healthy, D degraded, U unhealthy, ? only unknown results, . no results. */
export type TimelineCell = 'H' | 'D' | 'U' | '?' | '.';

export interface CheckHistory {
  check: string;
  type: string;
  results: number;
  healthy: number;
  degraded: number;
  unhealthy: number;
  /** Not evaluated (VM down, SSH refused): excluded from uptime. */
  unknown: number;
  /** HEALTHY share of evaluated (non-UNKNOWN) results, in %, 2 decimals; null without any. */
  uptime_percent: number | null;
  /** Failing (UNHEALTHY) results. */
  failures: number;
  /** Hard transitions into UNHEALTHY in the window. */
  outages: number;
  /** Over evaluated results. */
  duration_ms: { mean: number | null; p95: number | null };
  /** The check's current state, when known. */
  now?: { state: HealthStatus; hard: boolean; since: string };
  transitions: { ts: string; from: HealthStatus | null; to: HealthStatus; hard: boolean; message: string }[];
  actions: { ts: string; action: string; status: string; command: string; exit_code?: number; reason?: string }[];
  /** One cell per bucket, oldest first. */
  timeline: string;
  /** Present when some results fell in a maintenance silence (docs/alerting.md): how many, and which silences. */
  silenced?: { results: number; silences: { id: string; from: string; until: string; reason: string }[] };
}

export interface HistorySummary {
  schema_version: 1;
  vm: string;
  since: string;
  until: string;
  bucket_ms: number;
  checks: CheckHistory[];
}

export interface SummarizeOptions {
  /** Timeline width; default 60. */
  buckets?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const RANK: Record<TimelineCell, number> = { '.': 0, '?': 1, H: 2, D: 3, U: 4 };
const CELL: Record<HealthStatus, TimelineCell> = { HEALTHY: 'H', DEGRADED: 'D', UNHEALTHY: 'U', UNKNOWN: '?' };

/**
 * A bucket shows its worst evaluated result: one failure in it is red. UNKNOWN shows only where nothing was
 * evaluated, so a transport blip does not hide what was seen.
 */
function timeline(rows: readonly ResultRow[], sinceMs: number, untilMs: number, buckets: number): string {
  const cells: TimelineCell[] = Array.from({ length: buckets }, () => '.');
  const span = untilMs - sinceMs;
  for (const r of rows) {
    if (r.ts < sinceMs || r.ts >= untilMs) continue;
    const i = Math.min(buckets - 1, Math.floor(((r.ts - sinceMs) / span) * buckets));
    const cell = CELL[r.status];
    if (RANK[cell] > RANK[cells[i]!]) cells[i] = cell;
  }
  return cells.join('');
}

export function summarizeHistory(input: HistoryInput, options: SummarizeOptions = {}): HistorySummary {
  const buckets = Math.max(1, Math.floor(options.buckets ?? 60));
  const untilMs = Math.max(input.untilMs, input.sinceMs + 1);
  const byCheck = new Map<string, ResultRow[]>();
  const names = new Set<string>();
  for (const r of input.results) {
    names.add(r.check);
    let list = byCheck.get(r.check);
    if (!list) byCheck.set(r.check, (list = []));
    list.push(r);
  }
  for (const t of input.transitions) names.add(t.check);

  const checks = [...names].sort().map((name): CheckHistory => {
    const rows = [...(byCheck.get(name) ?? [])].sort((a, b) => a.ts - b.ts);
    const count = (s: HealthStatus) => rows.filter((r) => r.status === s).length;
    const healthy = count('HEALTHY');
    const degraded = count('DEGRADED');
    const unhealthy = count('UNHEALTHY');
    const unknown = count('UNKNOWN');
    const evaluated = healthy + degraded + unhealthy;
    const durations = rows.filter((r) => r.status !== 'UNKNOWN').map((r) => r.duration_ms).sort((a, b) => a - b);
    const transitions = input.transitions.filter((t) => t.check === name).sort((a, b) => a.ts - b.ts);
    const state = input.states?.get(name);
    const silenced = silencedOf(rows);
    return {
      check: name,
      type: rows[rows.length - 1]?.type ?? '',
      results: rows.length,
      healthy,
      degraded,
      unhealthy,
      unknown,
      uptime_percent: evaluated ? round((healthy / evaluated) * 100, 2) : null,
      failures: unhealthy,
      outages: transitions.filter((t) => t.to === 'UNHEALTHY').length,
      duration_ms: {
        mean: durations.length ? round(durations.reduce((a, b) => a + b, 0) / durations.length, 1) : null,
        p95: percentile(durations, 95),
      },
      ...(state ? { now: { state: state.state, hard: state.hard, since: state.last_change } } : {}),
      transitions: transitions.map((t) => ({ ts: iso(t.ts), from: t.from, to: t.to, hard: t.hard, message: t.message })),
      actions: (input.actions ?? [])
        .filter((a) => a.check === name)
        .sort((a, b) => a.ts - b.ts)
        .map((a) => ({
          ts: iso(a.ts),
          action: a.action,
          status: a.status,
          command: a.command,
          ...(a.exit_code !== undefined ? { exit_code: a.exit_code } : {}),
          ...(a.reason !== undefined ? { reason: a.reason } : {}),
        })),
      timeline: timeline(rows, input.sinceMs, untilMs, buckets),
      ...(silenced ? { silenced } : {}),
    };
  });
  return {
    schema_version: 1,
    vm: input.vm,
    since: iso(input.sinceMs),
    until: iso(untilMs),
    bucket_ms: (untilMs - input.sinceMs) / buckets,
    checks,
  };
}

/** Results recorded during a silence carry `details.silenced` (src/store/round.ts). */
function silencedOf(rows: readonly ResultRow[]): CheckHistory['silenced'] {
  const byId = new Map<string, { id: string; from: string; until: string; reason: string }>();
  let results = 0;
  for (const r of rows) {
    const s = r.details.silenced as { id?: string; until?: string; reason?: string } | undefined;
    if (!s?.id) continue;
    results++;
    if (!byId.has(s.id)) byId.set(s.id, { id: s.id, from: iso(r.ts), until: s.until ?? '', reason: s.reason ?? '' });
  }
  return results ? { results, silences: [...byId.values()] } : undefined;
}

// ───────────────────────────── text ─────────────────────────────

export interface HistoryRenderOptions {
  color: boolean;
  /** Times in the local zone (default) or UTC. */
  timeZone?: 'local' | 'UTC';
  /** Show at most this many of the latest transitions and actions per check (all are in --json); default 20. */
  maxEvents?: number;
}


const BLOCK: Record<TimelineCell, [HealthStatus | null, string]> = {
  H: ['HEALTHY', '█'],
  D: ['DEGRADED', '█'],
  U: ['UNHEALTHY', '█'],
  '?': ['UNKNOWN', '█'],
  '.': [null, '░'],
};

function bar(c: ChalkInstance, cells: string, color: boolean): string {
  if (!color) return cells;
  return [...cells].map((cell) => {
    const [status, ch] = BLOCK[cell as TimelineCell];
    return paintStatus(c, status, ch);
  }).join('');
}

function clock(isoTime: string, utc: boolean, seconds: boolean): string {
  const d = new Date(isoTime);
  const p = (n: number) => String(n).padStart(2, '0');
  const [y, mo, da, h, mi, s] = utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  return `${y}-${p(mo)}-${p(da)} ${p(h)}:${p(mi)}${seconds ? `:${p(s)}` : ''}`;
}

function span(ms: number): string {
  const units: [number, string][] = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'm'], [1000, 's']];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  for (const [size, unit] of units) if (ms >= size) return `${+(ms / size).toFixed(1)}${unit}`;
  return `${Math.round(ms)}ms`;
}

function ms(n: number | null): string {
  if (n === null) return '–';
  return n >= 1000 ? `${+(n / 1000).toFixed(2)}s` : `${+n.toFixed(1)}ms`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function renderHistory(summary: HistorySummary, options: HistoryRenderOptions): string {
  const c = new Chalk({ level: options.color ? 1 : 0 });
  const utc = options.timeZone === 'UTC';
  const maxEvents = options.maxEvents ?? 20;
  const windowMs = Date.parse(summary.until) - Date.parse(summary.since);
  const width = summary.checks[0]?.timeline.length ?? 60;
  const out: string[] = [];
  out.push(
    `${c.bold(printable(summary.vm))}  ${c.dim(`last ${span(windowMs)}: ${clock(summary.since, utc, false)} → ${clock(summary.until, utc, false)}${utc ? ' UTC' : ''}, one cell = ${span(Math.round(summary.bucket_ms))}`)}`,
  );
  out.push('');
  if (summary.checks.length === 0) {
    out.push(`  no results recorded for ${printable(summary.vm)} in this window`);
    return `${out.join('\n')}\n`;
  }
  for (const k of summary.checks) {
    const uptime = k.uptime_percent === null ? c.dim('uptime –') : `uptime ${paintStatus(c, k.uptime_percent >= 99.9 ? 'HEALTHY' : k.uptime_percent >= 99 ? 'DEGRADED' : 'UNHEALTHY', `${k.uptime_percent.toFixed(2)}%`)}`;
    const facts = [
      plural(k.outages, 'outage'),
      plural(k.failures, 'failed result'),
      ...(k.unknown ? [paintStatus(c, 'UNKNOWN', `${k.unknown} unknown`)] : []),
      ...(k.silenced ? [c.yellow(`${k.silenced.results} silenced`)] : []),
      `of ${k.results}`,
    ].join(', ');
    out.push(`${c.bold(k.check)} ${c.dim(`(${k.type})`)}  ${uptime}  ${facts}  ${c.dim(`duration mean ${ms(k.duration_ms.mean)}, p95 ${ms(k.duration_ms.p95)}`)}`);
    out.push(`  ${bar(c, k.timeline, options.color)}`);
    const left = clock(summary.since, utc, false);
    const right = clock(summary.until, utc, false);
    out.push(c.dim(`  ${left}${' '.repeat(Math.max(1, width - left.length - right.length))}${right}`));
    if (k.now) {
      out.push(`  now ${paintStatus(c, k.now.state, k.now.state)}${k.now.hard ? '' : c.dim(' (soft)')} ${c.dim(`since ${clock(k.now.since, utc, true)}`)}`);
    }
    const events = [
      ...k.transitions.map((t) => ({
        ts: t.ts,
        text: `${t.from ? paintStatus(c, t.from, t.from) : c.dim('(new)')} → ${paintStatus(c, t.to, t.to)}${t.hard ? '' : c.dim(' (soft)')}  ${t.message}`,
      })),
      ...k.actions.map((a) => ({
        ts: a.ts,
        text:
          `${c.cyan(a.action)} ${a.status === 'ok' ? c.green(a.status) : a.status === 'suppressed' || a.status === 'pending' ? c.yellow(a.status) : c.red(a.status)}` +
          `${a.exit_code !== undefined ? ` (exit ${a.exit_code})` : ''}: ${a.command}${a.reason ? c.dim(` — ${a.reason}`) : ''}`,
      })),
      ...(k.silenced?.silences ?? []).map((x) => ({
        ts: x.from,
        text: `${c.yellow('silenced')} ${x.id} until ${clock(x.until, utc, true)}: ${x.reason} ${c.dim('(checks ran and were recorded; no alerts, no actions)')}`,
      })),
    ].sort((a, b) => a.ts.localeCompare(b.ts));
    if (events.length > 0) {
      const shown = events.slice(-maxEvents);
      if (shown.length < events.length) out.push(c.dim(`    … ${events.length - shown.length} earlier (see --json)`));
      for (const e of shown) out.push(`    ${c.dim(clock(e.ts, utc, true))}  ${e.text}`);
    }
    out.push('');
  }
  out.push(
    options.color
      ? c.dim(`${c.green('█')} healthy  ${c.yellow('█')} degraded  ${c.red('█')} unhealthy  ${c.magenta('█')} unknown  ${c.gray('░')} no data`)
      : 'H healthy  D degraded  U unhealthy  ? unknown  . no data',
  );
  return `${out.join('\n')}\n`;
}

export function renderHistoryJson(summary: HistorySummary): string {
  return `${JSON.stringify(summary, null, 2)}\n`;
}
