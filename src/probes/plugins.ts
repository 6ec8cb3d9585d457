/**
 * Probe types that users add (the seed's `register_probe`): `registerProbe(type, { schema, run })`,
 * from a plugin module named under `plugins:` in the config, or from a program that embeds the
 * engine (`import { registerProbe } from 'clonebox-health'`). docs/plugins.md is the user's guide.
 *
 * A plugin's check gets the keys every check has (name, timeout, thresholds, actions…) plus its own,
 * validated like a built-in's. What a plugin does at run time is not trusted: a throw, a hang past
 * the check's timeout or an answer that is not an outcome gives that check UNKNOWN with the reason.
 */
import { z } from 'zod';
import { CHECK_TYPES, COMMON_CHECK_KEYS } from '../config/schema.js';
import { formatDuration } from '../config/duration.js';
import { STATUSES, type HealthStatus, type ProbeTransport } from '../report.js';
import { TransportError } from '../transport/types.js';
import { capText } from '../util/cap.js';
import { timedOut } from './common.js';
import type { Probe, ProbeOutcome, ProbeTarget } from './types.js';

/** A plugin's check as its `run` receives it: the common keys, parsed, plus the plugin's own. */
export type PluginCheck = {
  name: string;
  type: string;
  /** Milliseconds. */
  timeout: number;
  critical: boolean;
} & Record<string, unknown>;

export interface ProbePlugin {
  /** The check's own keys, built with the zod clonebox passes in (so versions never clash). */
  schema?: (zod: typeof z) => Record<string, z.ZodType>;
  /** The probe: `(check, target, signal) => outcome`, the contract of the built-in probes. */
  run: Probe<PluginCheck>;
  /** How the check reaches the VM, shown when it cannot run (default `ssh`: it needs the guest). */
  transport?: 'ssh' | 'ssh-tunnel' | 'host';
  /** One line for `health schema` and the editor's hover text. */
  description?: string;
}

export interface RegisteredProbe {
  type: string;
  /** The plugin file's path, or `library` for registerProbe called by an embedding program. */
  source: string;
  description?: string;
  transport: ProbeTransport;
  /** The full check schema: the common keys, `type`, and the plugin's keys. */
  check: z.ZodObject;
  run: Probe<PluginCheck>;
}

/** A plugin that cannot be registered: one sentence that says what to change. */
export class PluginError extends Error {
  override readonly name = 'PluginError';
}

const registry = new Map<string, RegisteredProbe>();
const COMMON = new Set([...Object.keys(COMMON_CHECK_KEYS), 'type']);

/** Every registered plugin probe (by an embedding program or a config's plugins). */
export function registeredProbes(): RegisteredProbe[] {
  return [...registry.values()];
}

export function pluginProbe(type: string): RegisteredProbe | undefined {
  return registry.get(type);
}

function register(type: unknown, plugin: unknown, source: string): RegisteredProbe {
  if (typeof type !== 'string' || !/^[a-z][a-z0-9_-]{0,39}$/.test(type)) {
    throw new PluginError(`probe type ${JSON.stringify(type)} must be a lowercase name such as "redis" (letters, digits, _ and -)`);
  }
  if ((CHECK_TYPES as readonly string[]).includes(type)) {
    throw new PluginError(`probe type "${type}" is a built-in type; give the plugin's type another name`);
  }
  const existing = registry.get(type);
  if (existing && existing.source !== source) {
    throw new PluginError(`probe type "${type}" is already registered by ${existing.source}`);
  }
  const p = plugin as Partial<ProbePlugin> | null;
  if (p === null || typeof p !== 'object' || typeof p.run !== 'function') {
    throw new PluginError(`probe type "${type}": registerProbe needs { run: async (check, target, signal) => outcome, schema?: (z) => ({ key: z.string() }) }`);
  }
  let shape: unknown = {};
  if (p.schema !== undefined) {
    if (typeof p.schema !== 'function') throw new PluginError(`probe type "${type}": schema must be a function (z) => ({ key: z.string(), … })`);
    try {
      shape = p.schema(z);
    } catch (err) {
      throw new PluginError(`probe type "${type}": its schema function threw: ${(err as Error).message}`);
    }
  }
  if (shape === null || typeof shape !== 'object' || Array.isArray(shape)) {
    throw new PluginError(`probe type "${type}": schema must return an object of keys, e.g. (z) => ({ port: z.number() })`);
  }
  for (const [key, value] of Object.entries(shape)) {
    if (COMMON.has(key)) throw new PluginError(`probe type "${type}": key "${key}" is one every check already has; rename the plugin's key`);
    if (!(value instanceof z.ZodType)) {
      throw new PluginError(`probe type "${type}": key "${key}" is not a schema made with the zod passed in (schema: (z) => ({ ${key}: z.string() }))`);
    }
  }
  const entry: RegisteredProbe = {
    type,
    source,
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
    transport: p.transport === 'host' || p.transport === 'ssh-tunnel' ? p.transport : 'ssh',
    check: z.strictObject({ ...COMMON_CHECK_KEYS, type: z.literal(type), ...(shape as Record<string, z.ZodType>) }),
    run: p.run,
  };
  registry.set(type, entry);
  return entry;
}

/**
 * Add a probe type. Call it before the config is loaded (an embedding program), or from a plugin
 * module's default export (`export default ({ registerProbe }) => registerProbe('redis', {…})`).
 * Throws PluginError when the type is taken or the plugin is malformed.
 */
export function registerProbe(type: string, plugin: ProbePlugin): void {
  register(type, plugin, 'library');
}

/** registerProbe for the plugin file `source`: registering again from the same file replaces. */
export function registrarFor(source: string): (type: string, plugin: ProbePlugin) => RegisteredProbe {
  return (type, plugin) => register(type, plugin, source);
}

/** Forget plugins (tests). */
export function unregisterProbes(filter: (p: RegisteredProbe) => boolean = () => true): void {
  for (const [type, p] of registry) if (filter(p)) registry.delete(type);
}

/** How long after its timeout a plugin may take to give its own outcome before it is called hung. */
export const PLUGIN_GRACE_MS = 500;
const MAX_DETAILS_BYTES = 16 * 1024;

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return capText(JSON.stringify(value) ?? String(value), 80);
  } catch {
    return typeof value;
  }
}

/** The plugin's answer as a ProbeOutcome, or why it is not one. */
export function validOutcome(value: unknown): ProbeOutcome | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return `got ${describe(value)}`;
  const o = value as Record<string, unknown>;
  if (!(STATUSES as readonly unknown[]).includes(o.status)) return `status ${describe(o.status)} is not one of ${STATUSES.join(', ')}`;
  if (typeof o.message !== 'string') return `message ${describe(o.message)} is not a string`;
  let details: Record<string, unknown> = {};
  if (o.details !== undefined) {
    if (o.details === null || typeof o.details !== 'object' || Array.isArray(o.details)) return `details ${describe(o.details)} is not an object`;
    let json: string;
    try {
      json = JSON.stringify(o.details);
    } catch (err) {
      return `details cannot be written as JSON (${(err as Error).message})`;
    }
    details = json.length > MAX_DETAILS_BYTES ? { details_dropped: `larger than ${MAX_DETAILS_BYTES} bytes` } : (JSON.parse(json) as Record<string, unknown>);
  }
  const transports: unknown[] = ['ssh', 'ssh-tunnel', 'host', 'agent', 'none'];
  return {
    status: o.status as HealthStatus,
    message: capText(o.message, 1000),
    details,
    ...(transports.includes(o.transport) ? { transport: o.transport as ProbeTransport } : {}),
  };
}

/** The built-in contract around a plugin's run: its answer checked, its failures made UNKNOWN, its time bounded. */
export function guardedProbe(entry: RegisteredProbe): Probe<PluginCheck> {
  const what = `plugin probe "${entry.type}" (${entry.source})`;
  return async (check, target, signal) => {
    let via: ProbeTransport | undefined;
    // Which way the plugin really went, for the report when it does not say.
    const watched: ProbeTarget = {
      ...target,
      exec: (command, options) => {
        via ??= 'ssh';
        return target.exec(command, options);
      },
      connect: async (host, port, s, options) => {
        const r = await target.connect(host, port, s, options);
        via = r.via;
        return r;
      },
    };
    let timer: NodeJS.Timeout | undefined;
    // Set now, so it always fires before the engine's own backstop (timeout + 1 s).
    const hung = new Promise<ProbeOutcome>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            status: 'UNKNOWN',
            message: `${what} did not return within its timeout of ${formatDuration(check.timeout)}; a plugin must stop when its signal aborts`,
            details: { plugin: entry.source, timed_out: true },
          }),
        check.timeout + PLUGIN_GRACE_MS,
      );
    });
    const ran = (async (): Promise<ProbeOutcome> => {
      try {
        const value: unknown = await entry.run(check, watched, signal);
        const outcome = validOutcome(value);
        if (typeof outcome === 'string') {
          return { status: 'UNKNOWN', message: `${what} returned no valid outcome: ${outcome}`, details: { plugin: entry.source } };
        }
        return { ...outcome, transport: outcome.transport ?? via ?? entry.transport };
      } catch (err) {
        if (err instanceof TransportError) return { status: 'UNKNOWN', message: err.message, details: { transport_error: err.kind } };
        // It stopped because its deadline passed, as it should: the service was too slow.
        if (timedOut(signal)) {
          return { status: 'UNHEALTHY', message: `${entry.type} did not finish within ${formatDuration(check.timeout)}`, details: { timed_out: true } };
        }
        const message = err instanceof Error ? err.message : describe(err);
        return { status: 'UNKNOWN', message: `${what} failed: ${capText(message, 500)}`, details: { plugin: entry.source } };
      }
    })();
    try {
      return await Promise.race([ran, hung]);
    } finally {
      clearTimeout(timer);
    }
  };
}
