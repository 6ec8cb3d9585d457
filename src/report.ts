/**
 * The report shapes every output is rendered from. `--json` prints these, so field names
 * are part of the public contract (snake_case, as in the seed design): change them only with a
 * version bump of `schema_version`.
 */

export const STATUSES = ['HEALTHY', 'DEGRADED', 'UNHEALTHY', 'UNKNOWN'] as const;
export type HealthStatus = (typeof STATUSES)[number];

/** Which way a probe reached its target; shown so an operator knows what was really tested. */
export type ProbeTransport = 'ssh' | 'ssh-tunnel' | 'host' | 'agent' | 'none';

export interface CheckResult {
  name: string;
  type: string;
  status: HealthStatus;
  /** ISO-8601 time the probe started. */
  timestamp: string;
  duration_ms: number;
  /** Why: one sentence a person can act on. */
  message: string;
  critical: boolean;
  transport: ProbeTransport;
  details: Record<string, unknown>;
}

export interface StatusCounts {
  total: number;
  healthy: number;
  degraded: number;
  unhealthy: number;
  unknown: number;
}

export interface VMHealthReport {
  /** `web-1`, or `hv1/web-1` with several hypervisors. */
  vm_name: string;
  /** With `hypervisors:` in the config: whose VM this is. */
  hypervisor?: string;
  overall_status: HealthStatus;
  /** Set when the VM as a whole could not be evaluated (shut off, no address, libvirt error). */
  reason?: string;
  address?: string;
  domain_state?: string;
  timestamp: string;
  duration_ms: number;
  checks: CheckResult[];
  counts: StatusCounts;
  /** The seed's own counters (VMHealthReport.total_checks …), kept beside `counts`. */
  total_checks: number;
  healthy_checks: number;
  unhealthy_checks: number;
  degraded_checks: number;
}

export interface FleetSummary {
  schema_version: 1;
  overall_status: HealthStatus;
  timestamp: string;
  duration_ms: number;
  vms: StatusCounts;
  checks: StatusCounts;
}

export interface FleetReport {
  summary: FleetSummary;
  reports: VMHealthReport[];
}

export function emptyCounts(): StatusCounts {
  return { total: 0, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 };
}

export function countStatuses(statuses: Iterable<HealthStatus>): StatusCounts {
  const counts = emptyCounts();
  for (const s of statuses) {
    counts.total++;
    counts[s.toLowerCase() as Lowercase<HealthStatus>]++;
  }
  return counts;
}

/**
 * Nagios-style exit codes: 0 healthy, 1 degraded, 2 unhealthy, 3 unknown.
 * A fleet exits with its worst VM, where worse means: UNHEALTHY > DEGRADED > UNKNOWN > HEALTHY
 * for choosing the status, but the exit code of UNKNOWN stays 3 (documented in docs/exit-codes.md).
 */
export const EXIT_CODES: Record<HealthStatus, number> = {
  HEALTHY: 0,
  DEGRADED: 1,
  UNHEALTHY: 2,
  UNKNOWN: 3,
};
