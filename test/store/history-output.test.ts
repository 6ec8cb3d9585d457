// The `health history` view (src/outputs/history.ts): a pure function of store rows. Here beside the store
// tests because it renders exactly what the store returns.
import { describe, expect, it } from 'vitest';
import { renderHistory, renderHistoryJson, summarizeHistory, type HistoryInput } from '../../src/outputs/history.js';
import type { HealthStatus } from '../../src/report.js';
import type { ResultRow, TransitionRow } from '../../src/store/types.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const H = 3_600_000;
const M = 60_000;

function row(check: string, status: HealthStatus, ts: number, duration = 10): ResultRow {
  return { ts, vm: 'web-1', check, type: check === 'disk' ? 'disk' : 'http', status, state: null, duration_ms: duration, message: '', details: {} };
}

/** Results every 10 minutes for 6 hours: http fails from 2:00 to 2:30, cannot be reached 4:00–4:20. */
function input(): HistoryInput {
  const results: ResultRow[] = [];
  for (let t = T0; t < T0 + 6 * H; t += 10 * M) {
    const failing = t >= T0 + 2 * H && t < T0 + 2 * H + 30 * M;
    const unknown = t >= T0 + 4 * H && t < T0 + 4 * H + 20 * M;
    results.push(row('http', unknown ? 'UNKNOWN' : failing ? 'UNHEALTHY' : 'HEALTHY', t, failing ? 5000 : 10 + ((t / M) % 7)));
    if (t < T0 + 3 * H) results.push(row('disk', t >= T0 + H ? 'DEGRADED' : 'HEALTHY', t, 2));
  }
  const transitions: TransitionRow[] = [
    { ts: T0, vm: 'web-1', check: 'http', from: null, to: 'HEALTHY', hard: true, message: 'HTTP 200' },
    { ts: T0 + 2 * H, vm: 'web-1', check: 'http', from: 'HEALTHY', to: 'DEGRADED', hard: false, message: 'connection refused' },
    { ts: T0 + 2 * H + 20 * M, vm: 'web-1', check: 'http', from: 'DEGRADED', to: 'UNHEALTHY', hard: true, message: 'connection refused' },
    { ts: T0 + 2 * H + 30 * M, vm: 'web-1', check: 'http', from: 'UNHEALTHY', to: 'HEALTHY', hard: true, message: 'HTTP 200' },
  ];
  return {
    vm: 'web-1',
    sinceMs: T0,
    untilMs: T0 + 6 * H,
    results,
    transitions,
    actions: [
      { id: 1, ts: T0 + 2 * H + 20 * M, vm: 'web-1', check: 'http', action: 'on_failure', command: 'systemctl restart nginx', status: 'ok', exit_code: 0 },
    ],
    states: new Map([
      ['http', { state: 'HEALTHY', hard: true, consecutive_failures: 0, consecutive_successes: 10, last_result_status: 'HEALTHY', last_result_at: new Date(T0 + 6 * H - 10 * M).toISOString(), last_change: new Date(T0 + 2 * H + 30 * M).toISOString(), last_message: 'HTTP 200' }],
    ]),
  };
}

describe('summarizeHistory', () => {
  const s = summarizeHistory(input(), { buckets: 36 });
  const http = s.checks.find((k) => k.check === 'http')!;
  const disk = s.checks.find((k) => k.check === 'disk')!;

  it('counts uptime over evaluated results only: UNKNOWN is neither up nor down', () => {
    expect(http).toMatchObject({ results: 36, healthy: 31, unhealthy: 3, unknown: 2, failures: 3, outages: 1 });
    expect(http.uptime_percent).toBe(91.18); // 31 / 34
    expect(disk).toMatchObject({ results: 18, healthy: 6, degraded: 12, uptime_percent: 33.33, failures: 0, outages: 0 });
  });

  it('gives mean and nearest-rank p95 duration of evaluated results', () => {
    expect(http.duration_ms.p95).toBe(5000);
    expect(http.duration_ms.mean).toBeGreaterThan(400);
    expect(disk.duration_ms).toEqual({ mean: 2, p95: 2 });
  });

  it('draws one cell per bucket: the worst evaluated result, ? only without any, . without data', () => {
    // 36 buckets of 10 minutes: one result each.
    expect(http.timeline).toBe('HHHHHHHHHHHHUUUHHHHHHHHH??HHHHHHHHHH');
    expect(disk.timeline).toBe(`HHHHHHDDDDDDDDDDDD${'.'.repeat(18)}`);
    // Wider buckets: a failure anywhere in one shows; an unknown next to a pass does not.
    const coarse = summarizeHistory({ ...input(), results: input().results.filter((r) => r.check === 'http') }, { buckets: 4 });
    expect(coarse.checks[0]!.timeline).toBe('HUHH');
    const gapped = summarizeHistory({ ...input(), results: [row('http', 'UNKNOWN', T0 + 5 * M), row('http', 'HEALTHY', T0 + 4 * H)] }, { buckets: 6 });
    expect(gapped.checks[0]!.timeline).toBe('?...H.');
  });

  it('lists transitions and actions with ISO times, and the current state', () => {
    expect(http.transitions.map((t) => `${t.from}→${t.to}${t.hard ? '' : ' soft'}`)).toEqual(['null→HEALTHY', 'HEALTHY→DEGRADED soft', 'DEGRADED→UNHEALTHY', 'UNHEALTHY→HEALTHY']);
    expect(http.actions).toEqual([{ ts: '2026-03-01T02:20:00.000Z', action: 'on_failure', status: 'ok', command: 'systemctl restart nginx', exit_code: 0 }]);
    expect(http.now).toEqual({ state: 'HEALTHY', hard: true, since: '2026-03-01T02:30:00.000Z' });
    expect(disk.now).toBeUndefined();
  });

  it('has a stable JSON shape', () => {
    const json = JSON.parse(renderHistoryJson(s));
    expect(Object.keys(json)).toEqual(['schema_version', 'vm', 'since', 'until', 'bucket_ms', 'checks']);
    expect(json).toMatchObject({ schema_version: 1, vm: 'web-1', since: '2026-03-01T00:00:00.000Z', until: '2026-03-01T06:00:00.000Z', bucket_ms: 600_000 });
    expect(Object.keys(json.checks[1])).toEqual([
      'check', 'type', 'results', 'healthy', 'degraded', 'unhealthy', 'unknown', 'uptime_percent', 'failures', 'outages', 'duration_ms', 'now', 'transitions', 'actions', 'timeline',
    ]);
  });

  it('handles a window without data', () => {
    const empty = summarizeHistory({ vm: 'web-9', sinceMs: T0, untilMs: T0 + H, results: [], transitions: [] });
    expect(empty.checks).toEqual([]);
    expect(renderHistory(empty, { color: false, timeZone: 'UTC' })).toContain('no results recorded for web-9 in this window');
  });
});

describe('renderHistory', () => {
  const s = summarizeHistory(input(), { buckets: 36 });

  it('renders plain letters without colour', () => {
    expect(renderHistory(s, { color: false, timeZone: 'UTC' })).toBe(
      [
        'web-1  last 6h: 2026-03-01 00:00 → 2026-03-01 06:00 UTC, one cell = 10m',
        '',
        'disk (disk)  uptime 33.33%  0 outages, 0 failed results, of 18  duration mean 2ms, p95 2ms',
        '  HHHHHHDDDDDDDDDDDD..................',
        '  2026-03-01 00:00    2026-03-01 06:00',
        '',
        `http (http)  uptime 91.18%  1 outage, 3 failed results, 2 unknown, of 36  duration mean ${s.checks[1]!.duration_ms.mean}ms, p95 5s`,
        '  HHHHHHHHHHHHUUUHHHHHHHHH??HHHHHHHHHH',
        '  2026-03-01 00:00    2026-03-01 06:00',
        '  now HEALTHY since 2026-03-01 02:30:00',
        '    2026-03-01 00:00:00  (new) → HEALTHY  HTTP 200',
        '    2026-03-01 02:00:00  HEALTHY → DEGRADED (soft)  connection refused',
        '    2026-03-01 02:20:00  DEGRADED → UNHEALTHY  connection refused',
        '    2026-03-01 02:20:00  on_failure ok (exit 0): systemctl restart nginx',
        '    2026-03-01 02:30:00  UNHEALTHY → HEALTHY  HTTP 200',
        '',
        'H healthy  D degraded  U unhealthy  ? unknown  . no data',
        '',
      ].join('\n'),
    );
  });

  it('draws coloured blocks on a terminal', () => {
    const text = renderHistory(s, { color: true, timeZone: 'UTC' });
    expect(text).toContain('\x1b[31m█\x1b[39m'); // red: the outage
    expect(text).toContain('\x1b[35m█\x1b[39m'); // magenta: unknown
    expect(text).toContain('\x1b[90m░\x1b[39m'); // grey: no data
    expect(text).not.toMatch(/HHHH/);
  });

  it('keeps the latest events and points to --json for the rest', () => {
    const text = renderHistory(s, { color: false, timeZone: 'UTC', maxEvents: 2 });
    expect(text).toContain('    … 3 earlier (see --json)');
    expect(text).toContain('UNHEALTHY → HEALTHY  HTTP 200');
    expect(text).not.toContain('(new) → HEALTHY');
  });
});
