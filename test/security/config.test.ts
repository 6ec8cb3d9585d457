/**
 * The config side of issue 16: secret references, durations a timer can hold, addresses that are
 * addresses, an alias bomb and a bad glob as one sentence each, and secrets masked in errors.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { globToRegExp, SelectorError } from '../../src/inventory/discover.js';
import { addressProblem, configAddressProblem, isIpLiteral } from '../../src/inventory/addresses.js';
import { needsEscaping, printable } from '../../src/util/printable.js';
import { clearSecrets, redactDeep, redactText, registerSecret } from '../../src/util/redact.js';

function errorOf(yaml: string): string {
  try {
    parseConfig(yaml, 'c.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

afterEach(() => clearSecrets());

describe('durations a timer can hold (item 4)', () => {
  it.each([
    ['timeout: 30d', 'health_checks[0].timeout', 4],
    ['interval: 25d', 'health_checks[0].interval', 4],
    ['timeout: 2147484s', 'health_checks[0].timeout', 4],
    ['timeout: 1e10', 'health_checks[0].timeout', 4],
  ])('%s is refused at its line', (line, key, lineNo) => {
    const message = errorOf(`health_checks:\n  - name: a\n    type: tcp\n    ${line}\n    port: 1\n`);
    expect(message).toMatch(new RegExp(`^c\\.yaml:${lineNo}:\\d+: ${key.replace(/[[\].]/g, '\\$&')}: must be at most 24\\.8 days \\(2147483647ms\\), the longest wait a timer can hold; got `));
  });

  it('24 days is fine, and a retention (never waited for) may be longer', () => {
    const c = parseConfig('history: {retention: 400d}\nhealth_checks:\n  - {name: a, type: tcp, port: 1, interval: 24d, on_failure: {command: x, timeout: 1d}}\n', 'c.yaml');
    expect(c.health_checks[0]!.interval).toBe(24 * 86_400_000);
    expect(c.history!.retention).toBe(400 * 86_400_000);
  });

  it('an action timeout and ssh.connect_timeout are capped too', () => {
    expect(errorOf('ssh: {connect_timeout: 30d}\n')).toMatch(/^c\.yaml:1:\d+: ssh\.connect_timeout: .*24\.8 days/);
    expect(errorOf('health_checks:\n  - {name: a, type: tcp, port: 1, on_failure: {command: x, timeout: 60d}}\n')).toMatch(/on_failure\.timeout: .*24\.8 days/);
  });
});

describe('YAML alias bomb (item 8)', () => {
  it('is one sentence naming the file, not "unexpected error"', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const message = errorOf(`${lines.join('\n')}\nhealth_checks: []\n`);
    expect(message).toMatch(/^c\.yaml: too many YAML aliases .* write the values out or use fewer aliases$/);
  });
});

describe('secret references ${env:…} and ${file:…}', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-secret-'));
  const file = path.join(dir, 'token');
  writeFileSync(file, 'FILE-TOKEN-1234\n');

  it('resolve anywhere a string is allowed; values are registered as secrets', () => {
    process.env.CB_TEST_TOKEN = 'ENV-TOKEN-5678';
    const c = parseConfig(
      [
        'history: {store: "postgres://u:${env:CB_TEST_TOKEN}@db/x"}',
        'health_checks:',
        `  - {name: a, type: http, url: "http://h/", headers: {Authorization: "Bearer \${file:${file}}", X-Trace: "\${env:CB_TEST_TOKEN}"}}`,
        '  - {name: b, type: command, exec: "echo $${env:HOME} ${HOME}"}',
      ].join('\n'),
      'c.yaml',
    );
    expect(c.history!.store).toBe('postgres://u:ENV-TOKEN-5678@db/x');
    const http = c.health_checks[0] as { headers: Record<string, string> };
    expect(http.headers).toEqual({ Authorization: 'Bearer FILE-TOKEN-1234', 'X-Trace': 'ENV-TOKEN-5678' });
    // $${…} stays as written; a shell's own ${HOME} is left alone.
    expect((c.health_checks[1] as { exec: string }).exec).toBe('echo ${env:HOME} ${HOME}');
    expect(redactText('got FILE-TOKEN-1234 and ENV-TOKEN-5678 and ' + encodeURIComponent('ENV-TOKEN-5678'))).toBe('got *** and *** and ***');
    delete process.env.CB_TEST_TOKEN;
  });

  it.each([
    ['a missing variable', 'url: "${env:CB_SURELY_UNSET_1}"', /^c\.yaml:4:10: \$\{env:CB_SURELY_UNSET_1\}: the environment variable CB_SURELY_UNSET_1 is not set/],
    ['a missing file', 'url: "${file:/nonexistent/secret}"', /^c\.yaml:4:10: \$\{file:\/nonexistent\/secret\}: the file does not exist/],
    ['a relative file', 'url: "${file:secret}"', /^c\.yaml:4:10: \$\{file:secret\} must name an absolute path/],
    ['a bad variable name', 'url: "${env:1X}"', /^c\.yaml:4:10: \$\{env:1X\}: expected an environment variable name/],
  ])('%s is an error at its file:line', (_why, line, expected) => {
    expect(errorOf(`health_checks:\n  - name: a\n    type: http\n    ${line}\n`)).toMatch(expected);
  });

  it('a resolved value that fails validation is not printed back', () => {
    process.env.CB_TEST_URL = 'ftp://user:PLANTED-SECRET@h/';
    const message = errorOf('health_checks:\n  - {name: a, type: http, url: "${env:CB_TEST_URL}"}\n');
    expect(message).toMatch(/health_checks\[0\]\.url: must be an http/);
    expect(message).not.toContain('PLANTED-SECRET');
    delete process.env.CB_TEST_URL;
  });

  it('a URL password in a config error is masked (item 7)', () => {
    const message = errorOf('health_checks:\n  - {name: a, type: http, url: "ftp://user:SECRET-IN-URL@h/"}\n');
    expect(message).toContain('ftp://user:***@h/');
    expect(message).not.toContain('SECRET-IN-URL');
  });
});

describe('vms.NAME.address: an IP literal or a host name (item 1)', () => {
  it.each(['10.0.0.5', 'fd00::5', 'vm1.example.org', 'localhost', 'web-1'])('%s is accepted', (address) => {
    expect(parseConfig(`vms:\n  x: {address: "${address}"}\n`, 'c.yaml').vms.x!.address).toBe(address);
  });
  it.each([
    ['$(touch PWNED)', /must be an IPv4 or IPv6 address or a host name/],
    ['10.0.0.1 -oProxyCommand=x', /must be an IPv4 or IPv6 address or a host name/],
    ['fe80::1%eth0', /without a zone id/],
    ['[fd00::5]', /without brackets: fd00::5/],
    ['-oProxyCommand=x', /must be an IPv4/],
    ['a..b', /must be an IPv4/],
  ])('%s is refused at its line', (address, expected) => {
    const message = errorOf(`vms:\n  x:\n    address: "${address}"\n`);
    expect(message).toMatch(/^c\.yaml:3:\d+: vms\.x\.address: /);
    expect(message).toMatch(expected);
  });
});

describe('addresses from libvirt', () => {
  it.each([
    ['10.0.0.1', 'ipv4', true],
    ['fd00::1', 'ipv6', true],
    ['10.0.0.1', 'ipv6', false],
    ['fe80::1%eth0', 'ipv6', false],
    ['$(touch${IFS}PWNED)', 'ipv4', false],
    ['010.0.0.1', 'ipv4', false],
    ['10.0.0.1\n', 'ipv4', false],
  ] as const)('%j is an %s literal: %s', (address, family, ok) => expect(isIpLiteral(address, family)).toBe(ok));

  it('a refused value is named escaped', () => {
    expect(addressProblem('a\nb\u202e', 'ipv4')).toBe('ignored "a\\\\nb\\\\u202e": not an IPv4 address');
    expect(configAddressProblem('x y')).toMatch(/host name/);
  });
});

describe('a bad glob (item 5)', () => {
  it.each([
    ['[z-a]', /invalid VM pattern "\[z-a\]": the range z-a runs backwards/],
    ['web-[9-1]*', /the range 9-1 runs backwards/],
  ])('%s is one sentence', (glob, expected) => {
    expect(() => globToRegExp(glob)).toThrow(SelectorError);
    expect(() => globToRegExp(glob)).toThrow(expected);
  });
  it('valid globs still work, and a long run of * stays fast', () => {
    expect(globToRegExp('web-[1-3]').test('web-2')).toBe(true);
    expect(globToRegExp('[!w]*').test('db-1')).toBe(true);
    expect(globToRegExp('a[\\]').test('a\\')).toBe(true);
    const t0 = performance.now();
    expect(globToRegExp(`${'*'.repeat(40)}x`).test('a'.repeat(5000))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('printable: names shown to people', () => {
  it.each([
    ['web-1', 'web-1'],
    ['nl\nFAKE', 'nl\\nFAKE'],
    ['\x1b[2J', '\\x1b[2J'],
    ['evil\u202etxt.exe', 'evil\\u202etxt.exe'],
    ['iso\u2066x\u2069', 'iso\\u2066x\\u2069'],
    ['tab\there', 'tab\\there'],
    ['c1\u0085', 'c1\\x85'],
    ['ünïcödé ok', 'ünïcödé ok'],
  ])('%j → %s', (raw, shown) => {
    expect(printable(raw)).toBe(shown);
    expect(needsEscaping(raw)).toBe(raw !== shown);
  });
});

describe('redactText / redactDeep', () => {
  it.each([
    ['postgres://clonebox:S3CRET-PW@127.0.0.1:1/clonebox', 'postgres://clonebox:***@127.0.0.1:1/clonebox'],
    ['GET http://h:8080/x?api_token=abc&plain=1 failed', 'GET http://h:8080/x?api_token=***&plain=1 failed'],
    ['http://h/x?key=abc&access_key=def&sig=z', 'http://h/x?key=***&access_key=***&sig=***'],
    ['host=db password=hunter22 user=x', 'host=db password=*** user=x'],
    ['http://h:80/health', 'http://h:80/health'],
    ['http://user@h/', 'http://user@h/'],
  ])('%s', (raw, shown) => expect(redactText(raw)).toBe(shown));

  it('masks registered secrets in nested details, keys kept', () => {
    registerSecret('TOKEN-abcdef');
    expect(redactDeep({ body: 'auth: Bearer TOKEN-abcdef', n: 3, list: ['x TOKEN-abcdef'], nested: { 'TOKEN-abcdef': 'ok' } })).toEqual({
      body: 'auth: Bearer ***',
      n: 3,
      list: ['x ***'],
      nested: { 'TOKEN-abcdef': 'ok' },
    });
  });

  it('copies only what it masks: the input is never changed, clean parts are shared, a clean value is returned as is', () => {
    registerSecret('TOKEN-ghijkl');
    const clean = { a: 'x', deep: { b: ['y', 2] } };
    const input = { secret: ['fine', { s: 'TOKEN-ghijkl here' }], clean };
    const out = redactDeep(input);
    expect(out).toEqual({ secret: ['fine', { s: '*** here' }], clean: { a: 'x', deep: { b: ['y', 2] } } });
    expect(input.secret[1]).toEqual({ s: 'TOKEN-ghijkl here' });
    expect(out.clean).toBe(clean);
    expect(redactDeep(clean)).toBe(clean);
  });

  it('ignores values too short to be secrets', () => {
    registerSecret('ab');
    expect(redactText('abc')).toBe('abc');
  });
});
