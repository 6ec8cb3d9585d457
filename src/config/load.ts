/**
 * Load `.clonebox.yaml`: parse with `yaml` (keeping positions), validate with the zod schema, and turn
 * every problem into `file:line:column: key.path: what was expected` with a "did you mean" for typos.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import type { RegisteredProbe } from '../probes/plugins.js';
import { didYouMean } from '../util/did-you-mean.js';
import { isSecretHeader, registerHeaderSecret, registerSecret, registerUrlSecrets } from '../util/redact.js';
import { ConfigError, formatPath, type ConfigProblem } from './errors.js';
import { importPlugins, libraryProbes, type PluginEntry } from './plugins.js';
import { resolveDocumentSecrets } from './secrets.js';
import {
  BUILTIN_CHECKS,
  buildConfigSchema,
  CHECK_TYPES,
  CloneboxConfig,
  HistorySettings,
  LibvirtSettings,
  SshSettings,
  VmSettings,
} from './schema.js';

export const DEFAULT_CONFIG_FILE = '.clonebox.yaml';

/** Check types and their keys: the built-in ones and those of the plugins in use (for "did you mean"). */
interface CheckKinds {
  keys: Record<string, readonly string[]>;
  types: readonly string[];
}

const BUILTIN_KEYS: Record<string, readonly string[]> = Object.fromEntries(
  BUILTIN_CHECKS.map((c) => [c.shape.type.value, Object.keys(c.shape)]),
);

function checkKinds(plugins: readonly RegisteredProbe[]): CheckKinds {
  const keys = { ...BUILTIN_KEYS, ...Object.fromEntries(plugins.map((p) => [p.type, Object.keys(p.check.shape)])) };
  return { keys, types: [...CHECK_TYPES, ...plugins.map((p) => p.type)] };
}

/** Keys that are valid in the object at `path` (for "did you mean"). */
function allowedKeys(path: readonly PropertyKey[], data: unknown, kinds: CheckKinds): readonly string[] {
  const last = path.at(-1);
  const parent = path.at(-2);
  if (path.length === 0) return Object.keys(CloneboxConfig.shape);
  if (path.length === 1 && last === 'ssh') return Object.keys(SshSettings.shape);
  if (path.length === 1 && last === 'libvirt') return Object.keys(LibvirtSettings.shape);
  if (path.length === 1 && last === 'history') return Object.keys(HistorySettings.shape);
  if (path.length === 2 && path[0] === 'vms') return Object.keys(VmSettings.shape);
  if (path.length === 3 && path[0] === 'vms' && last === 'ssh') return Object.keys(SshSettings.shape);
  if (typeof last === 'number' && parent === 'health_checks') {
    const type = valueAt(data, [...path, 'type']);
    return typeof type === 'string' && kinds.keys[type] ? kinds.keys[type] : [...new Set(Object.values(kinds.keys).flat())];
  }
  return [];
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let cur = data;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return cur;
}

/** An alerting provider's values (URLs with tokens, passwords, headers) are never echoed in an error. */
function shown(path: readonly PropertyKey[], value: unknown): string {
  if (path[0] === 'alerting' && path[1] === 'providers' && !['type', 'name', 'timeout', 'port'].includes(String(path.at(-1)))) {
    return typeof value === 'object' && value !== null ? describe(value) : `a ${typeof value} (not shown: it may hold a secret)`;
  }
  return describe(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** The YAML node at a path; with `key`, the node of that key inside the map at `path`. */
function nodeAt(doc: Document, path: readonly PropertyKey[], key?: string): Node | undefined {
  let node: unknown = doc.contents;
  let keyNode: Node | undefined;
  const steps = key === undefined ? path : [...path, key];
  for (const [i, part] of steps.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(part));
      if (!pair) return (node as Node) ?? undefined;
      keyNode = isScalar(pair.key) ? pair.key : undefined;
      if (key !== undefined && i === steps.length - 1) return keyNode;
      node = pair.value ?? keyNode;
    } else if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part];
      if (!item) return node as Node;
      node = item;
    } else {
      return (node as Node | null) ?? keyNode;
    }
  }
  return (node as Node | null) ?? keyNode;
}

function position(doc: Document, lines: LineCounter, path: readonly PropertyKey[], key?: string) {
  const node = nodeAt(doc, path, key);
  const offset = node?.range?.[0];
  if (offset === undefined) return {};
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

function problemFromIssue(
  issue: z.core.$ZodIssue,
  file: string,
  doc: Document,
  lines: LineCounter,
  data: unknown,
  kinds: CheckKinds,
): ConfigProblem[] {
  const path = issue.path;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const allowed = allowedKeys(path, data, kinds);
        const hint = didYouMean(key, allowed);
        return {
          file,
          ...position(doc, lines, path, key),
          path: formatPath([...path, key]),
          message: `unknown key${hint ? `; did you mean "${hint}"?` : ''}${
            hint ? '' : allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''
          }`,
        };
      });
    case 'invalid_union':
      if (issue.discriminator !== 'type') {
        // A union such as an action (a command string, or {command, where, timeout}): report the
        // problems of the branch whose shape the value has, not zod's "Invalid input".
        const branch = issue.errors.find((b) => b.length > 0 && !b.some((i) => i.code === 'invalid_type' && i.path.length === 0));
        if (branch) return branch.flatMap((i) => problemFromIssue({ ...i, path: [...path, ...i.path] } as z.core.$ZodIssue, file, doc, lines, data, kinds));
      }
      if (issue.discriminator === 'type') {
        const got = valueAt(data, path);
        const hint = typeof got === 'string' ? didYouMean(got, kinds.types) : undefined;
        const plugin = typeof got === 'string' && !hint && !kinds.types.includes(got) && (data as { plugins?: unknown }).plugins === undefined;
        return [
          {
            file,
            ...position(doc, lines, path),
            path: formatPath(path),
            message:
              got === undefined
                ? `missing check type; expected one of ${kinds.types.join(', ')}`
                : `unknown check type ${JSON.stringify(got)}; expected one of ${kinds.types.join(', ')}${hint ? ` (did you mean "${hint}"?)` : ''}${
                    plugin ? ' (a plugin\'s type needs its module under plugins:)' : ''
                  }`,
          },
        ];
      }
      break;
    case 'invalid_type': {
      const got = valueAt(data, path);
      return [
        {
          file,
          ...position(doc, lines, path),
          path: formatPath(path),
          message: got === undefined ? `required key is missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${shown(path, got)}`,
        },
      ];
    }
    default:
      break;
  }
  const got = valueAt(data, path);
  const suffix = got !== undefined && typeof got !== 'object' && !issue.message.includes('got ') ? `, got ${shown(path, got)}` : '';
  return [{ file, ...position(doc, lines, path), path: formatPath(path), message: `${issue.message}${suffix}` }];
}

function duplicateNames(config: CloneboxConfig, file: string, doc: Document, lines: LineCounter): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const lists: Array<{ prefix: PropertyKey[]; checks: { name: string }[] }> = [
    { prefix: ['health_checks'], checks: config.health_checks },
    ...Object.entries(config.vms).map(([vm, s]) => ({ prefix: ['vms', vm, 'health_checks'], checks: s.health_checks })),
  ];
  for (const { prefix, checks } of lists) {
    const seen = new Map<string, number>();
    checks.forEach((c, i) => {
      const first = seen.get(c.name);
      if (first !== undefined) {
        const at = [...prefix, i, 'name'];
        problems.push({
          file,
          ...position(doc, lines, at),
          path: formatPath(at),
          message: `duplicate check name ${JSON.stringify(c.name)} (first used at ${formatPath([...prefix, first])}); names must be unique`,
        });
      } else seen.set(c.name, i);
    });
  }
  return problems;
}

/**
 * What the config itself marks as secret, masked from now on wherever it shows up (a server echoing
 * an Authorization header in its error page, a URL password in an error): credential headers, URL
 * passwords and secret-named query values, the store DSN's password.
 */
function registerConfigSecrets(config: CloneboxConfig): void {
  const checks = [...config.health_checks, ...Object.values(config.vms).flatMap((v) => v.health_checks)];
  for (const c of checks) {
    if (c.type !== 'http') continue;
    registerUrlSecrets(c.url);
    for (const [name, value] of Object.entries(c.headers)) if (isSecretHeader(name)) registerHeaderSecret(value);
  }
  if (config.history?.store) registerUrlSecrets(config.history.store);
  for (const p of config.alerting?.providers ?? []) {
    if ('url' in p && typeof p.url === 'string') {
      registerUrlSecrets(p.url);
      // A Slack-style webhook's path is its token.
      if (p.type === 'slack') registerSecret(new URL(p.url).pathname.replace(/^\/+/, '') || undefined);
    }
    if ('headers' in p) for (const [name, value] of Object.entries(p.headers)) if (isSecretHeader(name)) registerHeaderSecret(value);
    if (p.type === 'email') registerSecret(p.password);
  }
  if (config.libvirt.uri) registerUrlSecrets(config.libvirt.uri);
}

export interface ParseOptions {
  /** Plugin probe types the config may use. Default: those an embedding program registered. */
  plugins?: readonly RegisteredProbe[];
}

/**
 * Parse config text. Throws ConfigError with every problem found. Plugins named under `plugins:`
 * must already be imported and passed in (loadConfig does both).
 */
export function parseConfig(text: string, file: string, options: ParseOptions = {}): CloneboxConfig {
  const plugins = options.plugins ?? libraryProbes();
  const kinds = checkKinds(plugins);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.slice(0, 5).map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return { file, line, column: col, path: '', message: `not valid YAML: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  const unresolved = resolveDocumentSecrets(doc);
  if (unresolved.length > 0) {
    throw new ConfigError(
      unresolved.map((p) => {
        const { line, col } = lines.linePos(p.offset);
        return { file, line, column: col, path: '', message: p.message };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // yaml's guard against alias bombs (billion laughs): the limit is right, the message is a library's.
    const why = /alias/i.test((err as Error).message)
      ? 'too many YAML aliases (*name) expand here; the file is refused to protect the host: write the values out or use fewer aliases'
      : `cannot read the YAML: ${(err as Error).message.split('\n')[0]}`;
    throw new ConfigError([{ file, path: '', message: why }]);
  }
  if (typeof data !== 'object' || Array.isArray(data) || data === null) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: `expected a mapping with a health_checks: list, got ${describe(data)}` }]);
  }
  const result = buildConfigSchema(plugins.map((p) => p.check)).safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue) => problemFromIssue(issue, file, doc, lines, data, kinds));
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw new ConfigError(problems);
  }
  const dups = duplicateNames(result.data, file, doc, lines);
  if (dups.length) throw new ConfigError(dups);
  registerConfigSecrets(result.data);
  return result.data;
}

/** Read and parse a config file. A missing file is a ConfigError that says what to do. */
export async function loadConfig(file: string): Promise<CloneboxConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `config file not found; create ${DEFAULT_CONFIG_FILE} with a health_checks: list (see docs/configuration.md) or pass --config FILE`
        : `cannot read config file: ${(err as Error).message}`;
    throw new ConfigError([{ file, path: '', message }]);
  }
  const plugins = await importPlugins(pluginEntries(text), file);
  return parseConfig(text, file, { plugins: [...libraryProbes(), ...plugins] });
}

/**
 * The `plugins:` entries of config text, with their positions. Anything malformed yields none:
 * parseConfig then reports it with the rest.
 */
export function pluginEntries(text: string): PluginEntry[] {
  if (!/^plugins\s*:/m.test(text)) return [];
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) return [];
  const list: unknown = (doc.toJS({ maxAliasCount: 100 }) as { plugins?: unknown } | null)?.plugins;
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && p.length > 0)) return [];
  return (list as string[]).map((path, i) => ({ path, at: formatPath(['plugins', i]), ...position(doc, lines, ['plugins', i]) }));
}

/**
 * The plugins a config file names, imported (for `health schema`). A missing file has none, unless
 * it was named on purpose (`required`): then it is the same error as loadConfig's.
 */
export async function loadConfigPlugins(file: string, required = false): Promise<RegisteredProbe[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (!required) return [];
    throw new ConfigError([{ file, path: '', message: `cannot read config file: ${(err as Error).message}` }]);
  }
  return importPlugins(pluginEntries(text), file);
}
