/**
 * TAP version 14 (https://testanything.org/tap-version-14-specification.html): one test point per check,
 * `ok` only for HEALTHY. DEGRADED, UNHEALTHY and UNKNOWN are `not ok` with a YAML diagnostic block,
 * never `# SKIP`: a gate must not pass on a check it could not evaluate.
 */
import { printable } from '../util/printable.js';
import { stringify } from 'yaml';
import type { CheckResult, FleetReport, VMHealthReport } from '../report.js';
import type { OutputFormat } from './types.js';

/**
 * A test point description: one line, with `\` and `#` escaped (an unescaped `#` would start a
 * directive). Other control characters are dropped; the diagnostics keep the exact text.
 */
export function tapDescription(text: string): string {
  return printable(
    text
      .replace(/\r\n|[\r\n\t]/g, ' ')
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f]/g, '')
      .replace(/\\/g, '\\\\')
      .replace(/#/g, '\\#'),
  );
}

/** A YAML block indented by two spaces between `---` and `...`, as TAP 14 diagnostics are. */
function diagnostics(fields: Record<string, unknown>): string[] {
  const yaml = stringify(fields, { lineWidth: 0, aliasDuplicateObjects: false, doubleQuotedAsJSON: true }).replace(/\n$/, '');
  return ['  ---', ...yaml.split('\n').map((l) => (l ? `  ${l}` : l)), '  ...'];
}

function checkPoint(n: number, r: VMHealthReport, c: CheckResult): string[] {
  const line = `${c.status === 'HEALTHY' ? 'ok' : 'not ok'} ${n} - ${tapDescription(`${r.vm_name} ${c.name}: ${c.message}`)}`;
  if (c.status === 'HEALTHY') return [line];
  return [
    line,
    ...diagnostics({
      vm: r.vm_name,
      check: c.name,
      type: c.type,
      status: c.status,
      message: c.message,
      critical: c.critical,
      transport: c.transport,
      duration_ms: c.duration_ms,
      timestamp: c.timestamp,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(Object.keys(c.details).length ? { details: c.details } : {}),
    }),
  ];
}

/** A VM with no checks (not evaluable, or none configured) is one failing point, so it is not lost. */
function vmPoint(n: number, r: VMHealthReport): string[] {
  const reason = r.reason ?? 'no checks were run';
  return [
    `not ok ${n} - ${tapDescription(`${r.vm_name}: ${reason}`)}`,
    ...diagnostics({
      vm: r.vm_name,
      status: r.overall_status,
      reason,
      ...(r.domain_state ? { domain_state: r.domain_state } : {}),
      timestamp: r.timestamp,
    }),
  ];
}

export function renderTap(report: FleetReport): string {
  const points: string[][] = [];
  for (const r of report.reports) {
    if (r.checks.length === 0) points.push(vmPoint(points.length + 1, r));
    for (const c of r.checks) points.push(checkPoint(points.length + 1, r, c));
  }
  if (points.length === 0) {
    points.push(['not ok 1 - no VMs were checked', ...diagnostics({ status: 'UNKNOWN', reason: 'no VMs were checked' })]);
  }
  const s = report.summary;
  const counts = `# ${s.vms.total} VMs: ${s.vms.healthy} healthy, ${s.vms.degraded} degraded, ${s.vms.unhealthy} unhealthy, ${s.vms.unknown} unknown; fleet ${s.overall_status}`;
  return `${['TAP version 14', `1..${points.length}`, ...points.flat(), counts].join('\n')}\n`;
}

export const tapOutput: OutputFormat = { name: 'tap', render: (report) => renderTap(report) };
