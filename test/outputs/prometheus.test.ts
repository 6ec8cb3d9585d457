import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { escapeLabelValue, formatValue, renderPrometheus } from '../../src/outputs/prometheus.js';
import { STATUSES, type FleetReport } from '../../src/report.js';
import { parseExposition, type Exposition, type Sample } from './exposition.js';
import { optionalCommand } from './optional.js';
import { emptyReport, nastyReport, sampleReport } from './sample.js';

const where = (e: Exposition, name: string, labels: Record<string, string>): Sample[] =>
  e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const value = (e: Exposition, name: string, labels: Record<string, string> = {}) => {
  const found = where(e, name, labels);
  expect(found, `${name}${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0]!.value;
};

const cases: Array<[string, () => FleetReport]> = [
  ['the sample fleet', sampleReport],
  ['hostile names and messages', nastyReport],
  ['an empty run', emptyReport],
];

describe('prometheus output', () => {
  it.each(cases)('is valid exposition format for %s, every family with one HELP and TYPE gauge', (_why, make) => {
    const e = parseExposition(renderPrometheus(make()));
    const names = new Set(e.samples.map((s) => s.name));
    for (const name of names) {
      expect(e.help.has(name), `HELP of ${name}`).toBe(true);
      expect(e.type.get(name), `TYPE of ${name}`).toBe('gauge');
    }
  });

  it.each(cases)('one-hot statuses: exactly one 1 per check and VM, and it is the reported status (%s)', (_why, make) => {
    const report = make();
    const e = parseExposition(renderPrometheus(report));
    for (const r of report.reports) {
      for (const s of STATUSES) expect(value(e, 'clonebox_vm_status', { vm: r.vm_name, status: s })).toBe(r.overall_status === s ? 1 : 0);
      expect(value(e, 'clonebox_vm_up', { vm: r.vm_name })).toBe(r.overall_status === 'HEALTHY' ? 1 : 0);
      for (const c of r.checks) {
        const id = { vm: r.vm_name, check: c.name, type: c.type };
        for (const s of STATUSES) expect(value(e, 'clonebox_check_status', { ...id, status: s })).toBe(c.status === s ? 1 : 0);
        expect(value(e, 'clonebox_check_up', id)).toBe(c.status === 'HEALTHY' ? 1 : 0);
        // A check that was not run has no duration rather than a misleading 0.
        expect(where(e, 'clonebox_check_duration_seconds', id)).toHaveLength(c.transport === 'none' ? 0 : 1);
      }
    }
  });

  it('carries disk and memory percentages, durations in seconds and the fleet summary', () => {
    const report = sampleReport();
    const e = parseExposition(renderPrometheus(report));
    expect(value(e, 'clonebox_disk_used_percent', { vm: 'web-2', check: 'disk-root', path: '/' })).toBe(85.3);
    expect(value(e, 'clonebox_disk_used_percent', { vm: 'db-1', check: 'disk-data', path: '/var/lib/postgresql' })).toBe(63.1);
    expect(value(e, 'clonebox_memory_used_percent', { vm: 'web-1', check: 'memory' })).toBe(42.5);
    // Shut-off VMs' disk checks have no numbers and so no series.
    expect(where(e, 'clonebox_disk_used_percent', { vm: 'off-1' })).toHaveLength(0);
    expect(value(e, 'clonebox_check_duration_seconds', { vm: 'web-1', check: 'api-health' })).toBe(0.038);
    for (const s of STATUSES) {
      const key = s.toLowerCase() as 'healthy';
      expect(value(e, 'clonebox_fleet_vms', { status: s })).toBe(report.summary.vms[key]);
      expect(value(e, 'clonebox_fleet_checks', { status: s })).toBe(report.summary.checks[key]);
    }
    expect(value(e, 'clonebox_last_run_timestamp_seconds')).toBe(Date.parse('2026-11-27T21:00:00.000Z') / 1000 + 1.108);
    expect(value(e, 'clonebox_run_duration_seconds')).toBe(1.108);
  });

  it('escapes label values so they read back exactly (backslash, quote, line feed; the rest as UTF-8)', () => {
    const report = nastyReport();
    const e = parseExposition(renderPrometheus(report));
    const edge = report.reports.find((r) => r.vm_name.startsWith('edge'))!;
    const chk = edge.checks[0]!;
    expect(where(e, 'clonebox_check_up', { vm: edge.vm_name, check: chk.name })).toHaveLength(1);
    expect(value(e, 'clonebox_disk_used_percent', { vm: edge.vm_name, path: edge.checks[1]!.details.path as string })).toBe(88);
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  it('writes the values Prometheus parses for the special floats', () => {
    expect([Infinity, -Infinity, NaN, 0.5, 1e21].map(formatValue)).toEqual(['+Inf', '-Inf', 'NaN', '0.5', '1e+21']);
  });

  it('a VM without checks still has its status series', () => {
    const e = parseExposition(renderPrometheus(nastyReport()));
    expect(value(e, 'clonebox_vm_status', { vm: 'bare-1', status: 'UNKNOWN' })).toBe(1);
  });

  describe('checked by promtool (the Prometheus project\'s own parser and linter)', () => {
    const promtool = optionalCommand('promtool', 'Debian package prometheus');

    it.skipIf(!promtool).each(cases)('promtool check metrics accepts %s without a lint warning', (_why, make) => {
      // promtool reads stdin; exit 0 with no output means: parsed, and no lint problems.
      const out = execFileSync(promtool!, ['check', 'metrics'], { input: renderPrometheus(make()), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
      expect(out.trim()).toBe('');
    });

    it.skipIf(!promtool)('promtool rejects a broken file (the check has teeth)', () => {
      const broken = `${renderPrometheus(sampleReport())}clonebox_vm_up{vm="x} 1\n`;
      expect(() => execFileSync(promtool!, ['check', 'metrics'], { input: broken, stdio: ['pipe', 'pipe', 'pipe'] })).toThrow();
    });
  });
});
