import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres.js';
import { alertStoreContract } from './alert-contract.js';
import { storeContract } from './contract.js';
import { postgresUnavailable, startPostgres, type PgServer } from './pg-server.js';

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the PostgreSQL store tests: ${unavailable}`);

describe.skipIf(unavailable)('PostgreSQL', () => {
  let server: PgServer;
  let n = 0;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  storeContract('PostgreSQL', () => ({
    newSpec: () => server.createDatabase(`clonebox_t${++n}`),
    integrity: async (url) => {
      // PostgreSQL keeps itself consistent; check that no transaction or lock of a killed writer is left behind.
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const { rows } = await c.query(
          "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND l.locktype = 'advisory'",
        );
        return rows[0].n === 0 ? 'ok' : `${rows[0].n} advisory locks still held`;
      } finally {
        await c.end();
      }
    },
  }));

  alertStoreContract('PostgreSQL', () => server.createDatabase(`clonebox_a${++n}`));

  describe('PostgreSQL store specifics', () => {
    it('hides the password in its location and migrates once under concurrent opens', async () => {
      const url = await server.createDatabase('clonebox_specifics');
      const withPassword = url.replace('postgres@', 'postgres:s3cret@');
      const stores = await Promise.all(Array.from({ length: 4 }, () => openStore(withPassword, { retentionMs: 0 })));
      expect(stores[0]!.kind).toBe('postgres');
      expect(stores[0]!.location).not.toContain('s3cret');
      expect(stores[0]!.location).toContain('***');
      await Promise.all(stores.map((s) => s.close()));
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const { rows } = await c.query('SELECT version FROM schema_version ORDER BY version');
      await c.end();
      expect(rows).toEqual(POSTGRES_MIGRATIONS.map((m) => ({ version: m.version })));
    });

    it('replaces NUL characters, which PostgreSQL text cannot hold', async () => {
      const store = await openStore(await server.createDatabase('clonebox_nul'), { retentionMs: 0 });
      const ts = new Date().toISOString();
      await store.recordRound([
        {
          vm_name: 'web-1', overall_status: 'HEALTHY', timestamp: ts, duration_ms: 1,
          checks: [{ name: 'cmd', type: 'command', status: 'HEALTHY', timestamp: ts, duration_ms: 1, message: 'a\0b', critical: true, transport: 'ssh', details: { stdout: 'x\0y' } }],
          counts: { total: 1, healthy: 1, degraded: 0, unhealthy: 0, unknown: 0 }, total_checks: 1, healthy_checks: 1, unhealthy_checks: 0, degraded_checks: 0,
        },
      ]);
      const [row] = await store.history({ vm: 'web-1', sinceMs: 0 });
      expect(row!.message).toBe('a\uFFFDb');
      expect(row!.details).toEqual({ stdout: 'x\uFFFDy' });
      await store.close();
    });

    it('says what is wrong when the server cannot be reached', async () => {
      await expect(openStore('postgres://postgres@127.0.0.1:1/none')).rejects.toThrow(/cannot open the history store postgres:\/\/postgres@127.0.0.1:1\/none: .*ECONNREFUSED/);
    });
  });
});
