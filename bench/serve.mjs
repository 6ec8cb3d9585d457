#!/usr/bin/env node
/**
 * The status page at fleet scale (issue 13): fills a history store with N VMs × C checks × D days of results,
 * serves it, and measures each page's server time (the `Server-Timing: app` header: store reads + rendering),
 * the client-side time, and the page weight (HTML as sent, raw and gzipped; pages load nothing else but badges).
 *
 *   npm run build && node bench/serve.mjs                       # 500 VMs × 10 checks × 30 days, 15 min apart
 *   node bench/serve.mjs --vms 50 --days 7                      # a quick look
 *   node bench/serve.mjs --store postgres://postgres@127.0.0.1:5432/bench
 *
 * Flags: --store SPEC (default /tmp/cbx-serve-bench/health-<params>.db, reused when it exists), --vms 500,
 * --checks 10, --days 30, --interval 15m (every check), --dense-interval 30s (vm-000's checks, so one check page
 * reads a real watch's density: 86 400 results per check over 30 days), --reps 15, --json FILE.
 * Bounded: one fill, then reps × 8 requests to 127.0.0.1.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { openStore } from '../dist/store/index.js';
import { startServer } from '../dist/serve/server.js';
import { parseDuration } from '../dist/config/duration.js';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const VMS = Number(opt('vms', '500'));
const CHECKS = Number(opt('checks', '10'));
const DAYS = Number(opt('days', '30'));
const INTERVAL = parseDuration(opt('interval', '15m'));
const DENSE = parseDuration(opt('dense-interval', '30s'));
const REPS = Number(opt('reps', '15'));
const CHECK_NAMES = ['api-health', 'web-root', 'redis', 'redis-ping', 'disk-root', 'memory', 'data', 'ssh', 'ntp', 'dns', 'queue', 'cache'];
const checkName = (i) => CHECK_NAMES[i] ?? `check-${i}`;
const vmName = (i) => `vm-${String(i).padStart(3, '0')}`;
const now = Date.now();
const t0 = now - DAYS * 86_400_000;

let spec = opt('store', '');
if (!spec) {
  mkdirSync('/tmp/cbx-serve-bench', { recursive: true });
  spec = `/tmp/cbx-serve-bench/health-${VMS}x${CHECKS}x${DAYS}d-${opt('interval', '15m')}-${opt('dense-interval', '30s')}.db`;
}
const fresh = spec.startsWith('postgres') || !existsSync(spec);

/** A deterministic pseudo-random stream per check. */
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const MESSAGES = {
  HEALTHY: (ms) => `HTTP 200 in ${Math.round(ms)}ms`,
  DEGRADED: (ms) => `HTTP 200 but slow: ${Math.round(ms)}ms over the 500ms warning`,
  UNHEALTHY: () => 'connect ECONNREFUSED 127.0.0.1:8080',
  UNKNOWN: () => 'guest not reached within 2s: no SSH banner',
};

async function fill(store) {
  const started = Date.now();
  let rowsTotal = 0;
  for (let v = 0; v < VMS; v++) {
    const vm = vmName(v);
    const interval = v === 0 ? DENSE : INTERVAL;
    const results = [];
    const transitions = [];
    const states = new Map([[vm, new Map()]]);
    for (let c = 0; c < CHECKS; c++) {
      const check = checkName(c);
      const rand = rng(v * 1000 + c + 1);
      let status = 'HEALTHY';
      let run = 0;
      let last = null;
      let lastChange = t0;
      let fails = 0;
      let oks = 0;
      // A few checks end in trouble, so the page has something to show.
      const endsAs = v % 97 === 3 && c === 0 ? 'UNHEALTHY' : v % 89 === 5 && c === 1 ? 'DEGRADED' : v % 83 === 7 && c === 2 ? 'UNKNOWN' : null;
      for (let t = t0 + Math.floor(rand() * interval); t < now; t += interval) {
        if (run > 0) run--;
        else {
          const r = rand();
          status = r < 0.004 ? 'UNHEALTHY' : r < 0.006 ? 'DEGRADED' : r < 0.008 ? 'UNKNOWN' : 'HEALTHY';
          run = status === 'HEALTHY' ? 0 : Math.floor(rand() * 6);
        }
        if (endsAs && t > now - 20 * interval) status = endsAs;
        const ms = status === 'UNKNOWN' ? 2000 : 5 + rand() * 40 + (status === 'DEGRADED' ? 600 : 0);
        const message = MESSAGES[status](ms);
        results.push({ ts: t, vm, check, type: 'http', status, state: status, duration_ms: ms, message, details: {} });
        if (status !== last) {
          transitions.push({ ts: t, vm, check, from: last, to: status, hard: true, message });
          lastChange = t;
        }
        if (status === 'HEALTHY') (oks++, (fails = 0));
        else if (status !== 'UNKNOWN') (fails++, (oks = 0));
        last = status;
        states.get(vm).set(check, {
          state: status,
          hard: true,
          consecutive_failures: fails,
          consecutive_successes: oks,
          last_result_status: status,
          last_result_at: new Date(t).toISOString(),
          last_change: new Date(lastChange).toISOString(),
          last_message: message,
        });
      }
    }
    await store.withStateLock([vm], async (tx) => {
      await tx.insertResults(results);
      await tx.insertTransitions(transitions);
      await tx.saveStates(states, now);
    });
    rowsTotal += results.length;
    if (v % 50 === 49) process.stderr.write(`  filled ${v + 1}/${VMS} VMs, ${rowsTotal.toLocaleString('en')} results, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  }
  return { rows: rowsTotal, seconds: (Date.now() - started) / 1000 };
}

function get(url, gzip) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const timing = /app;dur=([\d.]+)/.exec(String(res.headers['server-timing'] ?? ''));
        resolve({
          status: res.statusCode,
          ms: performance.now() - started,
          server: timing ? Number(timing[1]) : NaN,
          sent: body.length,
          raw: res.headers['content-encoding'] === 'gzip' ? gunzipSync(body).length : body.length,
        });
      });
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.end();
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const store = await openStore(spec, { retentionMs: 0 });
try {
  let filled = { rows: 0, seconds: 0 };
  if (fresh) {
    process.stderr.write(`filling ${spec}: ${VMS} VMs × ${CHECKS} checks × ${DAYS} days (every ${opt('interval', '15m')}; vm-000 every ${opt('dense-interval', '30s')})\n`);
    filled = await fill(store);
  } else process.stderr.write(`reusing ${spec}\n`);
  const server = await startServer({ host: '127.0.0.1', port: 0, store, rateLimitPerMinute: 100_000, pollMs: 60_000 });
  const base = server.url.replace(/\/$/, '');
  const pages = [
    ['fleet page /', '/'],
    ['fleet page, filtered (?status=UNHEALTHY)', '/?status=UNHEALTHY'],
    ['fleet fragment (live update)', '/?fragment=1'],
    ['VM page /vms/vm-000 (dense)', '/vms/vm-000'],
    ['check page /vms/vm-000/checks/api-health (86 400 results/30 d)', '/vms/vm-000/checks/api-health'],
    ['check page /vms/vm-250/checks/api-health', `/vms/${vmName(Math.floor(VMS / 2))}/checks/api-health`],
    ['GET /api/v1/fleet', '/api/v1/fleet'],
    ['badge /badge/vm-000.svg', '/badge/vm-000.svg'],
    ['GET /metrics', '/metrics'],
  ];
  const rows = [];
  for (const [label, path] of pages) {
    await get(base + path, true); // warm-up
    const samples = [];
    for (let i = 0; i < REPS; i++) samples.push(await get(base + path, true));
    const plain = await get(base + path, false);
    if (samples.some((s) => s.status !== 200)) throw new Error(`${path}: HTTP ${samples.map((s) => s.status).join(',')}`);
    rows.push({
      page: label,
      server_ms_median: pct(samples.map((s) => s.server), 50),
      server_ms_p90: pct(samples.map((s) => s.server), 90),
      client_ms_median: pct(samples.map((s) => s.ms), 50),
      bytes_raw: plain.raw,
      bytes_gzip: samples[0].sent,
    });
  }
  await server.close();
  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`\n${store.kind} store ${store.location}: ${VMS} VMs × ${CHECKS} checks × ${DAYS} days${fresh ? `, ${filled.rows.toLocaleString('en')} results filled in ${filled.seconds.toFixed(0)} s` : ''}; ${REPS} reps each\n`);
  console.log('| page | server ms (median) | server ms (p90) | client ms (median) | HTML raw | HTML gzip |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.page} | ${r.server_ms_median.toFixed(1)} | ${r.server_ms_p90.toFixed(1)} | ${r.client_ms_median.toFixed(1)} | ${kb(r.bytes_raw)} | ${kb(r.bytes_gzip)} |`);
  }
  const json = opt('json', '');
  if (json) writeFileSync(json, JSON.stringify({ vms: VMS, checks: CHECKS, days: DAYS, store: store.kind, rows }, null, 2));
} finally {
  await store.close();
}
