import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultSqlitePath, openStore, parseStoreSpec } from '../../src/store/index.js';
import { SQLITE_SCHEMA_VERSION, SqliteStore } from '../../src/store/sqlite.js';
import { alertStoreContract } from './alert-contract.js';
import { storeContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'clonebox-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

storeContract('SQLite', () => ({
  newSpec: async () => join(dir, `t${++n}`, 'health.db'),
  integrity: async (path) => {
    const db = new Database(path, { readonly: true });
    try {
      return (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
    } finally {
      db.close();
    }
  },
}));

describe('SQLite store specifics', () => {
  it('defaults to $XDG_DATA_HOME/clonebox/health.db, else ~/.local/share', () => {
    expect(defaultSqlitePath({ XDG_DATA_HOME: '/var/lib/x', HOME: '/home/a' })).toBe('/var/lib/x/clonebox/health.db');
    expect(defaultSqlitePath({ HOME: '/home/a' })).toBe('/home/a/.local/share/clonebox/health.db');
    // XDG says a relative path is invalid and must be ignored.
    expect(defaultSqlitePath({ XDG_DATA_HOME: 'rel', HOME: '/home/a' })).toBe('/home/a/.local/share/clonebox/health.db');
  });

  it.each([
    [undefined, { kind: 'sqlite', target: '/home/a/.local/share/clonebox/health.db' }],
    ['postgres://u:pw@db.example/clonebox', { kind: 'postgres', target: 'postgres://u:pw@db.example/clonebox' }],
    ['postgresql://db/clonebox', { kind: 'postgres', target: 'postgresql://db/clonebox' }],
    ['/srv/health.db', { kind: 'sqlite', target: '/srv/health.db' }],
    ['sqlite:/srv/health.db', { kind: 'sqlite', target: '/srv/health.db' }],
    ['~/h.db', { kind: 'sqlite', target: '/home/a/h.db' }],
  ] as const)('--store %s', (spec, expected) => expect(parseStoreSpec(spec, { HOME: '/home/a' })).toEqual(expected));

  it('refuses a URL it does not know', () => expect(() => parseStoreSpec('mysql://x/y')).toThrow(/file path \(SQLite\) or a postgres/));

  it('creates the file 0600 in a 0700 directory, in WAL mode, at the current schema version', async () => {
    const path = join(dir, 'perm', 'deep', 'health.db');
    const store = await openStore(path);
    expect(store.kind).toBe('sqlite');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'perm', 'deep')).mode & 0o777).toBe(0o700);
    await store.recordRound([]);
    await store.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT max(version) AS v FROM schema_version').get()).toEqual({ v: SQLITE_SCHEMA_VERSION });
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name").all();
    expect(indexes.map((r) => (r as { name: string }).name)).toContain('results_vm_check_ts');
    db.close();
  });

  it('refuses a file from a newer clonebox instead of guessing', async () => {
    const path = join(dir, 'newer.db');
    await (await openStore(path)).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(SQLITE_SCHEMA_VERSION + 1, Date.now());
    db.close();
    expect(() => new SqliteStore(path)).toThrow(/newer than this clonebox understands/);
  });

  it('says which file is locked, and for how long it waited', async () => {
    const path = join(dir, 'locked.db');
    await (await openStore(path)).close();
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    const store = new SqliteStore(path, { lockTimeoutMs: 100, retentionMs: 0 });
    await expect(store.recordRound([])).rejects.toThrow(`the history store ${path} stayed locked by another clonebox process for more than 100 ms`);
    holder.exec('ROLLBACK');
    holder.close();
    await store.recordRound([]);
    await store.close();
  });
});

alertStoreContract('SQLite', async () => join(dir, `a${++n}`, 'health.db'));
