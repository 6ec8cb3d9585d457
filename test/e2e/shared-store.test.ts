/**
 * Several hosts, one store: each "host" is a separate `health check --store postgres://…` process with its own
 * hypervisor name (hostA, hostB, hostC, all pointing at the lab's libvirt), run concurrently and repeatedly
 * against the real PostgreSQL the tests start. Rows are keyed by hypervisor + VM: nothing is lost, nothing is
 * mixed up, and `health history` reads any VM of any hypervisor.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetReport } from '../../src/report.js';
import { openStore } from '../../src/store/index.js';
import { ensureLab, isRoot, REPO_ROOT, run, type Lab } from '../lab/lab.js';
import { postgresUnavailable, startPostgres, type PgServer } from '../store/pg-server.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const why = !isRoot() ? 'the lab needs root' : postgresUnavailable();
const lab = why ? undefined : await ensureLab();
const suite = lab ? describe : describe.skip;
if (why) console.warn(`clonebox: shared-store tests skipped: ${why}`);

const HOSTS = ['hostA', 'hostB', 'hostC'];
const RUNS = 3;

suite('several hosts writing into one PostgreSQL store', { timeout: 180_000 }, () => {
  const L = lab as Lab;
  const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-shared-'));
  let pg: PgServer;
  let url: string;

  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase('shared');
    for (const host of HOSTS) {
      writeFileSync(
        path.join(dir, `${host}.yaml`),
        stringify({
          hypervisors: [{ name: host, uri: L.uri }],
          ssh: { user: 'root', identity_file: L.identityFile, known_hosts: L.knownHostsFile, host_key_policy: 'strict', connect_timeout: '5s' },
          health_checks: [
            { name: 'ping', type: 'command', exec: 'echo PONG', expected_output: 'PONG', timeout: '10s' },
            { name: 'api', type: 'http', url: 'http://localhost:8080/health', timeout: '10s' },
          ],
        }),
      );
    }
  });
  afterAll(() => {
    pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${HOSTS.length} hosts × ${RUNS} concurrent cron runs: every result kept under its own hypervisor`, async () => {
    const runs = HOSTS.map(async (host) => {
      const codes: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const r = await run('node', [BIN, 'health', 'check', `${host}/web-1`, `${host}/web-3`, '--config', path.join(dir, `${host}.yaml`), '--store', url, '--json'], {
          timeoutMs: 120_000,
        });
        const report = JSON.parse(r.stdout) as FleetReport;
        expect(report.reports.map((x) => x.vm_name).sort()).toEqual([`${host}/web-1`, `${host}/web-3`]);
        codes.push(r.code);
      }
      return codes;
    });
    // web-3 answers /health with 503 (non-critical: DEGRADED, exit 1) on every host and run.
    expect(await Promise.all(runs)).toEqual(HOSTS.map(() => Array(RUNS).fill(1)));

    const store = await openStore(url);
    try {
      const vms = await store.knownVms();
      expect(vms).toEqual(HOSTS.flatMap((h) => [`${h}/web-1`, `${h}/web-3`]).sort());
      for (const host of HOSTS) {
        const web1 = await store.history({ vm: `${host}/web-1`, sinceMs: 0 });
        expect(web1).toHaveLength(RUNS * 2);
        expect(web1.every((r) => r.status === 'HEALTHY')).toBe(true);
        const api3 = await store.history({ vm: `${host}/web-3`, check: 'api', sinceMs: 0 });
        expect(api3.map((r) => r.status)).toEqual(Array(RUNS).fill('UNHEALTHY'));
        // The thresholds counted per hypervisor: three failures each, so each host's web-3/api is hard UNHEALTHY.
        const states = await store.currentChecks(`${host}/web-3`);
        expect(states.find((s) => s.check === 'api')).toMatchObject({ state: 'UNHEALTHY', hard: true, consecutive_failures: RUNS });
      }
    } finally {
      await store.close();
    }

    const h = await run('node', [BIN, 'health', 'history', 'hostB/web-3', '--store', url, '--last', '1h', '--json'], { timeoutMs: 60_000 });
    expect(h.code).toBe(0);
    const history = JSON.parse(h.stdout) as { vm: string; checks: { check: string; results: number }[] };
    expect(history.vm).toBe('hostB/web-3');
    expect(history.checks.find((c) => c.check === 'api')?.results).toBe(RUNS);
  });
});
