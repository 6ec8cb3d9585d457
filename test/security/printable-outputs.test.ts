/**
 * A domain name with a line break, an escape sequence or a bidi override is shown escaped in every
 * human output: it cannot forge a line of its own (a fake "HEALTHY" row, a fake Nagios status), repaint
 * the terminal or reverse text. Machine outputs (JSON) keep the exact name.
 */
import { describe, expect, it } from 'vitest';
import { eventLine } from '../../src/cli/watch/format.js';
import { buildFleetReport, buildVmReport } from '../../src/engine/aggregate.js';
import { renderHistory, summarizeHistory } from '../../src/outputs/history.js';
import { renderNagios } from '../../src/outputs/nagios.js';
import { renderTable } from '../../src/outputs/table.js';
import { renderTap } from '../../src/outputs/tap.js';
import type { CheckResult } from '../../src/report.js';

const EVIL = 'db\nweb-9  ✔ HEALTHY  1/1 healthy\x1b[2J\u202eexe.txt';
const check: CheckResult = {
  name: 'api',
  type: 'http',
  status: 'UNHEALTHY',
  timestamp: '2026-12-01T00:00:00.000Z',
  duration_ms: 3,
  message: 'HTTP 503',
  critical: true,
  transport: 'host',
  details: {},
};
const report = buildFleetReport([buildVmReport({ vm_name: EVIL, timestamp: check.timestamp, duration_ms: 3, address: '10.0.0.9' }, [check])], new Date(check.timestamp), 3);

function expectEscaped(text: string, where: string): void {
  expect(text, where).not.toMatch(/^web-9/m);
  expect(text, where).not.toContain('\x1b[2J');
  expect(text, where).not.toContain('\u202e');
  expect(text, where).toContain('\\u202e');
}

describe('hostile names in human outputs', () => {
  it.each([
    ['table', () => renderTable(report, { color: false })],
    ['nagios', () => renderNagios(report)],
    // TAP: the test point line; its YAML diagnostics keep the exact text, quoted as YAML data.
    ['tap', () => renderTap(report).split('\n').filter((l) => /^(not )?ok /.test(l)).join('\n')],
  ])('%s', (where, render) => expectEscaped(render(), where));

  it('history', () => {
    const summary = summarizeHistory({ vm: EVIL, sinceMs: 0, untilMs: 60_000, results: [], transitions: [] });
    expectEscaped(renderHistory(summary, { color: false, timeZone: 'UTC' }), 'history');
  });

  it('watch lines', () => {
    const line = eventLine({ type: 'transition', ts: check.timestamp, vm: EVIL, check: 'api', from: 'HEALTHY', to: 'UNHEALTHY', hard: true, message: 'HTTP 503' });
    expectEscaped(line, 'watch');
    expect(line.split('\n')).toHaveLength(1);
  });

  it('the report itself keeps the exact name (JSON, store)', () => {
    expect(report.reports[0]!.vm_name).toBe(EVIL);
  });
});
