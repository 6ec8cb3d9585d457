/** The fixed reports every formatter test renders (the docs' samples come from the same JSON file). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildFleetReport, buildVmReport } from '../../src/engine/aggregate.js';
import type { CheckResult, FleetReport } from '../../src/report.js';

const SAMPLE_FILE = fileURLToPath(new URL('./sample-report.json', import.meta.url));

/**
 * A realistic fleet: web-1 and db-1 HEALTHY, web-2 DEGRADED (disk over its warning), web-3 UNHEALTHY
 * (HTTP 503, and a command whose message has quotes, a line break, a tab, `<&>`, a backslash and
 * non-ASCII text, with ANSI escapes and NUL in its stdout), off-1 shut off (UNKNOWN, checks not run).
 */
export function sampleReport(): FleetReport {
  return JSON.parse(readFileSync(SAMPLE_FILE, 'utf8')) as FleetReport;
}

/** Text that breaks naive formatters: every escape-worthy character of XML, TAP, Nagios and Prometheus. */
export const NASTY = 'a "quoted" \'single\' <tag> & amp; back\\slash | pipe # hash ]]> \r\nline2\ttab \u0000nul \u001besc \u007fdel \ud800lone ünï😀 =eq';

function check(overrides: Partial<CheckResult> & Pick<CheckResult, 'name' | 'type' | 'status' | 'message'>): CheckResult {
  return {
    timestamp: '2026-11-27T21:00:00.100Z',
    duration_ms: 12.5,
    critical: true,
    transport: 'ssh',
    details: {},
    ...overrides,
  };
}

/**
 * The sample plus hostile names and messages: a VM whose name and check names need escaping, a
 * non-critical failure, a huge details object, and a VM that has no checks at all.
 */
export function nastyReport(): FleetReport {
  const base = sampleReport();
  const edge = buildVmReport({ vm_name: `edge ${NASTY}`, timestamp: '2026-11-27T21:00:00.050Z', duration_ms: 321, address: '10.213.9.9', domain_state: 'running' }, [
    check({ name: `chk ${NASTY}`, type: 'command', status: 'UNHEALTHY', message: NASTY, details: { stdout: NASTY, nested: { list: [1, NASTY, null] } } }),
    check({ name: 'disk-odd', type: 'disk', status: 'DEGRADED', message: `/data ${NASTY} is 88% full`, details: { percent: 88, path: `/data/${NASTY}`, warning_percent: 80, critical_percent: 90 } }),
    check({ name: 'big', type: 'command', status: 'UNHEALTHY', critical: false, message: 'exited with 1', details: { stdout: 'x'.repeat(20_000) } }),
    check({ name: 'flaky', type: 'tcp', status: 'UNKNOWN', message: 'SSH connection refused', transport: 'ssh-tunnel' }),
  ]);
  const empty = buildVmReport({ vm_name: 'bare-1', timestamp: '2026-11-27T21:00:00.060Z', duration_ms: 0, domain_state: 'running', address: '10.213.9.10' }, []);
  const reports = [...base.reports, edge, empty];
  return buildFleetReport(reports, new Date(base.summary.timestamp), 2000);
}

/** An empty run: no VMs matched. */
export function emptyReport(): FleetReport {
  return buildFleetReport([], new Date('2026-11-27T21:00:00.000Z'), 5);
}
