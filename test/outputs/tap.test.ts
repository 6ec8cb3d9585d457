import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderTap, tapDescription } from '../../src/outputs/tap.js';
import type { FleetReport } from '../../src/report.js';
import { optionalImport } from './optional.js';
import { emptyReport, NASTY, nastyReport, sampleReport } from './sample.js';

interface Point {
  ok: boolean;
  id: number;
  description: string;
  diag?: Record<string, unknown>;
}

/**
 * A strict reader of what this formatter may emit under TAP 14: the version line, the plan, test
 * points numbered from 1 in order, each `not ok` followed by a YAML block indented two spaces, and
 * comments. Anything else throws.
 */
function readTap(text: string): { plan: number; points: Point[]; comments: string[] } {
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  expect(lines[0]).toBe('TAP version 14');
  const plan = /^1\.\.(\d+)$/.exec(lines[1] ?? '');
  if (!plan) throw new Error(`line 2 is not a plan: ${lines[1]}`);
  const points: Point[] = [];
  const comments: string[] = [];
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#')) {
      comments.push(line);
      continue;
    }
    const m = /^(not )?ok (\d+) - (.*)$/.exec(line);
    if (!m) throw new Error(`line ${i + 1} is neither a test point nor a comment: ${JSON.stringify(line)}`);
    const description = m[3]!;
    // An unescaped # would start a directive (SKIP/TODO) or be read as one.
    if (/(^|[^\\])(\\\\)*#/.test(description)) throw new Error(`line ${i + 1}: unescaped # in ${description}`);
    const point: Point = { ok: !m[1], id: Number(m[2]), description };
    if (lines[i + 1] === '  ---') {
      const end = lines.indexOf('  ...', i + 2);
      if (end < 0) throw new Error(`line ${i + 2}: YAML block without its end`);
      const block = lines.slice(i + 2, end);
      for (const l of block) if (l !== '' && !l.startsWith('  ')) throw new Error(`YAML line not indented: ${l}`);
      point.diag = parseYaml(block.map((l) => l.slice(2)).join('\n')) as Record<string, unknown>;
      i = end;
    }
    points.push(point);
  }
  points.forEach((p, index) => expect(p.id).toBe(index + 1));
  expect(points).toHaveLength(Number(plan[1]));
  return { plan: Number(plan[1]), points, comments };
}

const cases: Array<[string, () => FleetReport]> = [
  ['the sample fleet', sampleReport],
  ['hostile names and messages', nastyReport],
  ['an empty run', emptyReport],
];

describe('tap output', () => {
  it.each(cases)('is strict TAP 14 with a diagnostic block for every failing point (%s)', (_why, make) => {
    const { points } = readTap(renderTap(make()));
    for (const p of points) expect(p.diag === undefined).toBe(p.ok);
  });

  it('one point per check, ok only for HEALTHY; UNKNOWN is not ok and never # SKIP', () => {
    const report = sampleReport();
    const text = renderTap(report);
    const { points, comments } = readTap(text);
    const checks = report.reports.flatMap((r) => r.checks.map((c) => ({ vm: r.vm_name, c })));
    expect(points).toHaveLength(checks.length);
    checks.forEach(({ vm, c }, i) => {
      expect(points[i]!.ok).toBe(c.status === 'HEALTHY');
      expect(points[i]!.description.startsWith(`${vm} ${c.name}: `)).toBe(true);
      if (!points[i]!.ok) expect(points[i]!.diag).toMatchObject({ vm, check: c.name, status: c.status, message: c.message, critical: c.critical });
    });
    expect(text).not.toMatch(/# (SKIP|TODO)/i);
    expect(points.find((p) => p.diag?.status === 'UNKNOWN')?.diag).toMatchObject({ reason: 'the VM is shut off', transport: 'none' });
    expect(comments).toEqual(['# 5 VMs: 2 healthy, 1 degraded, 1 unhealthy, 1 unknown; fleet UNHEALTHY']);
  });

  it('keeps the exact message and details in the YAML, and a one-line escaped description', () => {
    const report = nastyReport();
    const { points } = readTap(renderTap(report));
    const edge = report.reports.find((r) => r.vm_name.startsWith('edge'))!;
    const point = points.find((p) => p.diag?.check === edge.checks[0]!.name)!;
    expect(point.diag!.message).toBe(NASTY);
    expect(point.diag!.details).toEqual({ stdout: NASTY, nested: { list: [1, NASTY, null] } });
    expect(point.description).toBe(tapDescription(`${edge.vm_name} ${edge.checks[0]!.name}: ${NASTY}`));
    expect(tapDescription('a # b \\ c\r\nd\te')).toBe('a \\# b \\\\ c d e');
  });

  it('a VM with no checks and a run with no VMs are failing points', () => {
    const bare = readTap(renderTap(nastyReport())).points.find((p) => p.description.startsWith('bare-1'))!;
    expect(bare).toMatchObject({ ok: false, diag: { vm: 'bare-1', status: 'UNKNOWN', reason: 'no health checks are configured for this VM' } });
    expect(readTap(renderTap(emptyReport())).points).toMatchObject([{ ok: false, description: 'no VMs were checked' }]);
  });

  describe('read by tap-parser (node-tap\'s TAP 14 parser)', async () => {
    interface Assert {
      ok: boolean;
      id: number;
      name: string;
      skip: boolean | string;
      todo: boolean | string;
      diag: Record<string, unknown> | null;
    }
    interface Result {
      ok: boolean;
      count: number;
      pass: number;
      fail: number;
      skip: number;
      plan: { start: number; end: number };
    }
    type ParserCtor = new (options: { strict: boolean }) => {
      on(event: 'assert', fn: (a: Assert) => void): void;
      on(event: 'complete', fn: (r: Result) => void): void;
      on(event: 'extra', fn: (line: string) => void): void;
      end(text: string): void;
    };
    const mod = await optionalImport<{ Parser: ParserCtor }>('tap-parser');

    function parseWithTapParser(text: string): Promise<{ result: Result; asserts: Assert[]; extra: string[] }> {
      return new Promise((resolve) => {
        const parser = new mod!.Parser({ strict: true });
        const asserts: Assert[] = [];
        const extra: string[] = [];
        parser.on('assert', (a) => asserts.push(a));
        parser.on('extra', (l) => extra.push(l));
        parser.on('complete', (result) => resolve({ result, asserts, extra }));
        parser.end(text);
      });
    }

    it.skipIf(!mod).each(cases)('parses %s in strict mode with nothing left over', async (_why, make) => {
      const report = make();
      const { result, asserts, extra } = await parseWithTapParser(renderTap(report));
      expect(extra).toEqual([]);
      expect(result.ok).toBe(false); // every case has something not HEALTHY
      expect(result.skip).toBe(0);
      expect(result.count).toBe(asserts.length);
      expect(result.plan).toMatchObject({ start: 1, end: asserts.length });
      const checks = report.reports.flatMap((r) => (r.checks.length ? r.checks.map((c) => c.status) : ['UNKNOWN']));
      expect(result.pass).toBe(checks.filter((s) => s === 'HEALTHY').length);
      for (const a of asserts) expect(a.skip || a.todo).toBeFalsy();
    });

    it.skipIf(!mod)('reads the diagnostics and the unescaped description back', async () => {
      const report = nastyReport();
      const { asserts } = await parseWithTapParser(renderTap(report));
      const edge = report.reports.find((r) => r.vm_name.startsWith('edge'))!;
      const a = asserts.find((x) => x.diag?.check === edge.checks[0]!.name)!;
      expect(a.diag!.message).toBe(NASTY);
      // tap-parser unescapes \# and \\ in names.
      expect(a.name).toContain('# hash');
      expect(a.name).toContain('back\\slash');
    });
  });
});
