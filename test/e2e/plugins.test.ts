/**
 * A user's plugin through the real CLI: fixtures/plugins/redis.mjs speaks RESP PING over the tunnel
 * to the lab guest's redis, next to built-in checks and a plugin that throws; `health schema` shows it.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ensureLab, isRoot, REPO_ROOT, run, type Lab } from '../lab/lab.js';
import { labConfigYaml, writeTempConfig } from '../support/fleet-run.js';
import type { FleetReport } from '../../src/report.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: plugin CLI tests skipped: the lab needs root (network namespaces)');

const clonebox = (args: string[]) => run('node', [BIN, ...args], { timeoutMs: 60_000 });

suite('plugins through the CLI', () => {
  const L = lab as Lab;

  /** A config in a temp dir whose plugins live in ./plugins beside it. */
  async function config(): Promise<string> {
    const yaml = labConfigYaml(L, [
      { name: 'cache', type: 'redis' },
      { name: 'cache-closed', type: 'redis', port: 6390 },
      { name: 'cache-auth', type: 'redis', password: 'secret' },
      { name: 'flaky', type: 'broken' },
      { name: 'web', type: 'tcp', host: 'localhost', port: 80 },
    ]);
    const file = await writeTempConfig(yaml.replace(/^/, `${stringify({ plugins: ['./plugins/redis.mjs', './plugins/broken.mjs'] })}`));
    const dir = path.join(path.dirname(file), 'plugins');
    await mkdir(dir);
    await copyFile(path.join(REPO_ROOT, 'fixtures', 'plugins', 'redis.mjs'), path.join(dir, 'redis.mjs'));
    await writeFile(path.join(dir, 'broken.mjs'), "export default ({ registerProbe }) => registerProbe('broken', { run: async () => { throw new Error('plugin bug'); } });\n");
    return file;
  }

  it("a plugin's checks run like the built-ins; one that throws is UNKNOWN and the rest still run", async () => {
    const r = await clonebox(['health', 'check', 'web-1', '--json', '--config', await config()]);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as FleetReport;
    const checks = Object.fromEntries(report.reports[0]!.checks.map((c) => [c.name, c]));
    expect(checks.cache).toMatchObject({ type: 'redis', status: 'HEALTHY', message: 'PONG from localhost:6379', transport: 'ssh-tunnel' });
    expect(checks['cache-closed']).toMatchObject({ status: 'UNHEALTHY', message: expect.stringMatching(/localhost:6390 refused/) });
    expect(checks['cache-auth']).toMatchObject({ status: 'UNHEALTHY', message: expect.stringMatching(/^redis at localhost:6379 answered ERR AUTH/) });
    expect(checks.flaky).toMatchObject({ status: 'UNKNOWN', message: expect.stringMatching(/^plugin probe "broken" \(.*broken\.mjs\) failed: plugin bug$/) });
    expect(checks.web).toMatchObject({ status: 'HEALTHY' });
    expect(r.code).toBe(1); // failing checks are not critical by default: the VM is DEGRADED
  });

  it('health schema --config includes the plugin types; a missing config file is one sentence', async () => {
    const r = await clonebox(['health', 'schema', '--config', await config()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"title": "redis check (plugin)"');
    expect(r.stdout).toContain('"description": "Sent with AUTH before PING."');
    const missing = await clonebox(['health', 'schema', '--config', '/nonexistent/clonebox.yaml']);
    expect({ code: missing.code, stderr: missing.stderr.trim() }).toEqual({
      code: 3,
      stderr: expect.stringMatching(/^clonebox: invalid config:\n\/nonexistent\/clonebox\.yaml: cannot read config file: ENOENT/),
    });
  });

  it('a plugin config error names the file and line, without a stack trace', async () => {
    const file = await writeTempConfig(`plugins:\n  - ./nowhere.mjs\n${labConfigYaml(L, [])}`);
    const r = await clonebox(['health', 'check', 'web-1', '--config', file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\.clonebox\.yaml:2:5: plugins\[0\]: plugin \.\/nowhere\.mjs not found/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
