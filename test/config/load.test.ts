import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/duration.js';

function errorOf(yaml: string): string {
  try {
    parseConfig(yaml, 'c.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['1m', 60_000],
    ['300s', 300_000],
    ['1h30m', 5_400_000],
    ['7d', 604_800_000],
    ['2', 2000],
    [1.5, 1500],
  ] as const)('%s is %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'fast', '5 s', '-5s', '5sec', 'm5', -1])('%j is not a duration', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('parseConfig', () => {
  it('applies the seed defaults', () => {
    const c = parseConfig('health_checks:\n  - {name: a, type: command, exec: "true"}\n  - {name: d, type: disk}\n', 'c.yaml');
    expect(c.health_checks[0]).toMatchObject({ timeout: 5000, interval: 30_000, failure_threshold: 3, success_threshold: 1, critical: false, exit_code: 0, tags: [] });
    expect(c.health_checks[1]).toMatchObject({ path: '/', warning_percent: 80, critical_percent: 90 });
  });

  it('accepts every key of the seed schema', () => {
    const yaml = `
health_checks:
  - name: api-health
    type: http
    url: http://localhost:8000/health
    method: get
    headers: {Authorization: Bearer x}
    expected_status: 200
    expected_body: ok
    expected_json: {status: ok, db: {status: ok}}
    timeout: 500ms
    interval: 1m
    failure_threshold: 2
    success_threshold: 2
    critical: false
    on_failure: systemctl restart uvicorn
    on_recovery: echo back
    description: the API
    tags: [web]
  - {name: pg, type: tcp, host: localhost, port: 5432}
  - {name: ping, type: command, exec: redis-cli ping, expected_output: PONG, exit_code: 0}
  - {name: s, type: script, path: /opt/check.sh}
  - {name: disk, type: disk, path: /var, warning_percent: 70, critical_percent: 95}
  - {name: mem, type: memory, warning_percent: 85, critical_percent: 95}
`;
    const c = parseConfig(yaml, 'c.yaml');
    expect(c.health_checks.map((h) => h.type)).toEqual(['http', 'tcp', 'command', 'script', 'disk', 'memory']);
    expect(c.health_checks[0]).toMatchObject({ method: 'GET', timeout: 500, interval: 60_000, critical: false });
  });

  it('an empty file is a config with no checks', () => {
    expect(parseConfig('', 'c.yaml').health_checks).toEqual([]);
  });

  // Each case: the config, and what the one error line must say (file:line:column, key path, expectation).
  it.each([
    ['not YAML', 'health_checks: [1\nx: 2\n', /^c\.yaml:2:1: not valid YAML/],
    ['a list at the top', '- a\n', /c\.yaml:1:1: expected a mapping/],
    ['a wrong type', 'health_checks:\n  - {name: a, type: tcp, port: "x"}\n', /c\.yaml:2:32: health_checks\[0\]\.port: expected number, got string "x"/],
    ['an unknown probe type', 'health_checks:\n  - name: a\n    type: htp\n', /c\.yaml:3:11: health_checks\[0\]\.type: unknown check type "htp".*did you mean "http"/],
    ['a missing type', 'health_checks:\n  - name: a\n', /health_checks\[0\]\.type: missing check type/],
    ['a negative timeout', 'health_checks:\n  - {name: a, type: memory, timeout: -5}\n', /c\.yaml:2:38: health_checks\[0\]\.timeout: expected a duration/],
    ['a zero timeout', 'health_checks:\n  - {name: a, type: memory, timeout: 0s}\n', /health_checks\[0\]\.timeout: must be longer than 0/],
    ['a port out of range', 'health_checks:\n  - {name: a, type: tcp, port: 70000}\n', /health_checks\[0\]\.port: must be a port from 1 to 65535/],
    ['a typo in a check key', 'health_checks:\n  - name: a\n    type: command\n    exec: "true"\n    exit_cod: 1\n', /c\.yaml:5:5: health_checks\[0\]\.exit_cod: unknown key; did you mean "exit_code"\?/],
    ['a typo at the top', 'helth_checks: []\n', /c\.yaml:1:1: helth_checks: unknown key; did you mean "health_checks"\?/],
    ['a typo in ssh settings', 'ssh:\n  usr: root\n', /c\.yaml:2:3: ssh\.usr: unknown key; did you mean "user"\?/],
    ['a key of another type', 'health_checks:\n  - {name: a, type: tcp, port: 1, url: "http://x"}\n', /health_checks\[0\]\.url: unknown key/],
    ['duplicate check names', 'health_checks:\n  - {name: a, type: memory}\n  - {name: a, type: disk}\n', /c\.yaml:3:12: health_checks\[1\]\.name: duplicate check name "a"/],
    ['a duplicate YAML key', 'health_checks: []\nhealth_checks: []\n', /c\.yaml:2:1: not valid YAML: Map keys must be unique/],
    ['warning above critical', 'health_checks:\n  - {name: d, type: disk, warning_percent: 95}\n', /warning_percent must not be above critical_percent/],
    ['a bad url', 'health_checks:\n  - {name: h, type: http, url: "ftp://x"}\n', /health_checks\[0\]\.url: must be an http/],
    ['a bad method', 'health_checks:\n  - {name: h, type: http, url: "http://x", method: FETCH}\n', /health_checks\[0\]\.method/],
    ['a bad per-VM check', 'vms:\n  web-1:\n    health_checks:\n      - {name: a, type: tcp}\n', /c\.yaml:4:9: vms\.web-1\.health_checks\[0\]\.port: required key is missing/],
    ['a bad address source', 'libvirt:\n  address_source: dhcp\n', /libvirt\.address_source/],
  ])('%s', (_why, yaml, expected) => {
    expect(errorOf(yaml)).toMatch(expected);
  });

  it('reports every problem, not just the first', () => {
    const message = errorOf('health_checks:\n  - {name: a, type: tcp, port: 0}\n  - {name: b, type: disk, path: 3}\n');
    expect(message.split('\n')).toHaveLength(2);
  });

  it('never prints a stack trace', () => {
    expect(errorOf('health_checks: [')).not.toMatch(/\n\s+at /);
  });
});

describe('alerting config errors', () => {
  it('never echo a provider value that may hold a secret', () => {
    const text = [
      'alerting:',
      '  providers:',
      '    - type: slack',
      '      url: hooks.slack.com/services/T0/B0/sup3rs3cret',
      '    - { type: email, host: smtp, from: a@b.c, to: x@y.z, password: 12345 }',
    ].join('\n');
    let message = '';
    try {
      parseConfig(text, 'a.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/a\.yaml:4:12: alerting\.providers\[0\]\.url: must be an http/);
    expect(message).toMatch(/alerting\.providers\[1\]\.password: expected string, got a number \(not shown/);
    expect(message).not.toMatch(/sup3rs3cret|12345/);
  });

  it('checks that routes name configured providers, and provider names are unique', () => {
    const text = [
      'alerting:',
      '  providers:',
      '    - { type: webhook, url: "http://127.0.0.1:1/a" }',
      '    - { type: webhook, url: "http://127.0.0.1:1/b" }',
      '  routes:',
      '    - providers: [pager]',
    ].join('\n');
    expect(() => parseConfig(text, 'a.yaml')).toThrow(/duplicate provider name "webhook"[\s\S]*no provider named "pager"/);
  });
});
