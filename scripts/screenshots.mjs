#!/usr/bin/env node
/**
 * Screenshots of the status page for the README (docs/screenshot-fleet.png, docs/screenshot-check.png,
 * docs/screenshot-phone.png): a store with 30 days of made-up but plausible history, `health serve` on it, and
 * Debian's Chromium through puppeteer-core (no browser download). Deterministic data; the clock is now.
 *
 *   npm run build && node scripts/screenshots.mjs [--out docs]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { startServer } from '../dist/serve/server.js';
import { openStore } from '../dist/store/index.js';

const out = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : 'docs';
const MIN = 60_000;
const DAY = 1440 * MIN;
const now = Date.now();

const FLEET = {
  'web-1': ['api-health', 'web-root', 'redis', 'disk-root', 'memory'],
  'web-2': ['api-health', 'web-root', 'redis', 'disk-root', 'memory'],
  'web-3': ['api-health', 'web-root', 'redis', 'disk-root', 'memory'],
  'db-1': ['postgres', 'pg-ready', 'disk-root', 'memory', 'backup-age'],
  'cache-1': ['redis', 'redis-ping', 'memory'],
  'queue-1': ['rabbitmq', 'disk-root', 'memory'],
  'paused-1': ['api-health', 'disk-root'],
};
/** [vm, check, from (minutes ago), to (minutes ago, 0 = still), status, message] */
const EPISODES = [
  ['web-3', 'api-health', 95, 0, 'UNHEALTHY', 'HTTP 503 (expected 200): {"status":"degraded"}'],
  ['web-3', 'api-health', 9 * 1440, 9 * 1440 - 40, 'UNHEALTHY', 'connect ECONNREFUSED 127.0.0.1:8080'],
  ['web-1', 'api-health', 3 * 1440, 3 * 1440 - 25, 'UNHEALTHY', 'HTTP 502 (expected 200)'],
  ['web-1', 'api-health', 21 * 1440, 21 * 1440 - 120, 'DEGRADED', 'HTTP 200 but slow: 1240ms over the 1s warning'],
  ['db-1', 'disk-root', 2 * 1440, 0, 'DEGRADED', '/ is 86% full (warning at 85%)'],
  ['db-1', 'backup-age', 14 * 1440, 14 * 1440 - 300, 'UNHEALTHY', 'last backup 31h ago (limit 26h)'],
  ['paused-1', 'api-health', 40, 0, 'UNKNOWN', 'the VM is paused'],
  ['paused-1', 'disk-root', 40, 0, 'UNKNOWN', 'the VM is paused'],
  ['cache-1', 'redis', 5 * 1440, 5 * 1440 - 10, 'UNKNOWN', 'guest not reached within 2s: no SSH banner'],
];
const OK = { 'api-health': 'HTTP 200, JSON as expected', 'web-root': 'HTTP 200, body as expected', redis: 'TCP connect in 1ms', 'redis-ping': 'PONG', 'disk-root': '/ is 41% full', memory: '38% used', postgres: 'TCP connect in 1ms', 'pg-ready': 'exit 0', 'backup-age': 'last backup 3h ago', rabbitmq: 'TCP connect in 2ms' };

function statusAt(vm, check, minutesAgo) {
  for (const [v, c, from, to, status, message] of EPISODES) if (v === vm && c === check && minutesAgo <= from && minutesAgo >= to) return [status, message];
  return ['HEALTHY', OK[check]];
}

const dir = mkdtempSync(join(tmpdir(), 'clonebox-shots-'));
const store = await openStore(join(dir, 'health.db'), { retentionMs: 0 });
let browser;
let server;
try {
  for (const [vm, checks] of Object.entries(FLEET)) {
    const results = [];
    const transitions = [];
    const states = new Map([[vm, new Map()]]);
    checks.forEach((check, ci) => {
      let last = null;
      let since = now - 30 * DAY;
      for (let m = 30 * 1440; m >= 0; m -= 5) {
        const ts = now - m * MIN - ci * 700;
        const [status, message] = statusAt(vm, check, m);
        const wobble = ((m * 7919 + ci * 104729) % 23) + (check === 'api-health' ? 30 : 2);
        const duration_ms = status === 'UNKNOWN' ? 2000 : status === 'DEGRADED' && check === 'api-health' ? 1240 : wobble + (m < 200 ? 15 : 0);
        results.push({ ts, vm, check, type: 'http', status, state: status, duration_ms, message, details: {} });
        if (status !== last) {
          transitions.push({ ts, vm, check, from: last, to: status, hard: true, message });
          since = ts;
        }
        last = status;
        states.get(vm).set(check, { state: status, hard: true, consecutive_failures: status === 'HEALTHY' ? 0 : 3, consecutive_successes: status === 'HEALTHY' ? 5 : 0, last_result_status: status, last_result_at: new Date(ts).toISOString(), last_change: new Date(since).toISOString(), last_message: message });
      }
    });
    await store.withStateLock([vm], async (tx) => {
      await tx.insertResults(results);
      await tx.insertTransitions(transitions);
      await tx.saveStates(states, now);
    });
  }
  server = await startServer({ host: '127.0.0.1', port: 0, store, pollMs: 60_000 });
  browser = await puppeteer.launch({ executablePath: process.env.CLONEBOX_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--font-render-hinting=none'] });
  const shoot = async (path, file, viewport, fullPage = false) => {
    const page = await browser.newPage();
    await page.setViewport(viewport);
    await page.goto(server.url.replace(/\/$/, '') + path, { waitUntil: 'load' });
    await page.evaluate(() => document.fonts.ready);
    await page.screenshot({ path: join(out, file), fullPage });
    await page.close();
    console.log(`wrote ${join(out, file)}`);
  };
  await shoot('/', 'screenshot-fleet.png', { width: 1100, height: 760, deviceScaleFactor: 1 });
  await shoot('/vms/web-3/checks/api-health', 'screenshot-check.png', { width: 1100, height: 900, deviceScaleFactor: 1 });
  await shoot('/', 'screenshot-phone.png', { width: 390, height: 844, deviceScaleFactor: 1 });
} finally {
  await browser?.close();
  await server?.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
