import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFleetReport, buildVmReport } from '../../src/engine/aggregate.js';
import { renderPrometheus } from '../../src/outputs/prometheus.js';
import { OutputFileError, writeOutputFile } from '../../src/outputs/write.js';
import type { CheckResult, FleetReport, HealthStatus } from '../../src/report.js';
import { parseExposition } from './exposition.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clonebox-write-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fleet big enough that its prometheus file is about 1 MB; `variant` changes its size and numbers. */
function bigReport(variant: number): FleetReport {
  const statuses: HealthStatus[] = ['HEALTHY', 'DEGRADED', 'UNHEALTHY', 'UNKNOWN'];
  const vms = Array.from({ length: 260 + 15 * variant }, (_, v) => {
    const checks: CheckResult[] = Array.from({ length: 8 }, (_, c) => ({
      name: `check-${c}`,
      type: c % 2 ? 'disk' : 'http',
      status: statuses[(v + c + variant) % 4]!,
      timestamp: '2026-11-27T21:00:00.000Z',
      duration_ms: 10 + v + c + variant,
      message: 'ok',
      critical: true,
      transport: 'ssh',
      details: c % 2 ? { percent: (v + c + variant) % 100, path: `/srv/data-${c}` } : {},
    }));
    return buildVmReport({ vm_name: `vm-${String(v).padStart(4, '0')}`, timestamp: '2026-11-27T21:00:00.000Z', duration_ms: 100 + v }, checks);
  });
  return buildFleetReport(vms, new Date('2026-11-27T21:00:00.000Z'), 1000 + variant);
}

const TRAILER = /\nclonebox_run_duration_seconds \d+(\.\d+)?\n$/;

interface ReaderResult {
  reads: number;
  torn: number;
  seen: Set<number>;
}

/** Read `path` in a loop until `done()` (at most 2,000 reads or 5 s), classifying each read. */
async function readerLoop(
  path: string,
  variants: string[],
  done: () => boolean,
  result: ReaderResult = { reads: 0, torn: 0, seen: new Set() },
): Promise<ReaderResult> {
  const deadline = Date.now() + 5000;
  while (!done() && result.reads < 2000 && Date.now() < deadline) {
    const text = await readFile(path, 'utf8');
    result.reads++;
    const which = variants.indexOf(text);
    if (which >= 0) result.seen.add(which);
    else result.torn++;
  }
  return result;
}

describe('writeOutputFile', () => {
  it('writes the content with mode 0644 and leaves no temp file behind', async () => {
    const path = join(dir, 'simple.prom');
    await writeOutputFile(path, 'a 1\n');
    expect(await readFile(path, 'utf8')).toBe('a 1\n');
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    await writeOutputFile(path, Buffer.from('a 2\n'));
    expect(await readFile(path, 'utf8')).toBe('a 2\n');
    expect((await readdir(dir)).filter((n) => n.includes('simple'))).toEqual(['simple.prom']);
  });

  it('replaces a file whose mode was narrower, so another user (node_exporter) can read it', async () => {
    const path = join(dir, 'narrow.prom');
    await writeFile(path, 'old\n', { mode: 0o600 });
    await writeOutputFile(path, 'new\n');
    expect((await stat(path)).mode & 0o777).toBe(0o644);
  });

  it.each([
    ['a missing directory', () => join(dir, 'no-such-dir', 'x.prom'), /^cannot write output file .*no-such-dir\/x\.prom: its directory does not exist\.$/],
    ['a directory in the way', () => join(dir, 'in-the-way'), /^cannot write output file .*in-the-way: it is a directory\.$/],
  ])('fails on %s with one sentence naming the path, and removes its temp file', async (_why, target, message) => {
    await mkdir(join(dir, 'in-the-way'), { recursive: true });
    const before = await readdir(dir);
    const error = await writeOutputFile(target(), 'x\n').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputFileError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).cause).toBeDefined();
    expect(await readdir(dir)).toEqual(before);
  });

  describe('a concurrent reader never sees a partial file', () => {
    const variants = [0, 1, 2, 3].map((v) => renderPrometheus(bigReport(v)));

    it('the test files are ~1 MB valid expositions of different sizes, ending in the trailer line', () => {
      for (const text of variants) {
        expect(text.length).toBeGreaterThan(900_000);
        expect(text).toMatch(TRAILER);
        parseExposition(text);
      }
      expect(new Set(variants.map((t) => t.length)).size).toBe(variants.length);
    });

    it('while writeOutputFile rewrites it 200 times, every read is one whole version', async () => {
      const path = join(dir, 'clonebox.prom');
      await writeOutputFile(path, variants[0]!);
      let writing = true;
      const reader = readerLoop(path, variants, () => !writing);
      for (let i = 1; i <= 200; i++) await writeOutputFile(path, variants[i % variants.length]!);
      writing = false;
      const { reads, torn, seen } = await reader;
      expect(torn).toBe(0);
      // Not vacuous: the reader really ran during the rewrites and saw several versions.
      expect(reads).toBeGreaterThan(20);
      expect(seen.size).toBeGreaterThan(1);
      expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    }, 60_000); // 200 fsynced 1 MB writes: ~5 s here, more on a slow disk

    it('the same reader does catch torn reads from a plain in-place rewrite (the test has teeth)', async () => {
      const path = join(dir, 'naive.prom');
      await writeFile(path, variants[0]!);
      let writing = true;
      const seen: ReaderResult = { reads: 0, torn: 0, seen: new Set() };
      const reader = readerLoop(path, variants, () => !writing, seen);
      for (let i = 1; i <= 50 && seen.torn === 0; i++) {
        // Truncate, then write in chunks, yielding between them: what `> file` in a shell does.
        const handle = await open(path, 'w');
        const bytes = Buffer.from(variants[i % variants.length]!);
        for (let at = 0; at < bytes.length; at += 65_536) {
          await handle.write(bytes, at, Math.min(65_536, bytes.length - at));
          await new Promise((r) => setImmediate(r));
        }
        await handle.close();
        if (i % 5 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      writing = false;
      await reader;
      expect(seen.torn).toBeGreaterThan(0);
    }, 60_000);
  });
});
