import { describe, expect, it } from 'vitest';
import { NAGIOS_STATE, nagiosText, perfLabel, renderNagios } from '../../src/outputs/nagios.js';
import { EXIT_CODES, STATUSES, type FleetReport } from '../../src/report.js';
import { emptyReport, NASTY, nastyReport, sampleReport } from './sample.js';

interface Perf {
  label: string;
  value: number;
  uom: string;
  warn: string;
  crit: string;
  min: string;
  max: string;
}

/**
 * Performance data as the Nagios Plugin Development Guidelines define it:
 * 'label'=value[UOM];[warn];[crit];[min];[max], space separated; a quote in a quoted label is doubled.
 * Strict: anything that does not match throws.
 */
function parsePerfdata(text: string): Perf[] {
  const out: Perf[] = [];
  const item = /'((?:[^']|'')+)'=(-?\d+(?:\.\d+)?)(%|s|ms|us|B|KB|MB|TB|c)?;([-\d.]*);([-\d.]*);([-\d.]*);?([-\d.]*)(?: |$)/y;
  while (item.lastIndex < text.length) {
    const at = item.lastIndex;
    const m = item.exec(text);
    if (!m) throw new Error(`bad perfdata at ${at}: ${text.slice(at, at + 60)}`);
    out.push({ label: m[1]!.replace(/''/g, "'"), value: Number(m[2]), uom: m[3] ?? '', warn: m[4]!, crit: m[5]!, min: m[6]!, max: m[7]! });
  }
  return out;
}

/** A plugin's output: first line `TEXT | PERF`, then long output lines, none with a `|`. */
function readPlugin(output: string): { state: string; summary: string; perf: Perf[]; long: string[] } {
  expect(output.endsWith('\n')).toBe(true);
  const [first, ...long] = output.slice(0, -1).split('\n');
  const m = /^CLONEBOX (OK|WARNING|CRITICAL|UNKNOWN) - ([^|]*?)(?: \| (.*))?$/.exec(first!);
  if (!m) throw new Error(`not a plugin status line: ${first}`);
  for (const l of long) expect(l).not.toContain('|');
  // eslint-disable-next-line no-control-regex
  expect(output).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
  return { state: m[1]!, summary: m[2]!, perf: m[3] ? parsePerfdata(m[3]) : [], long };
}

const cases: Array<[string, () => FleetReport]> = [
  ['the sample fleet', sampleReport],
  ['hostile names and messages', nastyReport],
  ['an empty run', emptyReport],
];

describe('nagios output', () => {
  it('maps statuses to plugin states that agree with the exit codes', () => {
    const PLUGIN_CODES = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };
    for (const s of STATUSES) expect(PLUGIN_CODES[NAGIOS_STATE[s]]).toBe(EXIT_CODES[s]);
  });

  it.each(cases)('is one status line, perfdata per the guidelines and long output (%s)', (_why, make) => {
    const report = make();
    expect(readPlugin(renderNagios(report)).state).toBe(NAGIOS_STATE[report.summary.overall_status]);
  });

  it('says what is wrong on the first line, one long-output line per problem', () => {
    const out = readPlugin(renderNagios(sampleReport()));
    expect(out.state).toBe('CRITICAL');
    expect(out.summary).toBe(
      '5 VMs: 2 healthy, 1 degraded (web-2: disk-root / is 85.3% full (warning at 80%)), ' +
        '1 unhealthy (web-3: api-health HTTP 503 (expected 200)), 1 unknown (off-1: the VM is shut off)',
    );
    expect(out.long).toEqual([
      '[DEGRADED] web-2 disk-root: / is 85.3% full (warning at 80%)',
      '[UNHEALTHY] web-3 api-health: HTTP 503 (expected 200)',
      expect.stringMatching(/^\[UNHEALTHY\] web-3 app-ready: grep -q "ready" .* retrying in 5s after \\backoff\\$/),
      '[UNKNOWN] off-1: the VM is shut off',
    ]);
  });

  it('perfdata: percent with thresholds for disk and memory, seconds for every check that ran', () => {
    const { perf } = readPlugin(renderNagios(sampleReport()));
    expect(perf).toContainEqual({ label: 'web-2_disk-root', value: 85.3, uom: '%', warn: '80', crit: '90', min: '0', max: '100' });
    expect(perf).toContainEqual({ label: 'web-1_memory', value: 42.5, uom: '%', warn: '80', crit: '90', min: '0', max: '100' });
    expect(perf).toContainEqual({ label: 'web-1_api-health_time', value: 0.038, uom: 's', warn: '', crit: '', min: '0', max: '' });
    expect(perf.filter((p) => p.label.startsWith('off-1'))).toEqual([]); // not run: no numbers
  });

  it('quotes labels with single quotes doubled and keeps | and line breaks out of the text', () => {
    const report = nastyReport();
    const out = readPlugin(renderNagios(report));
    const edge = report.reports.find((r) => r.vm_name.startsWith('edge'))!;
    const disk = out.perf.find((p) => p.label.endsWith('_disk-odd'))!;
    expect(disk.label).toBe(`${nagiosText(edge.vm_name).replace(/=/g, '_')}_disk-odd`);
    expect(disk.label).toContain("'single'");
    expect(perfLabel("it's")).toBe("'it''s'");
    expect(nagiosText(NASTY)).not.toMatch(/[|\r\n\t\u0000]/);
    expect(out.long).toContain('[UNKNOWN] bare-1: no health checks are configured for this VM');
    expect(out.long.some((l) => l.includes('big (non-critical): exited with 1'))).toBe(true);
  });

  it('names at most three VMs per status on the first line', () => {
    const base = sampleReport();
    const off = base.reports.find((r) => r.vm_name === 'off-1')!;
    const reports = [...base.reports, ...[2, 3, 4, 5].map((n) => ({ ...off, vm_name: `off-${n}` }))];
    const summary = { ...base.summary, vms: { ...base.summary.vms, total: reports.length, unknown: 5 } };
    const out = readPlugin(renderNagios({ summary, reports }));
    expect(out.summary).toContain('5 unknown (off-1: the VM is shut off; off-2: the VM is shut off; off-3: the VM is shut off; +2 more)');
  });

  it('an empty run is UNKNOWN and says so', () => {
    expect(renderNagios(emptyReport())).toBe('CLONEBOX UNKNOWN - no VMs were checked\n');
  });
});
