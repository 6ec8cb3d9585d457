/**
 * The JSON API's shapes (docs/api.md, schema in docs/api.schema.json). Stable like `--json`: snake_case, times as
 * ISO-8601 UTC strings, `schema_version: 1`; a change of meaning needs a new version.
 */
import type { HealthStatus, StatusCounts } from '../report.js';
import type { CheckSummary, FleetFilter, FleetView, HistoryPage, VmSummary } from './queries.js';
import type { Uptime } from './uptime.js';

export const API_SCHEMA_VERSION = 1;

const iso = (ms: number | null): string | null => (ms ? new Date(ms).toISOString() : null);

export interface CheckJson {
  check: string;
  status: HealthStatus;
  last_result_status: HealthStatus;
  since: string | null;
  last_result_at: string | null;
  message: string;
  consecutive_failures: number;
  consecutive_successes: number;
  critical: boolean;
  tags: string[];
  type: string | null;
  stale: boolean;
}

export interface VmJson {
  vm: string;
  status: HealthStatus;
  since: string | null;
  last_result_at: string | null;
  counts: StatusCounts;
  checks: CheckJson[];
}

export function checkJson(c: CheckSummary): CheckJson {
  return {
    check: c.check,
    status: c.status,
    last_result_status: c.last_result_status,
    since: iso(c.since),
    last_result_at: iso(c.last_result_at),
    message: c.message,
    consecutive_failures: c.consecutive_failures,
    consecutive_successes: c.consecutive_successes,
    critical: c.critical,
    tags: [...c.tags],
    type: c.type ?? null,
    stale: c.stale,
  };
}

export function vmJson(v: VmSummary): VmJson {
  return { vm: v.vm, status: v.status, since: iso(v.since), last_result_at: iso(v.last_result_at), counts: v.counts, checks: v.checks.map(checkJson) };
}

export function fleetJson(view: FleetView) {
  return {
    schema_version: API_SCHEMA_VERSION,
    generated_at: new Date(view.now).toISOString(),
    overall_status: view.overall_status,
    last_result_at: iso(view.last_result_at),
    counts: view.counts,
    filter: view.filter satisfies FleetFilter,
    vms: view.vms.map(vmJson),
  };
}

export type UptimeJson = Record<'24h' | '7d' | '30d', number | null>;

export function vmDetailJson(now: number, v: VmSummary, uptimes: Map<string, Record<'24h' | '7d' | '30d', Uptime>>) {
  const base = vmJson(v);
  return {
    schema_version: API_SCHEMA_VERSION,
    generated_at: new Date(now).toISOString(),
    ...base,
    checks: base.checks.map((c) => {
      const u = uptimes.get(c.check);
      return { ...c, uptime: { '24h': u?.['24h'].ratio ?? null, '7d': u?.['7d'].ratio ?? null, '30d': u?.['30d'].ratio ?? null } satisfies UptimeJson };
    }),
  };
}

export function historyJson(vm: string, check: string, sinceMs: number, untilMs: number, page: HistoryPage) {
  return {
    schema_version: API_SCHEMA_VERSION,
    vm,
    check,
    since: new Date(sinceMs).toISOString(),
    until: new Date(untilMs).toISOString(),
    results: page.results.map((r) => ({ ts: new Date(r.ts).toISOString(), status: r.status, state: r.state, duration_ms: r.duration_ms, message: r.message })),
    next_since: iso(page.next_since),
  };
}
