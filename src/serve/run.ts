/**
 * `clonebox health serve` (and `health watch --serve`): resolve the store and the config as `health history`
 * does, apply the bind policy, start the server.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import type { CloneboxConfig } from '../config/schema.js';
import { UsageError } from '../engine/fleet.js';
import { openStore, parseStoreSpec } from '../store/index.js';
import type { HealthStore } from '../store/types.js';
import { loadAuth, type AuthConfig } from './auth.js';
import { metaFromConfig } from './queries.js';
import { isLoopback, startServer, type StatusServer } from './server.js';

export const DEFAULT_LISTEN = '127.0.0.1:8080';

export interface ServeCommandOptions {
  /** HOST:PORT, [IPv6]:PORT, :PORT or PORT. */
  listen: string;
  store?: string;
  config?: string;
  /** env:NAME or file:PATH */
  auth?: string;
  authType?: 'bearer' | 'basic';
  noAuth?: boolean;
  /** `health watch --serve`: the watch creates the store, so it need not exist yet. */
  allowNewStore?: boolean;
  pollMs?: number;
  rateLimitPerMinute?: number;
  /** How the flags are named in messages: '' for `health serve`, 'serve-' for `health watch --serve`. */
  flagPrefix?: '' | 'serve-';
  log: (msg: string) => void;
}

/** `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (every interface, as in Go) or a bare `PORT` (127.0.0.1). */
export function parseListen(text: string): { host: string; port: number } {
  const t = text.trim();
  const bad = () => new UsageError(`--listen expects HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, :8080), got "${text}"`);
  let host: string;
  let portText: string;
  if (/^\d+$/.test(t)) {
    host = '127.0.0.1';
    portText = t;
  } else if (t.startsWith('[')) {
    const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
    if (!m) throw bad();
    host = m[1]!;
    portText = m[2]!;
  } else {
    const i = t.lastIndexOf(':');
    if (i < 0 || t.indexOf(':') !== i) throw bad();
    host = t.slice(0, i) || '0.0.0.0';
    portText = t.slice(i + 1);
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535) || !/^[A-Za-z0-9.:_-]+$/.test(host)) throw bad();
  return { host, port };
}

export interface OpenedServe {
  server: StatusServer;
  store: HealthStore;
  close(): Promise<void>;
}

export async function openServe(opts: ServeCommandOptions): Promise<OpenedServe> {
  const p = opts.flagPrefix ?? '';
  const { host, port } = parseListen(opts.listen);
  let auth: AuthConfig | undefined;
  if (opts.auth !== undefined) auth = loadAuth(opts.auth, opts.authType ?? 'bearer', process.env, (m) => opts.log(`warning: ${m}`));
  if (!isLoopback(host) && !auth && !opts.noAuth) {
    throw new UsageError(
      `--${p ? 'serve' : 'listen'} ${opts.listen} can be reached from other hosts: protect it with --${p}auth env:NAME or --${p}auth file:PATH ` +
        `(a bearer token; user:password with --${p}auth-type basic), or say --${p}no-auth to let anyone who reaches it read it`,
    );
  }
  if (!isLoopback(host) && !auth) opts.log(`warning: serving on ${host}:${port} without authentication (--${p}no-auth): anyone who can reach it can read it`);

  let config: CloneboxConfig | undefined;
  const file = opts.config ?? DEFAULT_CONFIG_FILE;
  if (opts.config !== undefined || existsSync(file)) config = await loadConfig(file);
  const spec = opts.store ?? config?.history?.store;
  const parsed = parseStoreSpec(spec);
  if (parsed.kind === 'sqlite' && !opts.allowNewStore && !existsSync(parsed.target)) {
    throw new UsageError(`no history store at ${parsed.target}: record some results first (clonebox health watch --all), or name the store with --store`);
  }
  let store: HealthStore;
  try {
    store = await openStore(spec);
  } catch (err) {
    const why = (err as Error).message;
    throw new UsageError(why.startsWith('cannot open the history store') ? why : `cannot open the history store ${spec ?? '(default)'}: ${why}`);
  }
  let server: StatusServer;
  try {
    server = await startServer({
      host,
      port,
      store,
      meta: metaFromConfig(config),
      ...(auth ? { auth } : {}),
      ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
      ...(opts.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: opts.rateLimitPerMinute } : {}),
      log: opts.log,
    });
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return {
    server,
    store,
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}

/** Serve until the signal aborts (Ctrl-C). */
export async function runServe(opts: ServeCommandOptions, signal: AbortSignal): Promise<void> {
  const opened = await openServe(opts);
  opts.log(`status page at ${opened.server.url} (history: ${opened.store.kind} at ${opened.store.location}); Ctrl-C stops`);
  try {
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await opened.close();
  }
}
