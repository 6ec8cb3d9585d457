/**
 * What the status page (src/serve) reads besides history and transitions, written once for both dialects: each
 * is one indexed query (the state table, or results of one check in a time range).
 */
import type { HealthStatus } from '../report.js';
import { decodeRow, selectList } from './columns.js';
import type { Dialect } from './dialect.js';
import { STATE } from './tables.js';
import type { BucketQuery, CurrentCheckRow, ResultBucket } from './types.js';

/** The state table without its bookkeeping column. */
const { updated_at: _updated, ...CURRENT } = STATE;

export async function currentChecks(d: Dialect, vm?: string): Promise<CurrentCheckRow[]> {
  const sql = `SELECT ${selectList(d, 'check_states', CURRENT)} FROM check_states${vm === undefined ? '' : ' WHERE vm = ?'}`;
  const rows = await d.session((c) => c.all(sql, vm === undefined ? [] : [vm]));
  return rows.map((raw) => {
    const r = decodeRow(d, CURRENT, raw);
    return {
      vm: r.vm as string,
      check: r.check_name as string,
      state: r.state as HealthStatus,
      hard: r.hard as boolean,
      consecutive_failures: Number(r.consecutive_failures),
      consecutive_successes: Number(r.consecutive_successes),
      last_result_status: r.last_result_status as HealthStatus,
      last_result_at: Number(r.last_result_at),
      last_change: Number(r.last_change),
      last_message: (r.last_message as string | null) ?? '',
    };
  });
}

/**
 * One check's results counted per bucket and raw status. Counting first and fetching each group's latest message
 * by index afterwards: carrying the message through the GROUP BY made the query about 8× slower.
 */
export async function resultBuckets(d: Dialect, q: BucketQuery): Promise<ResultBucket[]> {
  const bucketMs = Math.max(1, Math.floor(q.bucketMs));
  const bucket = d.kind === 'sqlite' ? 'CAST((ts - ?) / ? AS INTEGER)' : 'floor((extract(epoch FROM ts) * 1000 - ?::float8) / ?::float8)::int';
  const sum = d.kind === 'sqlite' ? 'total(duration_ms)' : 'coalesce(sum(duration_ms), 0)::float8';
  const sql = `WITH g AS (
      SELECT ${bucket} AS bucket, status, count(*) AS count, ${sum} AS duration_ms_sum, max(ts) AS last
      FROM results WHERE vm = ? AND check_name = ? AND ts >= ${d.bind('ms')} AND ts < ${d.bind('ms')}
      GROUP BY 1, 2)
    SELECT g.bucket, g.status, g.count, g.duration_ms_sum, ${d.select('ms', 'g.last')} AS last_ts,
      (SELECT message FROM results r WHERE r.vm = ? AND r.check_name = ? AND r.ts = g.last AND r.status = g.status
       ORDER BY r.id DESC LIMIT 1) AS last_message
    FROM g`;
  const params = [q.sinceMs, bucketMs, q.vm, q.check, d.encode('ms', q.sinceMs), d.encode('ms', q.untilMs), q.vm, q.check];
  const rows = await d.session((c) => c.all<Record<string, unknown>>(sql, params));
  return rows.map((r) => ({
    bucket: Number(r.bucket),
    status: r.status as HealthStatus,
    count: Number(r.count),
    duration_ms_sum: Number(r.duration_ms_sum ?? 0),
    last_ts: Number(d.decode('ms', r.last_ts)),
    last_message: (r.last_message as string | null) ?? '',
  }));
}

/** Changes whenever a result or a state is recorded; cheap enough to poll every second. */
export async function changeMarker(d: Dialect): Promise<string> {
  const sql = `SELECT (SELECT max(id) FROM results) AS results, (SELECT ${d.select('ms', `max(${d.column('check_states', 'updated_at')})`)} FROM check_states) AS states`;
  const [r] = await d.session((c) => c.all<{ results: unknown; states: unknown }>(sql));
  return `${r?.results ?? 0}:${r?.states ?? 0}`;
}
