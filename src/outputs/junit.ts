/**
 * JUnit XML for CI gates (GitLab, Jenkins, GitHub test reporters): one <testsuite> per VM, one
 * <testcase> per check. Anything but HEALTHY fails the gate: UNHEALTHY and DEGRADED are <failure>s,
 * UNKNOWN is an <error> (it was not evaluated, which a gate must not read as a pass).
 */
import type { CheckResult, FleetReport, HealthStatus, VMHealthReport } from '../report.js';
import type { OutputFormat } from './types.js';

/** Characters of a check's details kept in a failure body. */
export const JUNIT_DETAILS_CAP = 4096;

// XML 1.0 allows tab, LF, CR and everything from U+0020 up except surrogates, U+FFFE and U+FFFF.
// With the `u` flag a lone surrogate is one code point in D800–DFFF and so is matched too.
// eslint-disable-next-line no-control-regex
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Replace what XML 1.0 cannot carry (NUL, ESC, other C0 controls, lone surrogates) with U+FFFD. */
export function xmlSafe(text: string): string {
  return text.replace(NOT_XML_CHAR, '\uFFFD');
}

/** Text content; a CR is written as a reference, since parsers turn a raw CR LF into LF. */
export function escapeXmlText(text: string): string {
  return xmlSafe(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/** Attribute values also escape quotes and whitespace controls, which attribute normalisation would turn into spaces. */
export function escapeXmlAttr(text: string): string {
  return escapeXmlText(text).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;');
}

function attrs(values: Record<string, string | number | undefined>): string {
  return Object.entries(values)
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXmlAttr(String(v))}"`)
    .join('');
}

const seconds = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3);

/**
 * `2026-11-27T21:00:00` in UTC: the form of Ant's JUnit task and the common junit XSD
 * (xs:dateTime without zone or fraction), which the strictest consumers insist on.
 */
export function junitTimestamp(iso: string): string | undefined {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString().slice(0, 19);
}

function detailsBody(check: CheckResult): string {
  const lines = [`${check.status}: ${check.message}`];
  if (!check.critical) lines.push('(non-critical check)');
  if (Object.keys(check.details).length > 0) {
    const json = JSON.stringify(check.details, null, 2) ?? '';
    lines.push(json.length > JUNIT_DETAILS_CAP ? `${json.slice(0, JUNIT_DETAILS_CAP)}\n… [${json.length - JUNIT_DETAILS_CAP} more characters cut]` : json);
  }
  return lines.join('\n');
}

const FAILURE_STATUSES: ReadonlySet<HealthStatus> = new Set(['UNHEALTHY', 'DEGRADED']);

function testcase(vm: string, check: CheckResult): string {
  const open = `    <testcase${attrs({ classname: `clonebox.${vm}`, name: check.name, time: seconds(check.duration_ms) })}`;
  if (check.status === 'HEALTHY') return `${open}/>`;
  const tag = FAILURE_STATUSES.has(check.status) ? 'failure' : 'error';
  return [
    `${open}>`,
    `      <${tag}${attrs({ message: check.message, type: check.status })}>${escapeXmlText(detailsBody(check))}</${tag}>`,
    '    </testcase>',
  ].join('\n');
}

/** A VM that could not be evaluated and has no checks still shows up, as one errored case. */
function vmErrorCase(r: VMHealthReport): string {
  const reason = r.reason ?? 'no checks were run';
  return [
    `    <testcase${attrs({ classname: `clonebox.${r.vm_name}`, name: r.vm_name, time: '0.000' })}>`,
    `      <error${attrs({ message: reason, type: 'UNKNOWN' })}>${escapeXmlText(`UNKNOWN: ${reason}`)}</error>`,
    '    </testcase>',
  ].join('\n');
}

interface Tally {
  tests: number;
  failures: number;
  errors: number;
}

function tally(r: VMHealthReport): Tally {
  if (r.checks.length === 0) return { tests: 1, failures: 0, errors: 1 };
  return {
    tests: r.checks.length,
    failures: r.checks.filter((c) => FAILURE_STATUSES.has(c.status)).length,
    errors: r.checks.filter((c) => c.status === 'UNKNOWN').length,
  };
}

function properties(r: VMHealthReport): string[] {
  const props: Record<string, string | undefined> = {
    status: r.overall_status,
    address: r.address,
    domain_state: r.domain_state,
    reason: r.reason,
  };
  const lines = Object.entries(props)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([name, value]) => `      <property${attrs({ name, value })}/>`);
  return ['    <properties>', ...lines, '    </properties>'];
}

function testsuite(r: VMHealthReport): string {
  const t = tally(r);
  const open = `  <testsuite${attrs({
    name: r.vm_name,
    tests: t.tests,
    failures: t.failures,
    errors: t.errors,
    skipped: 0,
    time: seconds(r.duration_ms),
    timestamp: junitTimestamp(r.timestamp),
  })}>`;
  const cases = r.checks.length === 0 ? [vmErrorCase(r)] : r.checks.map((c) => testcase(r.vm_name, c));
  return [open, ...properties(r), ...cases, '  </testsuite>'].join('\n');
}

/** An empty run is not a pass: no VM was checked, so the gate gets one error saying so. */
function emptySuite(): string {
  return [
    `  <testsuite${attrs({ name: 'clonebox', tests: 1, failures: 0, errors: 1, skipped: 0, time: '0.000' })}>`,
    `    <testcase${attrs({ classname: 'clonebox', name: 'fleet', time: '0.000' })}>`,
    `      <error${attrs({ message: 'no VMs were checked', type: 'UNKNOWN' })}>UNKNOWN: no VMs were checked</error>`,
    '    </testcase>',
    '  </testsuite>',
  ].join('\n');
}

export function renderJunit(report: FleetReport): string {
  const totals = report.reports.map(tally).reduce((a, b) => ({ tests: a.tests + b.tests, failures: a.failures + b.failures, errors: a.errors + b.errors }), {
    tests: 0,
    failures: 0,
    errors: 0,
  });
  const empty = report.reports.length === 0;
  const head = `<testsuites${attrs({
    name: 'clonebox',
    tests: empty ? 1 : totals.tests,
    failures: totals.failures,
    errors: empty ? 1 : totals.errors,
    skipped: 0,
    time: seconds(report.summary.duration_ms),
    timestamp: junitTimestamp(report.summary.timestamp),
  })}>`;
  const suites = empty ? [emptySuite()] : report.reports.map(testsuite);
  return ['<?xml version="1.0" encoding="UTF-8"?>', head, ...suites, '</testsuites>', ''].join('\n');
}

export const junitOutput: OutputFormat = { name: 'junit', render: (report) => renderJunit(report) };
