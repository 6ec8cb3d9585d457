/**
 * Uptime bars: one check's results counted per time bucket and status (the store's `resultBuckets`), turned into
 * bars where the worst status wins, and the uptime they add up to. Pure, except `loadBars`.
 */
import type { HealthStatus } from '../report.js';
import type { HealthStore, ResultBucket } from '../store/types.js';
import { displayMessage, SEVERITY } from './status.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;


export interface UptimeWindow {
  key: '24h' | '7d' | '30d';
  label: string;
  bucketMs: number;
  count: number;
}

export const WINDOWS: readonly UptimeWindow[] = [
  { key: '24h', label: '24 hours', bucketMs: 30 * MIN, count: 48 },
  { key: '7d', label: '7 days', bucketMs: 4 * HOUR, count: 42 },
  { key: '30d', label: '30 days', bucketMs: DAY, count: 30 },
];

export const WINDOW_24H = WINDOWS[0]!;

/** Buckets aligned to their size (UTC), the last one holding `now`: the same bars for every viewer in a bucket. */
export function windowRange(w: Pick<UptimeWindow, 'bucketMs' | 'count'>, now: number): { sinceMs: number; untilMs: number } {
  const untilMs = (Math.floor(now / w.bucketMs) + 1) * w.bucketMs;
  return { sinceMs: untilMs - w.count * w.bucketMs, untilMs };
}

export interface Bar {
  start: number;
  end: number;
  /** The worst raw status in the bucket; null: no results. */
  status: HealthStatus | null;
  counts: Record<HealthStatus, number>;
  /** The latest message of the worst status, and when. */
  message?: string;
  message_ts?: number;
  /** Mean response time of the evaluated results (UNKNOWN excluded); null without any. */
  mean_ms: number | null;
}

const zero = (): Record<HealthStatus, number> => ({ HEALTHY: 0, DEGRADED: 0, UNHEALTHY: 0, UNKNOWN: 0 });

/** One bar per bucket; worst status wins, and its latest message is the bar's. Rows outside the range are ignored. */
export function toBars(rows: readonly ResultBucket[], sinceMs: number, bucketMs: number, count: number): Bar[] {
  const bars: Bar[] = Array.from({ length: count }, (_, i) => ({
    start: sinceMs + i * bucketMs,
    end: sinceMs + (i + 1) * bucketMs,
    status: null,
    counts: zero(),
    mean_ms: null,
  }));
  const sums = new Array<number>(count).fill(0);
  for (const r of rows) {
    const bar = bars[r.bucket];
    if (!bar) continue;
    bar.counts[r.status] += r.count;
    if (r.status !== 'UNKNOWN') sums[r.bucket]! += r.duration_ms_sum;
    if (bar.status === null || SEVERITY[r.status] > SEVERITY[bar.status] || (r.status === bar.status && r.last_ts > (bar.message_ts ?? 0))) {
      bar.status = r.status;
      bar.message = displayMessage(r.last_message);
      bar.message_ts = r.last_ts;
    }
  }
  bars.forEach((b, i) => {
    const evaluated = b.counts.HEALTHY + b.counts.DEGRADED + b.counts.UNHEALTHY;
    b.mean_ms = evaluated ? sums[i]! / evaluated : null;
  });
  return bars;
}

export interface Uptime {
  /** Share of evaluated results that were not UNHEALTHY (UNKNOWN results are not evaluated); null without any. */
  ratio: number | null;
  up: number;
  evaluated: number;
}

export function uptimeOf(bars: readonly Pick<Bar, 'counts'>[]): Uptime {
  let up = 0;
  let evaluated = 0;
  for (const b of bars) {
    up += b.counts.HEALTHY + b.counts.DEGRADED;
    evaluated += b.counts.HEALTHY + b.counts.DEGRADED + b.counts.UNHEALTHY;
  }
  return { ratio: evaluated ? up / evaluated : null, up, evaluated };
}

export async function loadBars(store: HealthStore, vm: string, check: string, w: Pick<UptimeWindow, 'bucketMs' | 'count'>, now: number): Promise<Bar[]> {
  const { sinceMs, untilMs } = windowRange(w, now);
  return toBars(await store.resultBuckets({ vm, check, sinceMs, untilMs, bucketMs: w.bucketMs }), sinceMs, w.bucketMs, w.count);
}
