/**
 * `--wait`: the CI gate right after provisioning. Re-run rounds (reusing SSH connections) until the
 * gate passes or the time is up. VMs still booting (no address, SSH not up yet) are "not yet", not
 * failures: only the state at the deadline counts.
 */
import { formatDuration } from '../config/duration.js';
import type { FleetReport, HealthStatus } from '../report.js';

export type FailOn = 'any' | 'degraded' | 'unhealthy';

/**
 * Does this report pass the gate? `any` (default): every VM HEALTHY. `degraded`: fail on DEGRADED or
 * worse. `unhealthy`: DEGRADED passes. UNKNOWN never passes: a gate must not open on "could not look".
 */
export function gatePasses(report: FleetReport, failOn: FailOn): boolean {
  const ok: ReadonlySet<HealthStatus> = failOn === 'unhealthy' ? new Set(['HEALTHY', 'DEGRADED']) : new Set(['HEALTHY']);
  return report.reports.length > 0 && report.reports.every((r) => ok.has(r.overall_status));
}

/** What is still failing, in one line: `web-2 (api-health: HTTP 503), db-1 (no address yet)`. */
export function pendingSummary(report: FleetReport, failOn: FailOn, max = 4): string {
  const pending = report.reports.filter((r) => !gatePasses({ ...report, reports: [r] }, failOn));
  const parts = pending.slice(0, max).map((r) => {
    if (r.reason) return `${r.vm_name} (${r.reason})`;
    const bad = r.checks.filter((c) => c.status !== 'HEALTHY');
    return `${r.vm_name} (${bad.slice(0, 2).map((c) => `${c.name}: ${c.message}`).join('; ')}${bad.length > 2 ? `; +${bad.length - 2} more` : ''})`;
  });
  return parts.join(', ') + (pending.length > max ? `, and ${pending.length - max} more` : '');
}

export interface WaitOptions {
  waitMs: number;
  intervalMs: number;
  failOn: FailOn;
  /** One round; aborting the signal cancels its in-flight probes. */
  round: (signal: AbortSignal) => Promise<FleetReport>;
  progress: (line: string, final: boolean) => void;
  signal: AbortSignal;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Rounds until the gate passes or the deadline; returns the last complete round (or the cut one). */
export async function waitUntilHealthy(opts: WaitOptions): Promise<{ report: FleetReport; passed: boolean; rounds: number }> {
  const t0 = performance.now();
  const deadline = AbortSignal.any([opts.signal, AbortSignal.timeout(opts.waitMs)]);
  let last: FleetReport | undefined;
  let rounds = 0;
  for (;;) {
    const report = await opts.round(deadline);
    const cut = deadline.aborted;
    // A round cut short by the deadline is only used when there is nothing better.
    if (!cut || !last) last = report;
    rounds++;
    const passed = !cut && gatePasses(report, opts.failOn);
    const left = opts.waitMs - (performance.now() - t0);
    if (passed || deadline.aborted || left <= 0) {
      opts.progress(
        passed
          ? `gate passed after ${formatDuration(performance.now() - t0)} (${rounds} round${rounds === 1 ? '' : 's'})`
          : `gave up after ${formatDuration(performance.now() - t0)}: still not ready: ${pendingSummary(last, opts.failOn)}`,
        true,
      );
      return { report: last, passed: passed || gatePasses(last, opts.failOn), rounds };
    }
    const ready = report.reports.filter((r) => gatePasses({ ...report, reports: [r] }, opts.failOn)).length;
    opts.progress(`${ready}/${report.reports.length} VMs ready, ${formatDuration(left)} left; waiting for ${pendingSummary(report, opts.failOn)}`, false);
    await sleep(Math.min(opts.intervalMs, left), deadline);
    if (deadline.aborted && opts.signal.aborted) return { report: last, passed: false, rounds };
  }
}
