/**
 * Import the plugin modules a config names under `plugins:` (paths relative to the config file),
 * so their probe types are known before the checks are validated. A plugin that cannot be found,
 * loaded or registered is a config error at its line in the file.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { PluginError, registrarFor, registeredProbes, type RegisteredProbe } from '../probes/plugins.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { expandHome } from '../util/home.js';

/** One `plugins:` entry as written, with where it is in the file. */
export interface PluginEntry {
  path: string;
  line?: number;
  column?: number;
  /** `plugins[0]` */
  at: string;
}

export function resolvePluginPath(path: string, configFile: string): string {
  const expanded = expandHome(path);
  return isAbsolute(expanded) ? expanded : resolve(dirname(resolve(configFile)), expanded);
}

/** Plugins registered by an embedding program (not from a config file). */
export function libraryProbes(): RegisteredProbe[] {
  return registeredProbes().filter((p) => p.source === 'library');
}

async function importOne(entry: PluginEntry, configFile: string): Promise<RegisteredProbe[]> {
  const file = resolvePluginPath(entry.path, configFile);
  const problem = (message: string): ConfigProblem => ({ file: configFile, line: entry.line, column: entry.column, path: entry.at, message });
  if (!existsSync(file)) {
    throw new ConfigError([problem(`plugin ${entry.path} not found (looked at ${file}; paths are relative to the config file)`)]);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([problem(`plugin ${entry.path} failed to load: ${(err as Error).message?.split('\n')[0] ?? String(err)}`)]);
  }
  const registered: RegisteredProbe[] = [];
  const register = registrarFor(file);
  try {
    if (typeof mod.default === 'function') {
      // `export default function ({ registerProbe, z }) { registerProbe('redis', { schema, run }) }`
      await (mod.default as (api: unknown) => unknown)({ registerProbe: (type: string, p: never) => registered.push(register(type, p)), z });
    } else if (typeof mod.type === 'string') {
      // The declarative form: `export const type = 'redis'; export const schema = (z) => ({…}); export async function run(…)`.
      registered.push(register(mod.type, { schema: mod.schema as never, run: (mod.run ?? mod.probe) as never, transport: mod.transport as never, description: mod.description as never }));
    }
  } catch (err) {
    const why = err instanceof PluginError ? err.message : `its registration threw: ${(err as Error).message}`;
    throw new ConfigError([problem(`plugin ${entry.path}: ${why}`)]);
  }
  if (registered.length === 0) {
    throw new ConfigError([
      problem(`plugin ${entry.path} registers no probe type; export default ({ registerProbe }) => registerProbe('name', { schema, run }) (docs/plugins.md)`),
    ]);
  }
  return registered;
}

/** Import every plugin in order; the probe types they register, or a ConfigError naming the entry. */
export async function importPlugins(entries: readonly PluginEntry[], configFile: string): Promise<RegisteredProbe[]> {
  const out: RegisteredProbe[] = [];
  for (const entry of entries) out.push(...(await importOne(entry, configFile)));
  return out;
}
