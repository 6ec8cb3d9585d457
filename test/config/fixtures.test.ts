/**
 * The example configs in fixtures/ (which docs/config-reference.md shows) load without a problem, and
 * the generated JSON Schema agrees with the loader: it accepts every valid example and rejects what
 * the loader rejects wherever JSON Schema can say so.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../../src/config/duration.js';
import { configJsonSchema, DESCRIPTIONS, DURATION_PATTERN } from '../../src/config/json-schema.js';
import { parseConfig } from '../../src/config/load.js';
import { CHECK_TYPES, CommandCheck, DiskCheck, DnsCheck, GrpcCheck, HttpCheck, MemoryCheck, ScriptCheck, TcpCheck } from '../../src/config/schema.js';
import { optionalImport } from '../outputs/optional.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const files = readdirSync(FIXTURES)
  .filter((n) => n.endsWith('.yaml'))
  .sort();
const load = (name: string) => readFileSync(`${FIXTURES}${name}`, 'utf8');

interface AjvError {
  instancePath: string;
  message?: string;
}
type Validate = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
type AjvCtor = new (options: Record<string, unknown>) => { compile(schema: unknown): Validate };
const ajvModule = await optionalImport<{ default: AjvCtor }>('ajv');
// Strict mode: Ajv also refuses a schema with unknown keywords or ambiguous types.
const validate = ajvModule ? new ajvModule.default({ strict: true, allowUnionTypes: true, allErrors: true }).compile(configJsonSchema()) : undefined;
const schemaErrors = (data: unknown) => (validate!(data) ? [] : (validate!.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));

describe('fixtures/*.yaml', () => {
  it('has the examples the docs promise: minimal, web+db, one per probe type, per-VM overrides', () => {
    expect(files).toEqual(
      expect.arrayContaining(['minimal.yaml', 'web-db.yaml', 'per-vm-overrides.yaml', ...CHECK_TYPES.map((t) => `probe-${t}.yaml`)]),
    );
  });

  it.each(files)('%s loads with parseConfig', (name) => {
    const config = parseConfig(load(name), name);
    expect(config.health_checks.length + Object.values(config.vms).reduce((n, vm) => n + vm.health_checks.length, 0)).toBeGreaterThan(0);
  });

  it.each(files)('%s points editors at the JSON Schema', (name) => {
    expect(load(name)).toContain('# yaml-language-server: $schema=../docs/clonebox.schema.json');
  });

  it.each(CHECK_TYPES)('probe-%s.yaml uses every key of its own type', (type) => {
    const shapes = { http: HttpCheck, tcp: TcpCheck, command: CommandCheck, script: ScriptCheck, disk: DiskCheck, memory: MemoryCheck, grpc: GrpcCheck, dns: DnsCheck };
    const keysOf = (t: keyof typeof shapes) => Object.keys(shapes[t].shape);
    const common = keysOf('tcp').filter((k) => CHECK_TYPES.every((t) => keysOf(t).includes(k)));
    const raw = parseYaml(load(`probe-${type}.yaml`)) as { health_checks: Record<string, unknown>[] };
    const used = new Set(raw.health_checks.flatMap((c) => Object.keys(c)));
    for (const key of keysOf(type).filter((k) => !common.includes(k))) expect(used, `${type}: ${key}`).toContain(key);
  });

  it.skipIf(!validate).each(files)('%s is valid against docs/clonebox.schema.json', (name) => {
    expect(schemaErrors(parseYaml(load(name)))).toEqual([]);
  });
});

describe('the JSON Schema agrees with the loader', () => {
  const valid: Array<[string, string]> = [
    ['bare-number and fractional durations', 'health_checks: [{name: a, type: tcp, port: 1, timeout: 2.5, interval: 1h30m}]'],
    ['a method in any case', 'health_checks: [{name: a, type: http, url: "https://x/", method: post}]'],
    ['a list of expected statuses and nested expected_json', 'health_checks: [{name: a, type: http, url: "http://x/", expected_status: [200, 301], expected_json: {a: {b: [1, null, true]}}}]'],
    ['one address source', 'libvirt: {address_source: agent}\nhealth_checks: []'],
    ['an empty file body', '{}'],
  ];
  const invalid: Array<[string, string]> = [
    ['an unknown top-level key', 'helth_checks: []'],
    ['an unknown check key', 'health_checks: [{name: a, type: tcp, port: 1, prot: 2}]'],
    ['an unknown check type', 'health_checks: [{name: a, type: ping}]'],
    ['a missing required key', 'health_checks: [{name: a, type: tcp}]'],
    ['a port out of range', 'health_checks: [{name: a, type: tcp, port: 70000}]'],
    ['a duration with a unit typo', 'health_checks: [{name: a, type: tcp, port: 1, timeout: 5sec}]'],
    ['a negative duration', 'health_checks: [{name: a, type: tcp, port: 1, timeout: -1}]'],
    ['a bad check name', 'health_checks: [{name: "-a b", type: tcp, port: 1}]'],
    ['an unknown method', 'health_checks: [{name: a, type: http, url: "http://x/", method: FETCH}]'],
    ['a non-http url', 'health_checks: [{name: a, type: http, url: "ftp://x/"}]'],
    ['a percent over 100', 'health_checks: [{name: a, type: disk, warning_percent: 101}]'],
    ['an unknown ssh key', 'ssh: {usr: root}\nhealth_checks: []'],
    ['an unknown host key policy', 'ssh: {host_key_policy: yolo}\nhealth_checks: []'],
    ['an unknown per-VM key', 'vms: {web-1: {adress: 1.2.3.4}}\nhealth_checks: []'],
  ];

  it.each(valid)('both accept %s', (_why, yaml) => {
    expect(() => parseConfig(yaml, 'c.yaml')).not.toThrow();
    if (validate) expect(schemaErrors(parseYaml(yaml))).toEqual([]);
  });

  it.each(invalid)('both reject %s', (_why, yaml) => {
    expect(() => parseConfig(yaml, 'c.yaml')).toThrow();
    if (validate) expect(schemaErrors(parseYaml(yaml))).not.toEqual([]);
  });

  it.each(['500ms', '5s', '1m', '300s', '1h30m', '7d', '2', '2.5', ' 5s ', '1.5h', '', 'fast', '5 s', '-5s', '5sec', 'm5', '5S'])(
    'the duration pattern agrees with parseDuration on %j',
    (text) => expect(new RegExp(DURATION_PATTERN).test(text)).toBe(parseDuration(text) !== undefined),
  );

  it('shows durations and the method default as a person writes them, not as parsed values', () => {
    const http = (configJsonSchema() as { properties: { health_checks: { items: { oneOf: Array<{ properties: Record<string, { default?: unknown }> }> } } } }).properties
      .health_checks.items.oneOf[0]!.properties;
    expect([http.timeout!.default, http.interval!.default, http.method!.default, http.expected_status!.default]).toEqual(['5s', '30s', 'GET', 200]);
  });

  it('describes every key of every section (hover text in editors, and the reference docs)', () => {
    const missing: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      for (const [key, prop] of Object.entries((n.properties as Record<string, Record<string, unknown>>) ?? {})) {
        if (!prop.description) missing.push(`${at}.${key}`);
        walk(prop, `${at}.${key}`);
      }
      walk(n.additionalProperties, `${at}.*`);
      walk(n.items, `${at}[]`);
      for (const [i, v] of ((n.oneOf as unknown[]) ?? []).entries()) walk(v, `${at}<${i}>`);
    };
    walk(configJsonSchema(), '');
    expect(missing).toEqual([]);
    expect(Object.keys(DESCRIPTIONS)).toEqual(expect.arrayContaining([...CHECK_TYPES]));
  });
});
