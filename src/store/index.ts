/**
 * Opening the history store named by `--store` (or config): a `postgres://` / `postgresql://` URL, a
 * `sqlite:PATH` or a plain path, or nothing for the default SQLite file in the XDG data dir.
 * Backends are imported on first use: a run without a store never loads the native SQLite module or `pg`.
 */
import { resolve } from 'node:path';
import { redactText, registerUrlSecrets } from '../util/redact.js';
import { defaultSqlitePath } from './paths.js';
import type { HealthStore, OpenStoreOptions } from './types.js';

export interface StoreSpec {
  kind: 'sqlite' | 'postgres';
  /** The file path or the connection URL. */
  target: string;
}

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** What `--store` names; undefined or empty → the default SQLite file. */
export function parseStoreSpec(spec: string | undefined, env: NodeJS.ProcessEnv = process.env): StoreSpec {
  if (spec === undefined || spec === '' || spec === 'default') return { kind: 'sqlite', target: defaultSqlitePath(env) };
  // The DSN's password is masked from here on, in every message that might echo it.
  registerUrlSecrets(spec);
  if (POSTGRES_URL.test(spec)) return { kind: 'postgres', target: spec };
  const path = spec.startsWith('sqlite://') ? spec.slice('sqlite://'.length) : spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : spec;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) || path === '') {
    throw new Error(`unsupported store "${spec}": give a file path (SQLite) or a postgres://user@host/db URL`);
  }
  const expanded = path === '~' || path.startsWith('~/') ? `${env.HOME ?? ''}${path.slice(1)}` : path;
  return { kind: 'sqlite', target: resolve(expanded) };
}

/**
 * The one sentence for a store that cannot be opened: names the store once, with its password
 * masked (a backend's own message may already name it; then it is not said twice).
 */
export function storeOpenError(spec: string | undefined, err: unknown): string {
  registerUrlSecrets(spec ?? '');
  const why = redactText((err as Error).message ?? String(err));
  if (why.startsWith('cannot open the history store')) return why;
  return `cannot open the history store ${redactText(spec ?? '(default)')}: ${why}`;
}

export async function openStore(spec?: string, options: OpenStoreOptions = {}): Promise<HealthStore> {
  const parsed = parseStoreSpec(spec);
  if (parsed.kind === 'postgres') {
    const { PostgresStore } = await import('./postgres.js');
    return PostgresStore.open(parsed.target, options);
  }
  let mod: typeof import('./sqlite.js');
  try {
    mod = await import('./sqlite.js');
  } catch (err) {
    throw new Error(
      `the SQLite history store is unavailable (${(err as Error).message.split('\n')[0]}); ` +
        'reinstall with `npm rebuild better-sqlite3`, or use --store postgres://…',
      { cause: err },
    );
  }
  return new mod.SqliteStore(parsed.target, options);
}

export { defaultSqlitePath } from './paths.js';
export type * from './types.js';
export { AUTO_PRUNE_EVERY_MS, DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_RETENTION_MS } from './types.js';
