/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The status page in a real browser (Debian's Chromium through puppeteer-core) against the lab: a real
 * `health watch` records into a SQLite store, a separate `health serve` reads it, and the test looks at what a
 * person sees: rows and statuses matching the store, a lab fault turning a row UNHEALTHY without a reload, the
 * uptime bars, the badge, a `<script>`-named VM shown as text, no console errors, axe-core, a phone's width,
 * the page without JavaScript. Then `health watch --serve` in one process.
 *
 * Every wait is a bounded poll with a generous deadline (the machine is shared and small).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { overallStatus } from '../../src/engine/aggregate.js';
import { metaFromConfig } from '../../src/serve/queries.js';
import { openStore } from '../../src/store/index.js';
import { ensureLab, isRoot, labFault, REPO_ROOT, type Lab } from '../lab/lab.js';
import { axeViolations, browserUnavailable, launchBrowser, openPage } from '../support/browser.js';
import { labConfigYaml } from '../support/fleet-run.js';
import { killWatches, watch } from '../support/watch-proc.js';
import { check, report } from '../store/contract.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const INTERVAL_MS = 2000;
/** Process start-up, a slow round and the page's own poll on a loaded 2-core machine. */
const SLACK_MS = 25_000;
const EVIL_VM = '<script>alert("pwned")</script>';

const skip = !isRoot() ? 'the lab needs root' : browserUnavailable();
if (skip) console.warn(`clonebox: status page browser tests skipped: ${skip}`);
const lab = skip ? undefined : await ensureLab();

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A `health serve` child; resolves with its URL once it listens. */
function serveProc(args: string[]): { child: ChildProcess; url: Promise<string>; stderr: () => string } {
  const child = spawn('node', [BIN, 'health', 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderr += `${line}\n`;
      const m = /status page at (http:\/\/\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`health serve exited ${code}: ${stderr}`)));
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 240_000);
  guard.unref();
  child.on('exit', () => clearTimeout(guard));
  return { child, url, stderr: () => stderr };
}

describe.skipIf(Boolean(skip))('health serve in a real browser', { timeout: 120_000 }, () => {
  const L = lab as Lab;
  let dir: string;
  let configPath: string;
  let db: string;
  let browser: Browser;
  let serve: ReturnType<typeof serveProc>;
  let base: string;

  const checks = [
    { name: 'web', type: 'http', url: 'http://localhost:80/', expected_body: 'clonebox lab', timeout: '2s', failure_threshold: 1, critical: true, tags: ['frontend'] },
    { name: 'redis', type: 'tcp', host: 'localhost', port: 6379, timeout: '2s', failure_threshold: 1, tags: ['cache'] },
  ];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'clonebox-serve-e2e-'));
    configPath = path.join(dir, '.clonebox.yaml');
    db = path.join(dir, 'health.db');
    await writeFile(configPath, labConfigYaml(L, checks));
    const w = watch(['web-1', 'web-2', '--config', configPath, '--store', db, '--interval', `${INTERVAL_MS}ms`]);
    await w.round(1);
    // A hostile VM name, as any writer to a shared store could record it.
    const store = await openStore(db);
    try {
      await store.advanceRound({ reports: [report(EVIL_VM, [check('web', 'HEALTHY', Date.now(), { message: '<img src=x onerror=alert(1)>' })])] });
    } finally {
      await store.close();
    }
    serve = serveProc(['--store', db, '--config', configPath, '--poll', '500ms']);
    base = (await serve.url).replace(/\/$/, '');
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await labFault('web-2', 'clear').catch(() => undefined);
    await browser?.close().catch(() => undefined);
    serve?.child.kill('SIGTERM');
    killWatches();
  });

  it('shows the fleet as the store has it, stays live through a lab fault without reloading, and passes axe', async () => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${base}/`, { waitUntil: 'load' });
    await page.evaluate(() => ((window as unknown as { __sameDocument: number }).__sameDocument = 42));

    // Rows and statuses match the store (polled: the watch keeps writing while we compare).
    const config = parseConfig(labConfigYaml(L, checks), configPath);
    const meta = metaFromConfig(config);
    const store = await openStore(db);
    try {
      await until(
        'the page to show what the store holds',
        async () => {
          const rows = await store.currentChecks();
          // One line per VM: name, status, and its checks with their states, sorted, as the store says...
          const want = [...new Set(rows.map((r) => r.vm))].map((vm) => {
            const mine = rows.filter((r) => r.vm === vm);
            const status = overallStatus(mine.map((r) => ({ status: r.state, critical: meta(vm, r.check)?.critical ?? false })));
            return `${vm} ${status} ${mine.map((r) => `${r.check}=${r.state}`).sort().join(',')}`;
          });
          // ...and as the page shows it: the row's header, its status pill's text, its check links.
          const seen = await page.$$eval('tr[data-vm]', (trs) =>
            trs.map((tr) => {
              const status = tr.querySelector('td .pill')!.textContent!.replace(/^\W+/, '');
              const checks = [...tr.querySelectorAll('a.c')].map((a) => `${a.childNodes[0]!.textContent}=${a.querySelector('.sr')!.textContent!.trim()}`);
              return `${tr.querySelector('th')!.textContent} ${status} ${checks.sort().join(',')}`;
            }),
          );
          return want.length === 3 && JSON.stringify(seen.sort()) === JSON.stringify(want.sort()) ? true : undefined;
        },
        SLACK_MS,
      );
    } finally {
      await store.close();
    }
    expect(await page.$eval('tr[data-vm="web-2"]', (tr) => tr.getAttribute('data-status'))).toBe('HEALTHY');

    // The hostile name is text: the row shows it literally and nothing ran.
    const evilRow = await page.$$eval('tr[data-vm] th', (ths) => ths.map((th) => th.textContent));
    expect(evilRow).toContain(EVIL_VM);
    expect(await page.$$eval('script', (s) => s.length)).toBe(1);

    // No accessibility violation that axe calls serious or critical.
    const bad = (await axeViolations(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(bad, JSON.stringify(bad, null, 1)).toEqual([]);

    // A real fault: web-2's nginx stops; its critical check fails; the row turns UNHEALTHY by itself.
    const faultAt = Date.now();
    await labFault('web-2', 'stop', 'nginx');
    await page.waitForFunction(() => document.querySelector('tr[data-vm="web-2"]')?.getAttribute('data-status') === 'UNHEALTHY', {
      timeout: 2 * INTERVAL_MS + SLACK_MS,
      polling: 100,
    });
    const seenAfter = Date.now() - faultAt;
    console.log(`clonebox: web-2 shown UNHEALTHY ${seenAfter} ms after the fault (watch interval ${INTERVAL_MS} ms)`);
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: number }).__sameDocument)).toBe(42);
    expect(await page.$eval('tr[data-vm="web-2"] a.c.s-UNHEALTHY', (a) => a.getAttribute('title'))).toMatch(/^UNHEALTHY since .*: /);
    expect(await page.$eval('#live', (e) => e.textContent)).toMatch(/^live/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('a check page: 24 h / 7 d / 30 d uptime bars whose hover says when and why, a sparkline, transitions, a loaded badge', async () => {
    await until('web-2/web to be recorded UNHEALTHY', async () => {
      const store = await openStore(db);
      try {
        return (await store.currentChecks('web-2')).find((r) => r.check === 'web')?.state === 'UNHEALTHY';
      } finally {
        await store.close();
      }
    }, 2 * INTERVAL_MS + SLACK_MS);
    const { page, problems } = await openPage(browser);
    await page.goto(`${base}/vms/web-2/checks/web`, { waitUntil: 'load' });
    const windows = await page.$$eval('section[data-window]', (ss) =>
      ss.map((s) => ({
        key: s.getAttribute('data-window'),
        bars: [...s.querySelectorAll('.bars span')].map((b) => ({ status: b.getAttribute('data-status'), title: b.getAttribute('title') })),
      })),
    );
    expect(windows.map((w) => [w.key, w.bars.length])).toEqual([
      ['24h', 48],
      ['7d', 42],
      ['30d', 30],
    ]);
    for (const w of windows) {
      // Worst status wins: the bucket holding the outage is UNHEALTHY; hovering it names the time and the reason.
      const last = w.bars.at(-1)!;
      expect(last.status, w.key!).toBe('UNHEALTHY');
      expect(last.title, w.key!).toMatch(/^\d{4}-\d{2}-\d{2}.* UNHEALTHY — .+ \(\d+ results?: \d+ UNHEALTHY/);
      expect(w.bars.slice(0, -2).every((b) => b.status === 'none')).toBe(true);
    }
    const bar = await page.$('section[data-window="24h"] .bars span:last-child');
    await bar!.hover();
    expect(await page.$eval('svg.spark', (s) => s.getAttribute('aria-label'))).toMatch(/^Mean response time per 30 minutes: min [\d.]+ ms/);
    // Newest first: the outage, after the check's first HEALTHY.
    const transitions = await page.$$eval('table.transitions tr[data-to]', (trs) => trs.map((t) => t.getAttribute('data-to')));
    expect(transitions[0]).toBe('UNHEALTHY');
    expect(transitions).toContain('HEALTHY');
    expect(await page.$eval('img[src$=".svg"]', (img) => (img as HTMLImageElement).complete && (img as HTMLImageElement).naturalWidth > 0)).toBe(true);
    const bad = (await axeViolations(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(bad, JSON.stringify(bad, null, 1)).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('the badge is an SVG with status and uptime', async () => {
    const { page, problems } = await openPage(browser);
    const res = await page.goto(`${base}/badge/web-2/web.svg`);
    expect(res!.headers()['content-type']).toMatch(/^image\/svg\+xml/);
    expect(await page.$eval('svg', (s) => s.getAttribute('aria-label'))).toMatch(/^web-2\/web: UNHEALTHY \d+\.\d%$/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('on a phone: nothing wider than the screen; without JavaScript the statuses are all there', async () => {
    const { page, problems } = await openPage(browser, { width: 375, height: 740 });
    await page.goto(`${base}/`, { waitUntil: 'load' });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.goto(`${base}/vms/web-2/checks/web`, { waitUntil: 'load' });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.setJavaScriptEnabled(false);
    await page.goto(`${base}/`, { waitUntil: 'load' });
    const statuses = await page.$$eval('tr[data-vm]', (trs) => trs.map((tr) => `${tr.getAttribute('data-vm')}=${tr.querySelector('.pill')!.textContent!.replace(/^\W+/, '')}`));
    expect(statuses).toContain('web-2=UNHEALTHY');
    expect(statuses).toContain('web-1=HEALTHY');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('health watch --serve: the page and the watch in one process', async () => {
    const db2 = path.join(dir, 'one-process.db');
    const w = watch(['web-1', '--config', configPath, '--store', db2, '--interval', `${INTERVAL_MS}ms`, '--serve', '127.0.0.1:0']);
    const url = (await w.stderrMatch(/status page at (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!;
    await w.round(1);
    const fleet = await until(
      'the served fleet to show web-1',
      async () => {
        const body = (await (await fetch(`${url}api/v1/fleet`)).json()) as { vms: { vm: string; status: string }[] };
        return body.vms.length === 1 ? body : undefined;
      },
      SLACK_MS,
    );
    expect(fleet.vms[0]).toMatchObject({ vm: 'web-1', status: 'HEALTHY' });
    const { code } = await w.interrupt();
    expect(code).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });
});
