/**
 * Prometheus text exposition format 0.0.4, for node_exporter's textfile collector (write it with
 * `--output-file`, which replaces the file atomically). No sample timestamps: the collector refuses them.
 * Each family is written once with its HELP and TYPE and all of its samples together, as parsers require.
 * Statuses are one-hot gauges with every status present (as kube-state-metrics does), so
 * `clonebox_check_status{status="UNHEALTHY"} == 1` selects failing checks without absent-series traps.
 */
import { STATUSES, type CheckResult, type FleetReport, type StatusCounts } from '../report.js';
import type { OutputFormat } from './types.js';

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  samples: Array<{ labels: Labels; value: number }>;
}

/** Label values escape backslash, double quote and line feed (and nothing else), per the format. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Go's strconv float forms that Prometheus parses: +Inf, -Inf, NaN, else the shortest decimal. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function sampleLine(name: string, labels: Labels, value: number): string {
  const entries = Object.entries(labels);
  const body = entries.length ? `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}` : '';
  return `${name}${body} ${formatValue(value)}`;
}

const seconds = (ms: number) => Math.round(Math.max(0, ms)) / 1000;

function percentOf(check: CheckResult): number | undefined {
  const p = check.details.percent;
  return typeof p === 'number' && Number.isFinite(p) ? p : undefined;
}

function countSamples(counts: StatusCounts): Family['samples'] {
  return STATUSES.map((status) => ({ labels: { status }, value: counts[status.toLowerCase() as Lowercase<typeof status>] }));
}

export function prometheusFamilies(report: FleetReport): Family[] {
  const fam = (name: string, help: string): Family => ({ name, help, samples: [] });
  const checkStatus = fam('clonebox_check_status', 'Status of a check: 1 for its current status, 0 for the other three.');
  const checkUp = fam('clonebox_check_up', 'Whether a check is HEALTHY (1) or not (0).');
  const checkDuration = fam('clonebox_check_duration_seconds', 'How long the check took; absent for checks that were not run.');
  const diskUsed = fam('clonebox_disk_used_percent', 'Used share of a guest filesystem, as df computes it, from a disk check.');
  const memoryUsed = fam('clonebox_memory_used_percent', 'Used share of guest memory (MemTotal - MemAvailable), from a memory check.');
  const vmStatus = fam('clonebox_vm_status', 'Status of a VM: 1 for its current status, 0 for the other three.');
  const vmUp = fam('clonebox_vm_up', 'Whether a VM is HEALTHY (1) or not (0).');

  for (const r of report.reports) {
    // With several hypervisors: `hypervisor="hv1", vm="web-1"` (the domain), so queries can group by either.
    const hv = r.hypervisor;
    const vmLabels: Labels = hv ? { hypervisor: hv, vm: r.vm_name.startsWith(`${hv}/`) ? r.vm_name.slice(hv.length + 1) : r.vm_name } : { vm: r.vm_name };
    for (const s of STATUSES) vmStatus.samples.push({ labels: { ...vmLabels, status: s }, value: r.overall_status === s ? 1 : 0 });
    vmUp.samples.push({ labels: vmLabels, value: r.overall_status === 'HEALTHY' ? 1 : 0 });
    for (const c of r.checks) {
      const id = { ...vmLabels, check: c.name, type: c.type };
      for (const s of STATUSES) checkStatus.samples.push({ labels: { ...id, status: s }, value: c.status === s ? 1 : 0 });
      checkUp.samples.push({ labels: id, value: c.status === 'HEALTHY' ? 1 : 0 });
      if (c.transport !== 'none') checkDuration.samples.push({ labels: id, value: seconds(c.duration_ms) });
      const percent = percentOf(c);
      if (percent !== undefined && c.type === 'disk') {
        const path = c.details.path ?? c.details.mount;
        diskUsed.samples.push({ labels: { ...vmLabels, check: c.name, path: typeof path === 'string' ? path : '' }, value: percent });
      }
      if (percent !== undefined && c.type === 'memory') memoryUsed.samples.push({ labels: { ...vmLabels, check: c.name }, value: percent });
    }
  }

  const s = report.summary;
  const started = Date.parse(s.timestamp);
  return [
    checkStatus,
    checkUp,
    checkDuration,
    diskUsed,
    memoryUsed,
    vmStatus,
    vmUp,
    { name: 'clonebox_fleet_vms', help: 'VMs by status in the last run.', samples: countSamples(s.vms) },
    { name: 'clonebox_fleet_checks', help: 'Checks by status in the last run.', samples: countSamples(s.checks) },
    {
      name: 'clonebox_last_run_timestamp_seconds',
      help: 'When the last run finished, in seconds since the Unix epoch.',
      samples: Number.isNaN(started) ? [] : [{ labels: {}, value: (started + Math.max(0, s.duration_ms)) / 1000 }],
    },
    { name: 'clonebox_run_duration_seconds', help: 'How long the last run took.', samples: [{ labels: {}, value: seconds(s.duration_ms) }] },
  ];
}

export function renderPrometheus(report: FleetReport): string {
  const lines: string[] = [];
  for (const f of prometheusFamilies(report)) {
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} gauge`);
    for (const sample of f.samples) lines.push(sampleLine(f.name, sample.labels, sample.value));
  }
  return `${lines.join('\n')}\n`;
}

export const prometheusOutput: OutputFormat = { name: 'prometheus', render: (report) => renderPrometheus(report) };
