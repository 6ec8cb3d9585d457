#!/usr/bin/env node --expose-gc
/**
 * Memory over many live pages: N event-stream clients on `health serve`, a writer recording a round every
 * --every, each client fetching its page fragment on every change (as the page's script does). Samples heap and
 * RSS (after a GC) along the way: both must stay flat.
 *
 *   npm run build && node --expose-gc bench/serve-sse.mjs [--clients 50] [--seconds 120] [--every 200ms]
 *
 * Bounded: stops after --seconds; all traffic is to 127.0.0.1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../dist/config/duration.js';
import { startServer } from '../dist/serve/server.js';
import { openStore } from '../dist/store/index.js';

const argv = process.argv.slice(2);
const opt = (name, fallback) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : fallback);
const CLIENTS = Number(opt('clients', '50'));
const SECONDS = Number(opt('seconds', '120'));
const EVERY = parseDuration(opt('every', '200ms'));

const dir = mkdtempSync(join(tmpdir(), 'clonebox-sse-'));
const store = await openStore(join(dir, 'health.db'), { retentionMs: 0 });
const server = await startServer({ host: '127.0.0.1', port: 0, store, pollMs: 250, rateLimitPerMinute: 1_000_000, maxLiveClients: CLIENTS + 10 });
const base = server.url.replace(/\/$/, '');
const checks = ['api', 'web', 'redis', 'disk'];
let round = 0;
const record = () =>
  store.advanceRound({
    reports: ['web-1', 'web-2', 'db-1'].map((vm) => ({
      vm_name: vm,
      overall_status: 'HEALTHY',
      timestamp: new Date().toISOString(),
      duration_ms: 5,
      counts: { total: 4, healthy: 4, degraded: 0, unhealthy: 0, unknown: 0 },
      total_checks: 4,
      healthy_checks: 4,
      unhealthy_checks: 0,
      degraded_checks: 0,
      checks: checks.map((name) => ({
        name,
        type: 'http',
        status: (round + name.length) % 17 === 0 ? 'UNHEALTHY' : 'HEALTHY',
        timestamp: new Date().toISOString(),
        duration_ms: 5 + (round % 7),
        message: `round ${round}`,
        critical: true,
        transport: 'host',
        details: {},
      })),
    })),
  });
await record();

let fetches = 0;
let changes = 0;
const fetchFragment = () =>
  new Promise((resolve) => {
    const req = request(`${base}/?fragment=1`, (res) => {
      res.resume();
      res.on('end', () => resolve((fetches++, undefined)));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
const streams = [];
for (let i = 0; i < CLIENTS; i++) {
  const req = request(`${base}/events`, (res) => {
    let busy = false;
    res.on('data', (d) => {
      if (!String(d).includes('event: change')) return;
      changes++;
      if (busy) return;
      busy = true;
      void fetchFragment().then(() => (busy = false));
    });
  });
  req.on('error', () => undefined);
  req.end();
  streams.push(req);
}

const mb = (n) => (n / 1048576).toFixed(1);
const sample = () => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
};
const writer = setInterval(() => void record().then(() => round++), EVERY);
const started = Date.now();
const samples = [];
console.log(`${CLIENTS} live clients, a round every ${EVERY} ms, ${SECONDS} s${globalThis.gc ? '' : ' (run with --expose-gc for steadier numbers)'}`);
console.log('| s | live clients | rounds | change events | fragments fetched | heap MiB | RSS MiB |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
while (Date.now() - started < SECONDS * 1000) {
  await new Promise((r) => setTimeout(r, Math.min(10_000, SECONDS * 100)));
  const s = sample();
  samples.push(s);
  console.log(`| ${Math.round((Date.now() - started) / 1000)} | ${server.live.clients} | ${round} | ${changes} | ${fetches} | ${mb(s.heap)} | ${mb(s.rss)} |`);
}
clearInterval(writer);
for (const r of streams) r.destroy();
await server.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
const warm = samples[Math.min(2, samples.length - 1)];
const last = samples.at(-1);
console.log(`heap ${mb(warm.heap)} → ${mb(last.heap)} MiB, RSS ${mb(warm.rss)} → ${mb(last.rss)} MiB (from the third sample to the last)`);
