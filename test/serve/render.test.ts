/** The status page's pure parts: escaping, badges, uptime buckets, filters, --listen and --auth. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorized, loadAuth } from '../../src/serve/auth.js';
import { badgeSvg, formatUptime, statusBadge } from '../../src/serve/badge.js';
import { escapeHtml, html, trusted } from '../../src/serve/html/escape.js';
import { barTitle } from '../../src/serve/html/parts.js';
import { applyFilter, parseFilter, vmSince, type VmSummary } from '../../src/serve/queries.js';
import { displayMessage } from '../../src/serve/status.js';
import { toBars, uptimeOf, windowRange } from '../../src/serve/uptime.js';
import { parseListen } from '../../src/serve/run.js';
import { isLoopback } from '../../src/serve/server.js';
import type { ResultBucket } from '../../src/store/types.js';

const EVIL = `<script>alert("x")</script>&'`;

describe('HTML escaping', () => {
  it.each([
    ['element text', EVIL, '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;'],
    ['an attribute breakout', '" onmouseover="x', '&quot; onmouseover=&quot;x'],
    ['nothing to escape', 'web-1', 'web-1'],
  ])('%s', (_why, input, out) => {
    expect(escapeHtml(input)).toBe(out);
    expect(html`<b title="${input}">${input}</b>`.value).toBe(`<b title="${out}">${out}</b>`);
  });

  it('escapes every interpolation unless it is Html; arrays item by item; null, undefined and false render nothing', () => {
    const inner = html`<i>${EVIL}</i>`;
    expect(html`${inner}`.value).toBe(inner.value);
    expect(html`${[EVIL, inner]}`.value).toBe(`${escapeHtml(EVIL)}${inner.value}`);
    expect(html`${null}${undefined}${false}${0}`.value).toBe('0');
    expect(html`${trusted('<hr>')}`.value).toBe('<hr>');
    // A plain object pretending to be Html is still escaped.
    expect(html`${{ value: '<x>', toString: () => '<x>' }}`.value).toBe('&lt;x&gt;');
  });

  it('bar titles and badges carry names and messages as text', () => {
    const bar = { start: 0, end: 1_800_000, status: 'UNHEALTHY' as const, counts: { HEALTHY: 1, DEGRADED: 0, UNHEALTHY: 2, UNKNOWN: 0 }, message: EVIL, message_ts: 5, mean_ms: 3 };
    expect(barTitle(bar, 1_800_000)).toBe(`1970-01-01 00:00–00:30 UTC: UNHEALTHY — ${EVIL} (3 results: 2 UNHEALTHY)`);
    const svg = badgeSvg({ label: EVIL, message: 'HEALTHY', colour: '#fff" onload="x' });
    expect(svg).not.toContain('<script>');
    expect(svg).not.toContain('" onload="');
    expect(svg).toContain('&lt;script&gt;');
  });
});

describe('badges', () => {
  it.each([
    [1, '100%'],
    [0.9999, '99.9%'],
    [0.5, '50.0%'],
    [0, '0.0%'],
    [null, 'no data'],
  ])('uptime %s reads %s (never rounded up to 100%%)', (ratio, text) => expect(formatUptime(ratio)).toBe(text));

  it('is a well-formed SVG with status, uptime, colour and an accessible name', () => {
    const svg = statusBadge('web-1/api', 'UNHEALTHY', 0.987);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="20" role="img" aria-label="web-1\/api: UNHEALTHY 98.7%">/);
    expect(svg).toContain('fill="#c0262d"');
    expect(svg).toContain('>UNHEALTHY 98.7%</text>');
    expect(statusBadge('nope', undefined, null)).toContain('>not found</text>');
    // Long names are clipped, so a badge never grows without bound.
    expect(statusBadge('x'.repeat(500), 'HEALTHY', 1).length).toBeLessThan(1500);
  });
});

describe('uptime buckets', () => {
  const B = 1000;
  const row = (bucket: number, status: ResultBucket['status'], count: number, last_ts: number, last_message: string = status, duration = 10 * count): ResultBucket => ({
    bucket,
    status,
    count,
    duration_ms_sum: duration,
    last_ts,
    last_message,
  });

  it('one bar per bucket; the worst status wins and its latest message is the bar’s; empty buckets have no status', () => {
    const bars = toBars(
      [
        row(0, 'HEALTHY', 5, 900),
        row(0, 'UNHEALTHY', 1, 100, 'refused'),
        row(1, 'UNKNOWN', 2, 1500, 'not reached', 4000),
        row(1, 'HEALTHY', 3, 1600),
        row(2, 'DEGRADED', 1, 2100, 'slow'),
        row(2, 'UNKNOWN', 1, 2900),
        row(7, 'UNHEALTHY', 9, 7000), // outside the window: ignored
      ],
      0,
      B,
      4,
    );
    expect(bars.map((b) => b.status)).toEqual(['UNHEALTHY', 'UNKNOWN', 'DEGRADED', null]);
    expect(bars.map((b) => b.message)).toEqual(['refused', 'not reached', 'slow', undefined]);
    expect(bars.map((b) => [b.start, b.end])).toEqual([
      [0, 1000],
      [1000, 2000],
      [2000, 3000],
      [3000, 4000],
    ]);
    // Mean response time leaves UNKNOWN out (its duration is a deadline, not a response).
    expect(bars[1]!.mean_ms).toBe(10);
    expect(bars[3]!.mean_ms).toBeNull();
  });

  it('of two groups with the worst status, the later message wins', () => {
    const [bar] = toBars([row(0, 'UNHEALTHY', 1, 100, 'early'), row(0, 'UNHEALTHY', 1, 300, 'late')], 0, B, 1);
    expect(bar!.message).toBe('late');
  });

  it('uptime: evaluated results that were not UNHEALTHY; UNKNOWN is not evaluated; nothing evaluated is null', () => {
    const bars = toBars([row(0, 'HEALTHY', 7, 1), row(0, 'DEGRADED', 1, 2), row(0, 'UNHEALTHY', 2, 3), row(1, 'UNKNOWN', 40, 1001)], 0, B, 2);
    expect(uptimeOf(bars)).toEqual({ ratio: 0.8, up: 8, evaluated: 10 });
    expect(uptimeOf(toBars([row(0, 'UNKNOWN', 3, 1)], 0, B, 1)).ratio).toBeNull();
  });

  it('windows are aligned to their bucket size and end with the bucket holding now', () => {
    const now = Date.parse('2026-03-01T12:34:56Z');
    expect(windowRange({ bucketMs: 1_800_000, count: 48 }, now)).toEqual({ sinceMs: Date.parse('2026-02-28T13:00:00Z'), untilMs: Date.parse('2026-03-01T13:00:00Z') });
    expect(windowRange({ bucketMs: 86_400_000, count: 30 }, now).untilMs).toBe(Date.parse('2026-03-02T00:00:00Z'));
  });
});

describe('fleet filters and summaries', () => {
  const vm = (name: string, status: VmSummary['status'], checks: [string, VmSummary['status'], string[]][]): VmSummary => ({
    vm: name,
    status,
    since: 0,
    last_result_at: 0,
    counts: { total: 0, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 },
    checks: checks.map(([check, s, tags]) => ({
      vm: name,
      check,
      status: s,
      last_result_status: s,
      since: 0,
      last_result_at: 0,
      message: '',
      consecutive_failures: 0,
      consecutive_successes: 0,
      critical: false,
      tags,
      stale: false,
    })),
  });
  const fleet = [
    vm('web-1', 'HEALTHY', [['api', 'HEALTHY', ['web']]]),
    vm('web-2', 'DEGRADED', [
      ['api', 'UNHEALTHY', ['web']],
      ['disk', 'HEALTHY', []],
    ]),
    vm('db-1', 'HEALTHY', [['pg', 'HEALTHY', ['db']]]),
  ];
  it.each([
    ['no filter', {}, ['web-1', 'web-2', 'db-1']],
    ['a glob', { vm: 'web-*' }, ['web-1', 'web-2']],
    ['a plain word matches inside names', { vm: 'eb' }, ['web-1', 'web-2']],
    ['a status matches the VM or one of its checks', { status: 'UNHEALTHY' as const }, ['web-2']],
    ['a tag keeps VMs with a tagged check', { tag: 'db' }, ['db-1']],
  ])('%s', (_why, filter, names) => expect(applyFilter(fleet, filter).map((v) => v.vm)).toEqual(names));

  it('a tag shows only the tagged checks', () => {
    expect(applyFilter(fleet, { tag: 'web' }).find((v) => v.vm === 'web-2')!.checks.map((c) => c.check)).toEqual(['api']);
  });

  it('parses the query leniently: unknown statuses and oversized values are dropped, never an error', () => {
    expect(parseFilter({ status: 'unhealthy', vm: ' web-* ', tag: '' })).toEqual({ status: 'UNHEALTHY', vm: 'web-*' });
    expect(parseFilter({ status: 'BROKEN', vm: 'x'.repeat(500), tag: ['a'] })).toEqual({});
  });

  it('since: a HEALTHY VM since its latest change; otherwise since its earliest check in trouble', () => {
    const cs = [
      { status: 'UNHEALTHY' as const, since: 300 },
      { status: 'DEGRADED' as const, since: 250 },
      { status: 'HEALTHY' as const, since: 100 },
      { status: 'HEALTHY' as const, since: 900 },
    ];
    expect(vmSince('UNHEALTHY', cs)).toBe(250);
    expect(vmSince('HEALTHY', cs)).toBe(900);
    // A DEGRADED VM because a non-critical check is UNHEALTHY: since that check failed, not since the oldest check.
    expect(vmSince('DEGRADED', [cs[0]!, cs[2]!])).toBe(300);
  });

  it('never shows URL credentials in a message, and caps its length', () => {
    expect(displayMessage('GET https://bob:s3cret@api.example/x failed')).toBe('GET https://***@api.example/x failed');
    expect(displayMessage('y'.repeat(2000))).toHaveLength(500);
  });
});

describe('--listen and the bind policy', () => {
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['8080', { host: '127.0.0.1', port: 8080 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('%s', (text, want) => expect(parseListen(text)).toEqual(want));

  it.each(['', 'host', '1.2.3.4:99999', '::1:80', 'a b:80'])('refuses %j with one sentence', (text) => {
    expect(() => parseListen(text)).toThrow(/^--listen expects HOST:PORT/);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['10.0.0.5', false],
    ['::', false],
    ['localhost.evil.example', false],
  ])('%s is loopback: %s', (host, want) => expect(isLoopback(host)).toBe(want));
});

describe('--auth', () => {
  const token = 'a'.repeat(20);
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

  it('reads a token from the environment or a file, never from the command line', () => {
    expect(loadAuth('env:TOK', 'bearer', { TOK: ` ${token}\n` })).toEqual({ kind: 'bearer', token });
    const dir = mkdtempSync(join(tmpdir(), 'clonebox-auth-'));
    const file = join(dir, 'basic');
    writeFileSync(file, `ops:${token}\nignored\n`, { mode: 0o644 });
    const warnings: string[] = [];
    expect(loadAuth(`file:${file}`, 'basic', {}, (w) => warnings.push(w))).toEqual({ kind: 'basic', user: 'ops', password: token });
    expect(warnings).toEqual([`${file} can be read by other users; chmod 600 it`]);
  });

  it.each([
    ['a literal secret', token, /expects env:NAME or file:PATH/],
    ['an unset variable', 'env:NOPE', /NOPE is not set/],
    ['a short token', 'env:SHORT', /shorter than 16/],
    ['a missing file', 'file:/nonexistent/x', /cannot read \/nonexistent\/x \(ENOENT\)/],
  ])('refuses %s', (_why, source, re) => {
    expect(() => loadAuth(source, 'bearer', { SHORT: 'abc' })).toThrow(re);
  });

  it('the error for a literal secret does not repeat it', () => {
    for (const literal of [token, `tok:${token}`]) {
      let message = '';
      try {
        loadAuth(literal, 'bearer', {});
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^--auth expects env:NAME or file:PATH/);
      expect(message).not.toContain(token);
    }
  });

  it('a token works as bearer, or as the password of basic auth; basic needs both parts', () => {
    const b = { kind: 'bearer' as const, token };
    expect(authorized(b, `Bearer ${token}`)).toBe(true);
    expect(authorized(b, basic('anyone', token))).toBe(true);
    expect(authorized(b, `Bearer ${token}x`)).toBe(false);
    expect(authorized(b, undefined)).toBe(false);
    const p = { kind: 'basic' as const, user: 'ops', password: token };
    expect(authorized(p, basic('ops', token))).toBe(true);
    expect(authorized(p, basic('ops2', token))).toBe(false);
    expect(authorized(p, basic('ops', 'wrong'))).toBe(false);
    expect(authorized(p, `Bearer ${token}`)).toBe(false);
    expect(authorized(p, 'Basic !!!')).toBe(false);
  });
});
