/**
 * `health serve` over HTTP against a real SQLite store (no browser; test/e2e/serve.test.ts has one): what each
 * endpoint returns, the JSON API against docs/api.schema.json, the safety rules (read-only, Host names on
 * loopback, auth, rate limit), escaping of hostile names, /metrics parsed strictly, and live change events.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openServe } from '../../src/serve/run.js';
import { startServer, type StatusServer } from '../../src/serve/server.js';
import { openStore } from '../../src/store/index.js';
import type { HealthStore } from '../../src/store/types.js';
import type { HealthStatus } from '../../src/report.js';
import { parseExposition } from '../outputs/exposition.js';
import { check, report } from '../store/contract.js';

const EVIL_VM = '<script>window.__pwned=1</script>';
const EVIL_CHECK = '"><img src=x onerror=alert(1)>';
const MIN = 60_000;

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let buf = Buffer.concat(chunks);
        if (res.headers['content-encoding'] === 'gzip') buf = gunzipSync(buf);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function seed(store: HealthStore, now: number): Promise<void> {
  const at = (m: number) => now - m * MIN;
  // web-1 healthy for an hour; web-2's api down for the last 10 minutes; the hostile names once.
  for (let m = 60; m >= 0; m -= 5) {
    const api: HealthStatus = m <= 10 ? 'UNHEALTHY' : 'HEALTHY';
    await store.advanceRound({
      reports: [
        report('web-1', [check('api', 'HEALTHY', at(m)), check('disk', 'HEALTHY', at(m))]),
        report('web-2', [check('api', api, at(m), { message: api === 'HEALTHY' ? 'HTTP 200' : 'connect ECONNREFUSED 10.0.0.2:8080' })]),
      ],
      policy: () => ({ failure_threshold: 1, success_threshold: 1 }),
      now: at(m),
    });
  }
  await store.advanceRound({ reports: [report(EVIL_VM, [check(EVIL_CHECK, 'DEGRADED', at(1), { message: '<b>bold</b> & "quoted"' })])], now: at(1) });
}

describe('health serve over HTTP', () => {
  let store: HealthStore;
  let server: StatusServer;
  let base: string;
  const now = Date.now();

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clonebox-serve-'));
    store = await openStore(join(dir, 'health.db'), { retentionMs: 0 });
    await seed(store, now);
    server = await startServer({ host: '127.0.0.1', port: 0, store, pollMs: 100, rateLimitPerMinute: 10_000 });
    base = server.url.replace(/\/$/, '');
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it('the fleet page: worst first, statuses as text, counts, and live markup; gzip when asked', async () => {
    const res = await get(`${base}/`, { 'accept-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['server-timing']).toMatch(/^app;dur=\d/);
    const rows = [...res.body.matchAll(/<tr data-vm="([^"]*)" data-status="([A-Z]+)">/g)].map((m) => [m[1], m[2]]);
    // Worst first, then by name; a non-critical check UNHEALTHY makes its VM DEGRADED (no config: nothing is critical).
    expect(rows).toEqual([
      ['&lt;script&gt;window.__pwned=1&lt;/script&gt;', 'DEGRADED'],
      ['web-2', 'DEGRADED'],
      ['web-1', 'HEALTHY'],
    ]);
    expect(res.body).toContain('connect ECONNREFUSED 10.0.0.2:8080');
    expect(res.body).toContain('<div id="content">');
    expect(res.body).toContain("new EventSource('/events')");
  });

  it('hostile VM and check names and messages render as text everywhere', async () => {
    const vm = encodeURIComponent(EVIL_VM);
    const ck = encodeURIComponent(EVIL_CHECK);
    for (const path of ['/', `/vms/${vm}`, `/vms/${vm}/checks/${ck}`, `/badge/${vm}.svg`, `/badge/${vm}/${ck}.svg`]) {
      const res = await get(base + path);
      expect(res.status, path).toBe(200);
      expect(res.body, path).not.toContain('<script>window');
      expect(res.body, path).not.toContain('<img src=x');
      expect(res.body, path).not.toContain('<b>bold');
      expect(res.body, path).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;');
    }
  });

  it('a check page: uptime bars for 24 h, 7 d and 30 d, the sparkline and the transitions', async () => {
    const res = await get(`${base}/vms/web-2/checks/api`);
    expect(res.status).toBe(200);
    const windows = [...res.body.matchAll(/<section data-window="(\w+)"><h2>Last [^:]+: ([^<]+)<\/h2>\s*<div class="bars" role="img" aria-label="[^"]+">(.*?)<\/div>/gs)];
    expect(windows.map((w) => w[1])).toEqual(['24h', '7d', '30d']);
    const bars24 = [...windows[0]![3]!.matchAll(/data-status="(\w+)"/g)].map((m) => m[1]);
    expect(bars24).toHaveLength(48);
    // 13 results over the last hour: two or three 30-minute buckets, the last one has the outage.
    expect(bars24.filter((s) => s !== 'none').length).toBeGreaterThanOrEqual(2);
    expect(bars24.filter((s) => s === 'UNHEALTHY').length).toBeGreaterThanOrEqual(1);
    expect(bars24.at(-1)).toBe('UNHEALTHY');
    expect(windows[0]![2]).toMatch(/^\d+\.\d% up$/);
    expect(res.body).toMatch(/<svg class="spark"[^>]*role="img" aria-label="Mean response time per 30 minutes: min 12.5 ms/);
    expect(res.body).toMatch(/<tr data-to="UNHEALTHY">.*HEALTHY → <span class="pill s-UNHEALTHY"/);
  });

  it('a check page names the maintenance silence in force (escaped); other checks do not show it', async () => {
    const t = Date.now();
    await store.addSilence({ id: 'sil-1', vm: 'web-*', check: 'api', starts_at: t - 1000, ends_at: t + 3_600_000, reason: 'kernel <upgrade>', created_at: t });
    try {
      const res = await get(`${base}/vms/web-2/checks/api`);
      expect(res.status).toBe(200);
      expect(res.body).toMatch(/<dt>Silenced<\/dt><dd data-silenced="true">until [^<]*: kernel &lt;upgrade&gt;<\/dd>/);
      const other = await get(`${base}/vms/${encodeURIComponent(EVIL_VM)}/checks/${encodeURIComponent(EVIL_CHECK)}`);
      expect(other.body).not.toContain('data-silenced');
    } finally {
      await store.removeSilence('sil-1');
    }
  });

  it('unknown VMs and checks are 404 pages; other methods are refused; nothing changes state', async () => {
    expect((await get(`${base}/vms/nope`)).status).toBe(404);
    expect((await get(`${base}/vms/web-1/checks/nope`)).status).toBe(404);
    expect((await get(`${base}/api/v1/vms/nope`)).body).toBe('{"error":"no VM named \\"nope\\" has results in this store"}');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await get(`${base}/`, {}, method);
      expect(res.status, method).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
    }
    expect((await get(`${base}/`, {}, 'HEAD')).status).toBe(200);
  });

  it('answers only to loopback Host names on a loopback address (no DNS rebinding)', async () => {
    expect((await get(`${base}/`, { host: 'evil.example' })).status).toBe(421);
    expect((await get(`${base}/`, { host: 'localhost:1234' })).status).toBe(200);
  });

  it('sends a Content-Security-Policy that admits only its own script and style', async () => {
    const csp = String((await get(`${base}/`)).headers['content-security-policy']);
    expect(csp).toMatch(/default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
  });

  it('the JSON API matches docs/api.schema.json', async () => {
    const schema = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/api.schema.json'), 'utf8'));
    const ajv = new Ajv2020.default({ allErrors: true, strict: false, validateFormats: false });
    const validate = (def: string, value: unknown) => {
      const v = ajv.compile({ $ref: `${schema.$id}#/$defs/${def}` });
      expect(v(value), JSON.stringify(v.errors)).toBe(true);
    };
    ajv.addSchema(schema);
    const fleet = JSON.parse((await get(`${base}/api/v1/fleet`)).body);
    validate('fleet', fleet);
    expect(fleet.counts.vms).toEqual({ total: 3, healthy: 1, degraded: 2, unhealthy: 0, unknown: 0 });
    validate('fleet', JSON.parse((await get(`${base}/api/v1/fleet?status=HEALTHY&vm=web-*`)).body));
    const vm = JSON.parse((await get(`${base}/api/v1/vms/web-2`)).body);
    validate('vmDetail', vm);
    expect(vm.checks[0].uptime['24h']).toBeCloseTo(10 / 13, 5);
    const hist = JSON.parse((await get(`${base}/api/v1/vms/web-2/checks/api/history?since=2h&limit=5`)).body);
    validate('history', hist);
    expect(hist.results).toHaveLength(5);
    expect(hist.next_since).not.toBeNull();
    const rest = JSON.parse((await get(`${base}/api/v1/vms/web-2/checks/api/history?since=${encodeURIComponent(hist.next_since)}&limit=100`)).body);
    expect(rest.results).toHaveLength(8);
    expect(rest.next_since).toBeNull();
    const bad = await get(`${base}/api/v1/vms/web-2/checks/api/history?since=yesterday`);
    expect(bad.status).toBe(400);
    validate('error', JSON.parse(bad.body));
    expect((await get(`${base}/api/v1/vms/web-2/checks/api/history?limit=0`)).status).toBe(400);
  });

  it('badges: SVG with status and uptime, 404 with a "not found" badge', async () => {
    const ok = await get(`${base}/badge/web-2/api.svg`);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/^image\/svg\+xml/);
    expect(ok.body).toMatch(/aria-label="web-2\/api: UNHEALTHY 76\.9%"/);
    expect((await get(`${base}/badge/web-1.svg`)).body).toContain('>HEALTHY 100%</text>');
    const missing = await get(`${base}/badge/nope.svg`);
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('>not found</text>');
  });

  it('/metrics: the store picture, one-hot, parsed strictly', async () => {
    const res = await get(`${base}/metrics`);
    expect(res.status).toBe(200);
    const exp = parseExposition(res.body);
    const samples = (name: string) => exp.samples.filter((s) => s.name === name);
    const one = samples('clonebox_store_check_status')
      .filter((s) => s.value === 1)
      .map((s) => `${s.labels.vm}/${s.labels.check}=${s.labels.status}`);
    expect(one.sort()).toEqual([`${EVIL_VM}/${EVIL_CHECK}=DEGRADED`, 'web-1/api=HEALTHY', 'web-1/disk=HEALTHY', 'web-2/api=UNHEALTHY'].sort());
    expect(samples('clonebox_store_vms').find((s) => s.labels.status === 'DEGRADED')!.value).toBe(2);
    expect(samples('process_resident_memory_bytes')[0]!.value).toBeGreaterThan(0);
    expect(exp.type.get('clonebox_store_check_status')).toBe('gauge');
  });

  it('tells an open event stream when a result is recorded', async () => {
    const events: string[] = [];
    const req = request(`${base}/events`);
    const got = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        res.on('data', (d: Buffer) => {
          events.push(d.toString());
          if (events.join('').includes('event: change')) resolve();
        });
      });
      req.on('error', reject);
    });
    req.end();
    // Wait until the hub counts the stream, then record one result.
    for (let i = 0; i < 100 && server.live.clients === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(server.live.clients).toBe(1);
    await store.advanceRound({ reports: [report('web-1', [check('api', 'HEALTHY', Date.now())])] });
    await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error(`no change event in 10 s: ${events.join('')}`)), 10_000))]);
    req.destroy();
    for (let i = 0; i < 100 && server.live.clients > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(server.live.clients).toBe(0);
  });
});

describe('health serve: auth and rate limit', () => {
  let store: HealthStore;
  const servers: StatusServer[] = [];
  const token = 'b'.repeat(24);

  beforeAll(async () => {
    store = await openStore(join(mkdtempSync(join(tmpdir(), 'clonebox-serve-')), 'health.db'), { retentionMs: 0 });
    await seed(store, Date.now());
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await store?.close();
  });

  it('with --auth every endpoint needs the token (bearer, or as a basic-auth password)', async () => {
    const s = await startServer({ host: '127.0.0.1', port: 0, store, auth: { kind: 'bearer', token } });
    servers.push(s);
    for (const path of ['/', '/api/v1/fleet', '/badge/web-1.svg', '/metrics', '/events', '/vms/web-1']) {
      const res = await get(s.url.replace(/\/$/, '') + path);
      expect(res.status, path).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="clonebox health"/);
    }
    expect((await get(s.url, { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(s.url, { authorization: `Basic ${Buffer.from(`me:${token}`).toString('base64')}` })).status).toBe(200);
    expect((await get(s.url, { authorization: 'Bearer wrong' })).status).toBe(401);
  });

  it('bounds requests per client address', async () => {
    const s = await startServer({ host: '127.0.0.1', port: 0, store, rateLimitPerMinute: 5 });
    servers.push(s);
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await get(`${s.url}badge/web-1.svg`)).status);
    expect(codes.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(codes.slice(5)).toEqual([429, 429, 429]);
  });
});

describe('health serve: opening (the command behind the CLI)', () => {
  const log = () => undefined;

  it('refuses a non-loopback address without --auth or --no-auth, naming both', async () => {
    await expect(openServe({ listen: '0.0.0.0:0', store: '/nonexistent/never-opened.db', log })).rejects.toThrow(
      /^--listen 0\.0\.0\.0:0 can be reached from other hosts: protect it with --auth env:NAME or --auth file:PATH .* or say --no-auth/,
    );
    await expect(openServe({ listen: ':0', flagPrefix: 'serve-', log })).rejects.toThrow(/^--serve :0 can be reached .* --serve-auth env:NAME .* --serve-no-auth/);
  });

  it('says there is no store rather than creating an empty one (health watch --serve may create it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clonebox-serve-'));
    const missing = join(dir, 'none.db');
    await expect(openServe({ listen: '127.0.0.1:0', store: missing, log })).rejects.toThrow(`no history store at ${missing}: record some results first`);
    expect(existsSync(missing)).toBe(false);
    const opened = await openServe({ listen: '127.0.0.1:0', store: missing, allowNewStore: true, log });
    await opened.close();
    expect(existsSync(missing)).toBe(true);
  });

  it('with --auth env:NAME on loopback: up, and every request needs the token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clonebox-serve-'));
    const db = join(dir, 'health.db');
    await (await openStore(db)).close();
    process.env.CLONEBOX_TEST_SERVE_TOKEN = 'c'.repeat(32);
    try {
      const opened = await openServe({ listen: '127.0.0.1:0', store: db, auth: 'env:CLONEBOX_TEST_SERVE_TOKEN', log });
      try {
        expect((await get(opened.server.url)).status).toBe(401);
        const ok = await get(opened.server.url, { authorization: `Bearer ${'c'.repeat(32)}` });
        expect(ok.status).toBe(200);
        expect(ok.body).toContain('No check results in');
      } finally {
        await opened.close();
      }
    } finally {
      delete process.env.CLONEBOX_TEST_SERVE_TOKEN;
    }
  });
});
