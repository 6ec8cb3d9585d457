import { describe, expect, it } from 'vitest';
import { judgeCommand } from '../../src/probes/common.js';
import { parseDf } from '../../src/probes/disk.js';
import { jsonMismatch } from '../../src/probes/http.js';
import { memoryUsage, parseMeminfo } from '../../src/probes/memory.js';
import { redactHeaders, redactUrl } from '../../src/util/redact.js';

describe('parseDf', () => {
  it('reads GNU df -P -k', () => {
    const out = 'Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         263174212 22632312 229780628      9% /\n';
    expect(parseDf(out)).toMatchObject({ filesystem: '/dev/vda', used_kb: 22632312, available_kb: 229780628, mount: '/', percent: 9.0 });
  });
  it('reads busybox df -P -k and mount points with spaces', () => {
    const out = 'Filesystem           1024-blocks    Used Available Capacity Mounted on\ntmpfs                    16384     13926      2458  85% /mnt/my data\n';
    expect(parseDf(out)).toMatchObject({ mount: '/mnt/my data', percent: 85.0 });
  });
  it('rejects what is not df output', () => expect(parseDf('df: /nope: No such file or directory')).toBeUndefined());
});

describe('memory', () => {
  it('uses MemAvailable', () => {
    const info = parseMeminfo('MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n');
    expect(memoryUsage(info)).toEqual({ total_kb: 1000, available_kb: 250, percent: 75 });
  });
  it('falls back to free + buffers + cache on kernels without MemAvailable', () => {
    const info = parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 50 kB\n');
    expect(memoryUsage(info)?.percent).toBe(80);
  });
});

describe('jsonMismatch', () => {
  const body = { status: 'ok', db: { status: 'ok', latency: 3 }, list: [1, 2] };
  it.each([
    [{ status: 'ok' }, undefined],
    [{ db: { status: 'ok' } }, undefined],
    [{ 'db.status': 'ok' }, undefined],
    [{ list: [1, 2] }, undefined],
    [{ status: 'down' }, 'JSON key status is "ok", expected "down"'],
    [{ db: { status: 'down' } }, 'JSON key db.status is "ok", expected "down"'],
    [{ missing: 1 }, 'JSON key missing is missing, expected 1'],
    [{ status: { x: 1 } }, 'JSON key status is "ok", expected an object'],
    [{ list: [1] }, 'JSON key list is [1,2], expected [1]'],
  ])('%j', (expected, mismatch) => expect(jsonMismatch(body, expected)).toBe(mismatch));
});

describe('judgeCommand', () => {
  const r = (exitCode: number | null, stdout = '', stderr = '') => ({ exitCode, stdout, stderr, stdoutTruncated: false, stderrTruncated: false });
  it.each([
    ['exit 0 as expected', r(0), { exit_code: 0 }, 'HEALTHY'],
    ['wrong exit code', r(1, '', 'boom'), { exit_code: 0 }, 'UNHEALTHY'],
    ['expected non-zero exit', r(3), { exit_code: 3 }, 'HEALTHY'],
    ['output contains', r(0, 'PONG\n'), { exit_code: 0, expected_output: 'PONG' }, 'HEALTHY'],
    ['output lacks', r(0, 'LOADING\n'), { exit_code: 0, expected_output: 'PONG' }, 'UNHEALTHY'],
    ['killed by a signal', r(null), { exit_code: 0 }, 'UNHEALTHY'],
  ] as const)('%s', (_why, result, expected, status) => expect(judgeCommand(result, expected, 'command').status).toBe(status));
});

describe('redaction', () => {
  it('hides passwords and tokens in URLs', () => {
    expect(redactUrl('http://admin:hunter2@h/x?token=abc&page=2')).toBe('http://admin:***@h/x?token=***&page=2');
  });
  it('hides secret headers', () => {
    expect(redactHeaders({ Authorization: 'Bearer s3cret', Accept: 'json', 'X-Api-Key': 'k' })).toEqual({ Authorization: '***', Accept: 'json', 'X-Api-Key': '***' });
  });
});

describe('table output', () => {
  it('prints guest text on one line with no terminal escapes', async () => {
    const { oneLine } = await import('../../src/outputs/table.js');
    expect(oneLine('line one\nline two\x1b[31m red\x1b[0m\x07')).toBe('line one line two red');
  });
});
