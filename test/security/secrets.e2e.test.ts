/**
 * Secrets planted in the config (a URL password, a token query parameter, credential headers, an
 * `${env:…}` and a `${file:…}` reference, a store DSN password) never come out: not in any output
 * format, not with --verbose, not in errors, not in the history store. The doors of issue 16 item 3
 * and 7: a server that echoes the Authorization header in its error page, a command that prints a
 * password, a store that cannot be opened.
 */
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLab, isRoot, type Lab } from '../lab/lab.js';
import { labConfigYaml } from '../support/fleet-run.js';
import { clonebox, tempDir } from './support.js';

const SECRETS = {
  urlPassword: 'URLPASS-7c1e',
  queryToken: 'QUERYTOKEN-55ab',
  bearer: 'BEARERTOKEN-91f0',
  apiKey: 'APIKEYVALUE-3d2e',
  envPassword: 'ENVPASSWORD-a8c4',
  filePassword: 'FILEPASSWORD-0b7d',
  dsnPassword: 'S3CRET-PW',
};
const basic = Buffer.from(`probe:${SECRETS.urlPassword}`).toString('base64');
const FORBIDDEN = [...Object.values(SECRETS), basic];

function expectNoSecret(text: string, where: string): void {
  for (const s of FORBIDDEN) expect(text.includes(s), `${where} shows ${s}:\n${text.slice(0, 3000)}`).toBe(false);
}

const lab = isRoot() ? await ensureLab() : undefined;
(lab ? describe : describe.skip)('secrets never come out', () => {
  const L = lab as Lab;
  let server: Server;
  let port = 0;
  let dir = '';
  let config = '';
  const env = { CB_TOKEN: SECRETS.bearer, CB_DBPASS: SECRETS.envPassword };

  beforeAll(async () => {
    // A real HTTP server on the host's loopback (127.0.0.2: not "the guest") that echoes what it was sent, as careless error pages do.
    server = createServer((req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`error for ${req.url}\nauthorization: ${req.headers.authorization ?? '-'}\nx-api-key: ${req.headers['x-api-key'] ?? '-'}\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.2', r));
    port = (server.address() as AddressInfo).port;
    dir = tempDir('secrets');
    const secretFile = path.join(dir, 'db-password');
    writeFileSync(secretFile, `${SECRETS.filePassword}\n`);
    config = path.join(dir, '.clonebox.yaml');
    writeFileSync(
      config,
      labConfigYaml(L, [
        {
          name: 'echo-headers',
          type: 'http',
          url: `http://127.0.0.2:${port}/health?api_token=${SECRETS.queryToken}&plain=1`,
          headers: { Authorization: 'Bearer ${env:CB_TOKEN}', 'X-Api-Key': SECRETS.apiKey },
          failure_threshold: 1,
          timeout: '3s',
        },
        { name: 'echo-basic', type: 'http', url: `http://probe:${SECRETS.urlPassword}@127.0.0.2:${port}/basic`, failure_threshold: 1, timeout: '3s' },
        // A command that prints its password: the env and file references are resolved, run, and masked in what it printed.
        {
          name: 'prints-password',
          type: 'command',
          exec: `echo "db password \${env:CB_DBPASS} and \${file:${secretFile}}"; exit 1`,
          failure_threshold: 1,
          timeout: '5s',
          // An action holding a secret: its command is recorded and its output kept, both masked.
          on_failure: { command: 'echo "reset with ${env:CB_DBPASS}"', where: 'host' },
        },
      ]),
    );
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('every output format and --verbose mask them, and the checks still say what happened', async () => {
    const store = path.join(dir, 'health.db');
    const r = await clonebox(['health', 'check', 'web-1', '--config', config, '--store', store, '-o', 'json', '-o', 'table', '-o', 'junit', '-o', 'prometheus', '-o', 'nagios', '-o', 'tap', '--verbose'], { env });
    expectNoSecret(r.stdout, 'stdout');
    expectNoSecret(r.stderr, 'stderr');
    const json = JSON.parse(r.stdout.slice(0, r.stdout.indexOf('\n}\n') + 2)) as { reports: { checks: { name: string; status: string; details: Record<string, unknown> }[] }[] };
    const checks = Object.fromEntries(json.reports[0]!.checks.map((c) => [c.name, c]));
    expect(checks['echo-headers']!.status).toBe('UNHEALTHY');
    expect(String(checks['echo-headers']!.details.body)).toMatch(/authorization: (Bearer )?\*\*\*/);
    expect(String(checks['echo-headers']!.details.url)).toContain('api_token=***&plain=1');
    expect(String(checks['echo-basic']!.details.body)).toMatch(/authorization: (Basic )?\*\*\*/);
    expect(checks['prints-password']!.status).toBe('UNHEALTHY');
    expect(String(checks['prints-password']!.details.stdout)).toBe('db password *** and ***\n');

    expect(r.stderr).toMatch(/action web-1\/prints-password: on_failure "echo "reset with \*\*\*"" ok/);
    const h = await clonebox(['health', 'history', 'web-1', '--store', store, '--json', '--last', '1h']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('echo-headers');
    expect(h.stdout).toContain('reset with ***');
    expectNoSecret(h.stdout + h.stderr, 'history');
  });

  it.each([
    ['health', 'check', 'web-1'],
    ['health', 'history', 'web-1'],
    ['health', 'watch', 'web-1'],
  ])('a store that cannot be opened is named once, password masked (%s %s)', async (...cmd) => {
    const dsn = `postgres://clonebox:${SECRETS.dsnPassword}@127.0.0.1:1/clonebox`;
    const r = await clonebox([...cmd, '--config', config, '--store', dsn], { env, timeoutMs: 60_000 });
    expect(r.code).toBe(3);
    expectNoSecret(r.stdout + r.stderr, 'store error');
    expect(r.stderr.match(/cannot open the history store/g)).toHaveLength(1);
    expect(r.stderr).toContain('postgres://clonebox:***@127.0.0.1:1/clonebox');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a config error that echoes a URL or a resolved secret masks it', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      [
        'health_checks:',
        '  - name: a',
        '    type: http',
        `    url: ftp://user:${SECRETS.urlPassword}@example.org/`,
        '  - name: b',
        '    type: http',
        '    url: ${env:CB_DBPASS}',
      ].join('\n'),
    );
    const r = await clonebox(['health', 'check', 'web-1', '--config', bad], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/bad\.yaml:4:\d+: health_checks\[0\]\.url: must be an http/);
    expect(r.stderr).toMatch(/bad\.yaml:7:\d+: health_checks\[1\]\.url: must be an http/);
    expectNoSecret(r.stderr, 'config error');
  });
});
