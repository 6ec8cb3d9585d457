import { execFileSync } from 'node:child_process';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { escapeXmlAttr, JUNIT_DETAILS_CAP, junitTimestamp, renderJunit, xmlSafe } from '../../src/outputs/junit.js';
import type { FleetReport } from '../../src/report.js';
import { optionalCommand } from './optional.js';
import { emptyReport, NASTY, nastyReport, sampleReport } from './sample.js';

type Node = Record<string, unknown>;
const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

function parse(xml: string): { suites: Node; suite: Node[] } {
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    htmlEntities: true,
  }).parse(xml) as Node;
  const suites = doc.testsuites as Node;
  return { suites, suite: list(suites.testsuite as Node | Node[]) };
}

const cases: Array<[string, () => FleetReport]> = [
  ['the sample fleet', sampleReport],
  ['hostile names and messages', nastyReport],
  ['an empty run', emptyReport],
];

// XML 1.0 §2.2 Char, and no raw markup characters inside attribute values.
// eslint-disable-next-line no-control-regex
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

describe('junit output', () => {
  it.each(cases)('is well-formed XML 1.0 with only legal characters (%s)', (_why, make) => {
    const xml = renderJunit(make());
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    expect(NOT_XML_CHAR.test(xml)).toBe(false);
    for (const [, value] of xml.matchAll(/="([^"]*)"/g)) expect(value).not.toMatch(/[<\n\t]/);
    parse(xml);
  });

  it('has one suite per VM and one case per check, with counts that add up', () => {
    const report = sampleReport();
    const { suites, suite } = parse(renderJunit(report));
    expect(suite.map((s) => s.name)).toEqual(report.reports.map((r) => r.vm_name));
    for (const [i, s] of suite.entries()) {
      const r = report.reports[i]!;
      const cases = list(s.testcase as Node | Node[]);
      expect(cases.map((c) => c.name)).toEqual(r.checks.map((c) => c.name));
      expect(cases.every((c) => c.classname === `clonebox.${r.vm_name}`)).toBe(true);
      expect(Number(s.tests)).toBe(cases.length);
      expect(Number(s.failures)).toBe(cases.filter((c) => c.failure !== undefined).length);
      expect(Number(s.errors)).toBe(cases.filter((c) => c.error !== undefined).length);
      expect(s.skipped).toBe('0');
      expect(s.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    }
    expect(Number(suites.tests)).toBe(report.summary.checks.total);
    expect(Number(suites.failures)).toBe(report.summary.checks.unhealthy + report.summary.checks.degraded);
    expect(Number(suites.errors)).toBe(report.summary.checks.unknown);
    expect(suites.time).toBe('1.108');
  });

  it('maps statuses: HEALTHY passes, DEGRADED and UNHEALTHY fail, UNKNOWN errors (never skipped)', () => {
    const { suite } = parse(renderJunit(sampleReport()));
    const byName = (vm: string, check: string) => list(suite.find((s) => s.name === vm)!.testcase as Node[]).find((c) => c.name === check)!;
    const healthy = byName('web-1', 'api-health');
    expect([healthy.failure, healthy.error, healthy.skipped]).toEqual([undefined, undefined, undefined]);
    expect(healthy.time).toBe('0.038');
    expect(byName('web-2', 'disk-root').failure).toMatchObject({ type: 'DEGRADED', message: '/ is 85.3% full (warning at 80%)' });
    const failed = byName('web-3', 'api-health').failure as Node;
    expect(failed).toMatchObject({ type: 'UNHEALTHY', message: 'HTTP 503 (expected 200)' });
    expect(failed['#text']).toContain('"status_code": 503');
    const off = byName('off-1', 'api-health');
    expect(off.error).toMatchObject({ type: 'UNKNOWN', message: 'not run: the VM is shut off' });
    expect(off.skipped).toBeUndefined();
    const props = list((suite.find((s) => s.name === 'off-1')!.properties as Node).property as Node[]);
    expect(props).toContainEqual({ name: 'reason', value: 'the VM is shut off' });
  });

  it('round-trips quotes, line breaks, tabs, <&> and unicode in attributes and text', () => {
    const report = sampleReport();
    const message = report.reports[2]!.checks[1]!.message;
    const { suite } = parse(renderJunit(report));
    const failure = list(suite[2]!.testcase as Node[])[1]!.failure as Node;
    expect(failure.message).toBe(message);
    expect(failure['#text']).toContain(message);
  });

  it('replaces what XML cannot carry with U+FFFD and keeps everything else exactly', () => {
    const { suite } = parse(renderJunit(nastyReport()));
    const edge = suite.find((s) => String(s.name).startsWith('edge'))!;
    const expected = xmlSafe(`edge ${NASTY}`);
    expect(edge.name).toBe(expected);
    expect(expected).not.toMatch(/[\u0000\u001b]/);
    expect(expected).toContain('\uFFFDnul \uFFFDesc \u007fdel \uFFFDlone ünï😀');
    const first = list(edge.testcase as Node[])[0]!;
    expect((first.failure as Node).message).toBe(xmlSafe(NASTY));
    expect(escapeXmlAttr('a"b\'c<d>&\n\t\r')).toBe('a&quot;b&apos;c&lt;d&gt;&amp;&#10;&#9;&#13;');
  });

  it('caps the details in a failure body', () => {
    const { suite } = parse(renderJunit(nastyReport()));
    const edge = suite.find((s) => String(s.name).startsWith('edge'))!;
    const big = list(edge.testcase as Node[]).find((c) => c.name === 'big')!;
    const body = (big.failure as Node)['#text'] as string;
    expect(body.length).toBeLessThan(JUNIT_DETAILS_CAP + 200);
    expect(body).toMatch(/more characters cut\]$/);
    expect(body).toContain('(non-critical check)');
  });

  it('a VM with no checks, and a run with no VMs, are errors rather than empty passing suites', () => {
    const { suite } = parse(renderJunit(nastyReport()));
    const bare = suite.find((s) => s.name === 'bare-1')!;
    expect(bare).toMatchObject({ tests: '1', errors: '1' });
    expect((bare.testcase as Node).error).toMatchObject({ type: 'UNKNOWN', message: 'no health checks are configured for this VM' });
    const empty = parse(renderJunit(emptyReport()));
    expect(empty.suites).toMatchObject({ tests: '1', errors: '1' });
  });

  it('timestamps are UTC without zone or fraction, as the common JUnit XSD wants', () => {
    expect(junitTimestamp('2026-11-27T21:00:00.123Z')).toBe('2026-11-27T21:00:00');
    expect(junitTimestamp('2026-11-27T23:30:00+02:00')).toBe('2026-11-27T21:30:00');
    expect(junitTimestamp('not a date')).toBeUndefined();
  });

  describe('checked by xmllint (libxml2, a strict XML 1.0 parser)', () => {
    const xmllint = optionalCommand('xmllint', 'Debian package libxml2-utils');
    it.skipIf(!xmllint).each(cases)('xmllint --noout accepts %s', (_why, make) => {
      execFileSync(xmllint!, ['--noout', '-'], { input: renderJunit(make()), stdio: ['pipe', 'pipe', 'pipe'] });
    });
    it.skipIf(!xmllint)('xmllint rejects a NUL character (the check has teeth)', () => {
      expect(() => execFileSync(xmllint!, ['--noout', '-'], { input: '<a>\u0000</a>', stdio: ['pipe', 'pipe', 'pipe'] })).toThrow();
    });
  });
});
