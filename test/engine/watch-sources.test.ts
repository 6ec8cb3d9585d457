/**
 * The watch's real sources (src/engine/watch/sources.ts) against libvirt's test driver: a VM is resolved again only
 * when libvirt says something new about it. Nothing is dialled (no check runs here).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { fleetSources } from '../../src/engine/watch/sources.js';
import { VirshBackend } from '../../src/inventory/virsh.js';
import { SshPool } from '../../src/transport/ssh-pool.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cbx-sources-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A node file for the test driver: VM `web` (and `db`) on a network whose first address the driver reports. */
function node(file: string, webNet: string): string {
  const net = (name: string, ip: string) => `<network><name>${name}</name><ip address='${ip}' prefix='24'/></network>`;
  const dom = (name: string, uuid: string, netName: string, mac: string) =>
    `<domain type='test'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os>` +
    `<devices><interface type='network'><mac address='${mac}'/><source network='${netName}'/></interface></devices></domain>`;
  const p = path.join(dir, file);
  writeFileSync(
    p,
    `<node>${net('net-web', webNet)}${net('net-db', '10.9.8.0')}` +
      `${dom('web', 'cbbe0000-0000-4000-8000-000000000001', 'net-web', '52:54:00:be:00:01')}` +
      `${dom('db', 'cbbe0000-0000-4000-8000-000000000002', 'net-db', '52:54:00:be:00:02')}</node>`,
  );
  return `test://${p}`;
}

describe('watch sources: resolving VMs across discoveries', () => {
  it('keeps a VM resolved while libvirt says nothing new, and resolves it again when its address changes', async () => {
    const before = node('before.xml', '10.9.0.0');
    const after = node('after.xml', '10.9.1.0');
    // ~/.ssh/config matched by address: only the new address has its own port.
    const sshConfig = path.join(dir, 'ssh_config');
    writeFileSync(sshConfig, 'Host 10.9.1.*\n  Port 2222\n');
    const yaml = stringify({
      libvirt: { uri: before },
      ssh: { config_file: sshConfig, user: 'root' },
      health_checks: [{ name: 'ping', type: 'command', exec: 'echo PONG', expected_output: 'PONG' }],
    });
    const config = parseConfig(yaml, 'sources.yaml');
    let uri = before;
    const logs: string[] = [];
    const pool = new SshPool();
    try {
      const sources = fleetSources({
        config,
        selectors: [],
        all: true,
        concurrency: 4,
        acceptNewHostKeys: false,
        backend: async () => new VirshBackend(uri),
        pool,
        advance: () => Promise.reject(new Error('no check runs in this test')),
        log: (m) => logs.push(m),
      });
      const byName = async () => new Map((await sources.discover()).map((w) => [w.target.name, w]));

      const first = await byName();
      expect(first.get('web')!.target.address).toMatch(/^10\.9\.0\./);
      expect(first.get('web')!.resolved.ssh.port).toBe(22);
      expect(logs.filter((l) => l.includes('web')).length).toBe(1);

      const again = await byName();
      // Nothing new from libvirt: the very same resolution, said once.
      expect(again.get('web')!.resolved).toBe(first.get('web')!.resolved);
      expect(again.get('db')!.resolved).toBe(first.get('db')!.resolved);
      expect(logs.filter((l) => l.includes('web')).length).toBe(1);

      uri = after;
      const moved = await byName();
      expect(moved.get('web')!.target.address).toMatch(/^10\.9\.1\./);
      // Resolved again: ~/.ssh/config's block for the new address applies, and the change is said.
      expect(moved.get('web')!.resolved).not.toBe(first.get('web')!.resolved);
      expect(moved.get('web')!.resolved.ssh.port).toBe(2222);
      expect(logs.filter((l) => l.includes('web')).length).toBe(2);
      expect(moved.get('db')!.resolved).toBe(first.get('db')!.resolved);
    } finally {
      await pool.close();
    }
  });
});
