import { countStatuses, type CheckResult, type FleetReport, type HealthStatus, type VMHealthReport } from '../report.js';
import { redactDeep, redactText } from '../util/redact.js';

/**
 * A VM's overall status from its checks:
 *   a critical check UNHEALTHY → UNHEALTHY; any other UNHEALTHY, or any DEGRADED → DEGRADED;
 *   else any UNKNOWN → UNKNOWN (we could not look, so we do not claim HEALTHY); else HEALTHY.
 * No checks at all is UNKNOWN.
 */
export function overallStatus(checks: readonly Pick<CheckResult, 'status' | 'critical'>[]): HealthStatus {
  if (checks.length === 0) return 'UNKNOWN';
  if (checks.some((c) => c.status === 'UNHEALTHY' && c.critical)) return 'UNHEALTHY';
  if (checks.some((c) => c.status === 'UNHEALTHY' || c.status === 'DEGRADED')) return 'DEGRADED';
  if (checks.some((c) => c.status === 'UNKNOWN')) return 'UNKNOWN';
  return 'HEALTHY';
}

/** Severity for choosing a fleet's status: a known failure outranks not knowing (as check_multi does). */
const SEVERITY: Record<HealthStatus, number> = { HEALTHY: 0, UNKNOWN: 1, DEGRADED: 2, UNHEALTHY: 3 };

export function worstStatus(statuses: Iterable<HealthStatus>): HealthStatus {
  let worst: HealthStatus = 'HEALTHY';
  let any = false;
  for (const s of statuses) {
    any = true;
    if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  }
  return any ? worst : 'UNKNOWN';
}

/**
 * A VM's overall status from its checks and its reason. A reason with no check run (shut off, no address, libvirt
 * error) means the VM could not be evaluated. A reason beside checks that ran (the guest not reached, its host checks
 * judged) leaves the verdict to those checks: so every place that rebuilds a report (thresholds, the watch) keeps it
 * without having to be told.
 */
export function vmStatus(checks: readonly Pick<CheckResult, 'status' | 'critical' | 'transport'>[], reason: string | undefined): HealthStatus {
  return reason && !checks.some((c) => c.transport !== 'none') ? 'UNKNOWN' : overallStatus(checks);
}

/** Results this module has masked: reports are rebuilt from them (per check, per VM, thresholds, snapshots). */
const masked = new WeakSet<CheckResult>();

function redactedResult(c: CheckResult): CheckResult {
  if (masked.has(c)) return c;
  const message = redactText(c.message);
  const details = redactDeep(c.details);
  const out = message === c.message && details === c.details ? c : { ...c, message, details };
  masked.add(out);
  return out;
}

/**
 * A VM's report. Every report is built here, so this is where what a check captured (a server's
 * error page echoing the Authorization header, a command printing a password, a URL with a token)
 * has the config's secrets masked, before any output, store or alert sees it.
 */
export function buildVmReport(
  base: Pick<VMHealthReport, 'vm_name' | 'timestamp' | 'duration_ms'> & Partial<Pick<VMHealthReport, 'hypervisor' | 'address' | 'domain_state' | 'reason'>>,
  raw: CheckResult[],
): VMHealthReport {
  const checks = raw.map(redactedResult);
  if (base.reason) base = { ...base, reason: redactText(base.reason) };
  const counts = countStatuses(checks.map((c) => c.status));
  const overall = vmStatus(checks, base.reason);
  return {
    vm_name: base.vm_name,
    ...(base.hypervisor ? { hypervisor: base.hypervisor } : {}),
    overall_status: overall,
    ...(base.reason ? { reason: base.reason } : checks.length === 0 ? { reason: 'no health checks are configured for this VM' } : {}),
    ...(base.address ? { address: base.address } : {}),
    ...(base.domain_state ? { domain_state: base.domain_state } : {}),
    timestamp: base.timestamp,
    duration_ms: base.duration_ms,
    checks,
    counts,
    total_checks: counts.total,
    healthy_checks: counts.healthy,
    unhealthy_checks: counts.unhealthy,
    degraded_checks: counts.degraded,
  };
}

export function buildFleetReport(reports: VMHealthReport[], startedAt: Date, durationMs: number): FleetReport {
  return {
    summary: {
      schema_version: 1,
      overall_status: worstStatus(reports.map((r) => r.overall_status)),
      timestamp: startedAt.toISOString(),
      duration_ms: durationMs,
      vms: countStatuses(reports.map((r) => r.overall_status)),
      checks: countStatuses(reports.flatMap((r) => r.checks.map((c) => c.status))),
    },
    reports,
  };
}
