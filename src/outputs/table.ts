import { printable } from '../util/printable.js';
import { Chalk, type ChalkInstance } from 'chalk';
import { paintStatus } from './colour.js';
import type { CheckResult, FleetReport, HealthStatus, VMHealthReport } from '../report.js';
import type { OutputFormat, RenderOptions } from './types.js';

const SYMBOL: Record<HealthStatus, string> = { HEALTHY: '✔', DEGRADED: '▲', UNHEALTHY: '✖', UNKNOWN: '?' };


function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(1)}s` : `${Math.round(n)}ms`;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const width = (s: string) => s.replace(ANSI, '').length;

/** Text from a guest is untrusted: one line, no terminal escapes or other control characters. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return printable(text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\r\n\t]+/g, ' ').replace(/[\x00-\x1f\x7f-\x9f]/g, ''));
}
const pad = (s: string, w: number) => s + ' '.repeat(Math.max(0, w - width(s)));

function vmHeader(c: ChalkInstance, r: VMHealthReport): string {
  const where = r.address ? c.dim(` ${printable(r.address)}`) : '';
  const status = paintStatus(c, r.overall_status, `${SYMBOL[r.overall_status]} ${r.overall_status}`);
  const counts = r.counts.total && !r.reason ? c.dim(`  ${r.counts.healthy}/${r.counts.total} healthy  ${ms(r.duration_ms)}`) : '';
  return `${c.bold(printable(r.vm_name))}${where}  ${status}${counts}`;
}

function rows(c: ChalkInstance, checks: CheckResult[], verbose: boolean): string[] {
  const cells = checks.map((k) => [
    k.name + (k.critical ? '' : c.dim(' (non-critical)')),
    c.dim(k.type + (verbose ? `/${k.transport}` : '')),
    paintStatus(c, k.status, k.status),
    c.dim(k.transport === 'none' ? '-' : ms(k.duration_ms)),
    oneLine(k.message),
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...cells.map((r) => width(r[i]!))));
  return cells.map((r) => `  ${r.slice(0, 4).map((cell, i) => pad(cell, widths[i]!)).join('  ')}  ${r[4]}`);
}

export function renderTable(report: FleetReport, options: RenderOptions): string {
  const c = new Chalk({ level: options.color ? 1 : 0 });
  const out: string[] = [];
  for (const r of report.reports) {
    out.push(vmHeader(c, r));
    if (r.reason) out.push(`  ${paintStatus(c, 'UNKNOWN', 'cannot evaluate:')} ${oneLine(r.reason)}`);
    if (!r.reason || options.verbose) out.push(...rows(c, r.checks, options.verbose ?? false));
    out.push('');
  }
  const s = report.summary;
  const parts = (['HEALTHY', 'DEGRADED', 'UNHEALTHY', 'UNKNOWN'] as const)
    .filter((st) => s.vms[st.toLowerCase() as 'healthy'] > 0)
    .map((st) => paintStatus(c, st, `${s.vms[st.toLowerCase() as 'healthy']} ${st.toLowerCase()}`));
  out.push(
    `${c.bold('Fleet')} ${paintStatus(c, s.overall_status, s.overall_status)}: ${s.vms.total} VM${s.vms.total === 1 ? '' : 's'}` +
      (parts.length ? ` (${parts.join(', ')})` : '') +
      c.dim(`, ${s.checks.total} checks in ${ms(s.duration_ms)}`),
  );
  return `${out.join('\n')}\n`;
}

export const tableOutput: OutputFormat = { name: 'table', render: renderTable };
