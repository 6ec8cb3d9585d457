/**
 * Plugin probe types: how a config loads them (errors at the file's line, like any key), what the
 * schema says of them, and how a misbehaving plugin is contained: a throw, a hang, or an answer that
 * is not an outcome gives its check UNKNOWN with the reason, never a broken run.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { loadConfig, loadConfigPlugins, parseConfig } from '../../src/config/load.js';
import type { HealthCheck } from '../../src/config/schema.js';
import { runCheck } from '../../src/engine/run-checks.js';
import { registerProbe, unregisterProbes, type ProbePlugin } from '../../src/probes/plugins.js';
import type { ProbeTarget } from '../../src/probes/types.js';
import { TransportError } from '../../src/transport/types.js';

const REDIS_PLUGIN = fileURLToPath(new URL('../../fixtures/plugins/redis.mjs', import.meta.url));

afterEach(() => unregisterProbes());

/** A config file in a fresh directory, with plugin files beside it. */
async function configWith(yaml: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-plugins-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  const file = path.join(dir, '.clonebox.yaml');
  await writeFile(file, yaml);
  return file;
}

async function loadError(file: string): Promise<string> {
  try {
    await loadConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const redisConfig = (checks: string) => `plugins:\n  - ${REDIS_PLUGIN}\nhealth_checks:\n${checks}`;

describe('loading plugins', () => {
  it('a plugin path is relative to the config file, and its check gets the common keys and defaults', async () => {
    const file = await configWith('plugins: [./probes/echo.mjs]\nhealth_checks:\n  - {name: e, type: echo, word: hi, timeout: 2s}\n');
    await writeFile(path.join(path.dirname(file), 'probes.mjs'), ''); // a decoy: the path is ./probes/echo.mjs
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(path.dirname(file), 'probes'));
    await writeFile(
      path.join(path.dirname(file), 'probes', 'echo.mjs'),
      `export default ({ registerProbe }) => registerProbe('echo', { schema: (z) => ({ word: z.string(), times: z.number().int().default(1) }), run: async (c) => ({ status: 'HEALTHY', message: c.word }) });\n`,
    );
    const config = await loadConfig(file);
    expect(config.health_checks[0]).toMatchObject({ name: 'e', type: 'echo', word: 'hi', times: 1, timeout: 2000, interval: 30_000, failure_threshold: 3, critical: false });
  });

  it('the declarative form: export type, schema and run', async () => {
    const file = await configWith('plugins: [./ping.mjs]\nhealth_checks:\n  - {name: p, type: ping}\n', {
      'ping.mjs': `export const type = 'ping';\nexport const schema = (z) => ({ count: z.number().default(3) });\nexport async function run(check) { return { status: 'HEALTHY', message: String(check.count) }; }\n`,
    });
    expect((await loadConfig(file)).health_checks[0]).toMatchObject({ type: 'ping', count: 3 });
  });

  it.each([
    ['a typo in a plugin key', '  - {name: r, type: redis, prot: 6379}\n', /\.clonebox\.yaml:4:\d+: health_checks\[0\]\.prot: unknown key; did you mean "port"\?/],
    ['a wrong value', '  - {name: r, type: redis, port: high}\n', /\.clonebox\.yaml:4:\d+: health_checks\[0\]\.port: expected number, got string "high"/],
    ['a typo in the type', '  - {name: r, type: rediss}\n', /unknown check type "rediss"; expected one of http, .*, dns, redis \(did you mean "redis"\?\)/],
  ])('%s is an error at its line, like any key', async (_why, checks, message) => {
    expect(await loadError(await configWith(redisConfig(checks)))).toMatch(message);
  });

  it("a plugin's type without its plugin says what is missing", () => {
    expect(() => parseConfig('health_checks:\n  - {name: r, type: redis}\n', 'c.yaml')).toThrow(/unknown check type "redis".*needs its module under plugins:/);
  });

  it.each([
    ['not found', 'plugins: [./nope.mjs]\n', {}, /\.clonebox\.yaml:1:11: plugins\[0\]: plugin \.\/nope\.mjs not found \(looked at .*nope\.mjs; paths are relative to the config file\)/],
    ['does not load', 'plugins:\n  - ./bad.mjs\n', { 'bad.mjs': 'export default (;\n' }, /\.clonebox\.yaml:2:5: plugins\[0\]: plugin \.\/bad\.mjs failed to load: /],
    ['takes a built-in type', 'plugins: [./p.mjs]\n', { 'p.mjs': "export default ({ registerProbe }) => registerProbe('http', { run: async () => ({}) });\n" }, /plugin \.\/p\.mjs: probe type "http" is a built-in type; give the plugin's type another name/],
    ['registers nothing', 'plugins: [./p.mjs]\n', { 'p.mjs': 'export const x = 1;\n' }, /plugin \.\/p\.mjs registers no probe type; export default/],
    ['has no run', 'plugins: [./p.mjs]\n', { 'p.mjs': "export default ({ registerProbe }) => registerProbe('x', {});\n" }, /registerProbe needs \{ run: async/],
    ['brings its own schema objects', 'plugins: [./p.mjs]\n', { 'p.mjs': "export default ({ registerProbe }) => registerProbe('x', { schema: () => ({ port: { type: 'number' } }), run: async () => ({}) });\n" }, /key "port" is not a schema made with the zod passed in/],
    ['redefines a common key', 'plugins: [./p.mjs]\n', { 'p.mjs': "export default ({ registerProbe, z }) => registerProbe('x', { schema: () => ({ timeout: z.number() }), run: async () => ({}) });\n" }, /key "timeout" is one every check already has/],
    ['throws while registering', 'plugins: [./p.mjs]\n', { 'p.mjs': "export default () => { throw new Error('no config for me'); };\n" }, /plugin \.\/p\.mjs: its registration threw: no config for me/],
    ['clashes with another plugin', 'plugins: [./a.mjs, ./b.mjs]\n', { 'a.mjs': "export const type = 'dup';\nexport const run = async () => ({});\n", 'b.mjs': "export const type = 'dup';\nexport const run = async () => ({});\n" }, /plugins\[1\]: plugin \.\/b\.mjs: probe type "dup" is already registered by .*a\.mjs/],
  ] as const)('a plugin that %s is a config error naming its entry', async (_why, yaml, files, message) => {
    expect(await loadError(await configWith(yaml, files))).toMatch(message);
  });

  it('loading the same config twice registers its plugins once (no clash with itself)', async () => {
    const file = await configWith(redisConfig('  - {name: r, type: redis}\n'));
    await loadConfig(file);
    await expect(loadConfig(file)).resolves.toMatchObject({ health_checks: [{ type: 'redis', port: 6379, host: 'localhost' }] });
  });

  it("health schema describes a plugin's check with its keys and descriptions", async () => {
    const plugins = await loadConfigPlugins(await configWith(redisConfig('  - {name: r, type: redis}\n')));
    const schema = configJsonSchema(plugins) as { properties: { health_checks: { items: { oneOf?: Record<string, unknown>[]; anyOf?: Record<string, unknown>[] } } } };
    const items = schema.properties.health_checks.items;
    const redis = (items.oneOf ?? items.anyOf)!.find((v) => v.title === 'redis check (plugin)') as { description: string; properties: Record<string, { description?: string; default?: unknown }> };
    expect(redis.description).toMatch(/PING with PONG/);
    expect(redis.properties.port).toMatchObject({ default: 6379, description: 'Redis port.' });
    expect(redis.properties.timeout?.description).toMatch(/deadline/);
    expect(JSON.stringify(configJsonSchema())).not.toContain('redis check');
  });
});

describe('a plugin at run time', () => {
  const target: ProbeTarget = {
    vm: 'vm-1',
    address: '10.0.0.1',
    exec: async () => ({ exitCode: 0, stdout: 'ok', stderr: '', stdoutTruncated: false, stderrTruncated: false }),
    connect: async () => {
      throw new TransportError('VM vm-1: SSH refused', 'refused');
    },
  };
  const p = (plugin: Partial<ProbePlugin>) => plugin;
  const check = (type: string, timeout = 400) => ({ name: 'p', type, timeout, critical: true }) as unknown as HealthCheck;
  const run = async (plugin: Partial<ProbePlugin>, timeout?: number) => {
    registerProbe('p', { run: async () => ({ status: 'HEALTHY', message: '' }), ...plugin });
    return runCheck(check('p', timeout), target, new AbortController().signal);
  };

  it.each([
    ['a valid outcome is kept, with the way it went', p({ run: async (_c, t) => ((await t.exec('x', { signal: new AbortController().signal })), { status: 'DEGRADED', message: 'slow', details: { n: 1 } }) }), 'DEGRADED', /^slow$/],
    ['it throws', p({ run: async () => { throw new Error('boom'); } }), 'UNKNOWN', /^plugin probe "p" \(library\) failed: boom$/],
    ['it throws before returning a promise', p({ run: (() => { throw new Error('sync boom'); }) as never }), 'UNKNOWN', /failed: sync boom/],
    ['it throws a non-Error', p({ run: async () => { throw 'just a string'; } }), 'UNKNOWN', /failed: "just a string"/],
    ['it returns a number', p({ run: (async () => 42) as never }), 'UNKNOWN', /returned no valid outcome: got 42/],
    ['it returns nothing', p({ run: (async () => undefined) as never }), 'UNKNOWN', /returned no valid outcome: got undefined/],
    ['it returns an unknown status', p({ run: (async () => ({ status: 'OK', message: 'fine' })) as never }), 'UNKNOWN', /status "OK" is not one of HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN/],
    ['it returns no message', p({ run: (async () => ({ status: 'HEALTHY' })) as never }), 'UNKNOWN', /message undefined is not a string/],
    ['its details are not JSON', p({ run: (async () => { const d: Record<string, unknown> = {}; d.self = d; return { status: 'HEALTHY', message: 'x', details: d }; }) as never }), 'UNKNOWN', /details cannot be written as JSON/],
    ['the transport fails', p({ run: async (_c, t) => ((await t.connect('localhost', 1, new AbortController().signal)), { status: 'HEALTHY', message: '' }) }), 'UNKNOWN', /SSH refused/],
    ['it stops when its deadline passes (the service was slow)', p({ run: (_c, _t, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))) }), 'UNHEALTHY', /^p did not finish within 400ms$/],
    ['it ignores its deadline and hangs', p({ run: () => new Promise(() => {}) }), 'UNKNOWN', /did not return within its timeout of 400ms; a plugin must stop when its signal aborts/],
  ] as const)('%s', async (_why, plugin, status, message) => {
    const r = await run(plugin);
    expect({ status: r.status, message: r.message }).toEqual({ status, message: expect.stringMatching(message) });
  });

  it('reports the way the plugin reached the VM when it does not say', async () => {
    const r = await run({ run: async (_c, t) => ((await t.exec('true', { signal: new AbortController().signal })), { status: 'HEALTHY', message: 'ok' }) });
    expect(r).toMatchObject({ transport: 'ssh', details: {} });
    const declared = await run({ transport: 'host', run: async () => ({ status: 'HEALTHY', message: 'ok' }) });
    expect(declared.transport).toBe('host');
  });

  it('a hung plugin gives UNKNOWN within its timeout plus the grace, before the engine\'s own backstop', async () => {
    const r = await run({ run: () => new Promise(() => {}) }, 300);
    expect(r.status).toBe('UNKNOWN');
    expect(r.duration_ms).toBeGreaterThanOrEqual(300);
  });

  it('registerProbe refuses a built-in type and a malformed name', () => {
    expect(() => registerProbe('tcp', { run: async () => ({ status: 'HEALTHY', message: '' }) })).toThrow(/built-in type/);
    expect(() => registerProbe('Bad Name', { run: async () => ({ status: 'HEALTHY', message: '' }) })).toThrow(/must be a lowercase name/);
  });

  it('a type registered by an embedding program is accepted by parseConfig', () => {
    registerProbe('kafka', { schema: (z) => ({ brokers: z.array(z.string()).min(1) }), run: async () => ({ status: 'HEALTHY', message: '' }) });
    expect(parseConfig('health_checks:\n  - {name: k, type: kafka, brokers: [a:9092]}\n', 'c.yaml').health_checks[0]).toMatchObject({ brokers: ['a:9092'] });
    expect(() => parseConfig('health_checks:\n  - {name: k, type: kafka, brokers: []}\n', 'c.yaml')).toThrow(/c\.yaml:2:\d+: health_checks\[0\]\.brokers/);
  });
});
