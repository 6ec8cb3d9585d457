/**
 * Nagios plugin output (Nagios Plugin Development Guidelines; Icinga and Naemon read the same):
 *   CLONEBOX CRITICAL - 5 VMs: 2 healthy, 1 unhealthy (web-3: api-health HTTP 503), ... | perfdata
 *   one long-output line per non-healthy check (or per VM that could not be evaluated)
 * The exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) is the CLI's job: EXIT_CODES in report.ts.
 */
import { printable } from '../util/printable.js';
import type { CheckResult, FleetReport, HealthStatus, VMHealthReport } from '../report.js';
import type { OutputFormat } from './types.js';

export const NAGIOS_STATE: Record<HealthStatus, 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN'> = {
  HEALTHY: 'OK',
  DEGRADED: 'WARNING',
  UNHEALTHY: 'CRITICAL',
  UNKNOWN: 'UNKNOWN',
};

/** VMs named in the status line per status before "+N more" (the line must stay short). */
const NAMED_PER_STATUS = 3;
/** Characters of a message on the status line; the long output has the whole one. */
const SHORT_MESSAGE = 60;

/**
 * One line of plugin text: no line breaks, and no `|`, which starts performance data.
 * Other control characters go too: they would reach the web UI and notification mails.
 */
export function nagiosText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return printable(text.replace(/\r\n|[\r\n\t]/g, ' ').replace(/\|/g, '/').replace(/[\u0000-\u001f\u007f]/g, ''));
}

function shorten(text: string, limit: number): string {
  const chars = [...text];
  return chars.length <= limit ? text : `${chars.slice(0, limit - 1).join('')}…`;
}

/** A perfdata label in single quotes; a quote inside is doubled, `=` (the separator) is replaced. */
export function perfLabel(label: string): string {
  return `'${nagiosText(label).replace(/=/g, '_').replace(/'/g, "''")}'`;
}

function num(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

const SEVERITY: Record<HealthStatus, number> = { HEALTHY: 0, UNKNOWN: 1, DEGRADED: 2, UNHEALTHY: 3 };

/** The check that best says why a VM is not healthy: the worst, critical before non-critical. */
function worstCheck(r: VMHealthReport): CheckResult | undefined {
  let worst: CheckResult | undefined;
  for (const c of r.checks) {
    if (c.status === 'HEALTHY') continue;
    const rank = SEVERITY[c.status] * 2 + (c.critical ? 1 : 0);
    const best = worst ? SEVERITY[worst.status] * 2 + (worst.critical ? 1 : 0) : -1;
    if (rank > best) worst = c;
  }
  return worst;
}

function why(r: VMHealthReport): string {
  const vm = nagiosText(printable(r.vm_name));
  if (r.reason) return `${vm}: ${shorten(nagiosText(r.reason), SHORT_MESSAGE)}`;
  const c = worstCheck(r);
  return c ? `${vm}: ${c.name} ${shorten(nagiosText(c.message), SHORT_MESSAGE)}` : vm;
}

function statusLine(report: FleetReport): string {
  const s = report.summary;
  const parts: string[] = [];
  for (const status of ['HEALTHY', 'DEGRADED', 'UNHEALTHY', 'UNKNOWN'] as const) {
    const vms = report.reports.filter((r) => r.overall_status === status);
    if (vms.length === 0) continue;
    let part = `${vms.length} ${status.toLowerCase()}`;
    if (status !== 'HEALTHY') {
      const named = vms.slice(0, NAMED_PER_STATUS).map(why);
      if (vms.length > NAMED_PER_STATUS) named.push(`+${vms.length - NAMED_PER_STATUS} more`);
      part += ` (${named.join('; ')})`;
    }
    parts.push(part);
  }
  const total = report.reports.length;
  const summary = total === 0 ? 'no VMs were checked' : `${total} VM${total === 1 ? '' : 's'}: ${parts.join(', ')}`;
  return `CLONEBOX ${NAGIOS_STATE[s.overall_status]} - ${summary}`;
}

/** `'web-1_disk-root'=71%;80;90;0;100` for disk and memory, `'web-1_api-health_time'=0.038s;;;0` for every check that ran. */
export function perfdata(report: FleetReport): string[] {
  const out: string[] = [];
  for (const r of report.reports) {
    for (const c of r.checks) {
      const percent = c.details.percent;
      if ((c.type === 'disk' || c.type === 'memory') && typeof percent === 'number' && Number.isFinite(percent)) {
        const warn = typeof c.details.warning_percent === 'number' ? num(c.details.warning_percent) : '';
        const crit = typeof c.details.critical_percent === 'number' ? num(c.details.critical_percent) : '';
        out.push(`${perfLabel(`${r.vm_name}_${c.name}`)}=${num(percent)}%;${warn};${crit};0;100`);
      }
      if (c.transport !== 'none') out.push(`${perfLabel(`${r.vm_name}_${c.name}_time`)}=${num(Math.max(0, c.duration_ms) / 1000)}s;;;0`);
    }
  }
  return out;
}

function longOutput(report: FleetReport): string[] {
  const lines: string[] = [];
  for (const r of report.reports) {
    if (r.reason) {
      lines.push(`[${r.overall_status}] ${nagiosText(printable(r.vm_name))}: ${nagiosText(r.reason)}`);
      continue;
    }
    for (const c of r.checks) {
      if (c.status === 'HEALTHY') continue;
      const note = c.critical ? '' : ' (non-critical)';
      lines.push(`[${c.status}] ${nagiosText(printable(r.vm_name))} ${nagiosText(c.name)}${note}: ${nagiosText(c.message)}`);
    }
  }
  return lines;
}

export function renderNagios(report: FleetReport): string {
  const perf = perfdata(report);
  const first = nagiosText(statusLine(report)) + (perf.length ? ` | ${perf.join(' ')}` : '');
  return `${[first, ...longOutput(report)].join('\n')}\n`;
}

export const nagiosOutput: OutputFormat = { name: 'nagios', render: (report) => renderNagios(report) };
