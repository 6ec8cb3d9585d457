/**
 * An address from the QEMU guest agent is the guest's own word (issue 16, item 1). A guest that
 * reports `$(touch${IFS}PWNED-by-address)` must not get it used: not as an SSH target, not in
 * `{{address}}`, not in the report. Through the real CLI with the virsh backend, whose `virsh` is a
 * stand-in that answers `domifaddr --source agent` as a hostile guest agent would and passes every
 * other call to the real virsh (the lab's test driver); and through the native backend with the
 * real binding whose agent answer is replaced the same way.
 */
import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { resolveAddress } from '../../src/inventory/discover.js';
import { loadNativeBinding, openNativeBackend, type NativeBinding } from '../../src/inventory/native.js';
import { ensureLab, isRoot, type Lab } from '../lab/lab.js';
import { clonebox, tempDir } from './support.js';

const HOSTILE_ADDRESSES = ['$(touch${IFS}PWNED-by-address)', '10.0.0.1;touch${IFS}PWNED', 'fe80::1%eth0', '999.1.1.1', '`touch${IFS}PWNED`'];

/** A `virsh` whose agent source answers with HOSTILE_ADDRESSES; everything else goes to the real one. */
function virshStandIn(dir: string): string {
  const realVirsh = ['/usr/bin/virsh', '/bin/virsh'].find((p) => existsSync(p)) ?? 'virsh';
  const lines = HOSTILE_ADDRESSES.map((a) => ` eth0       52:54:00:cb:01:01    ${a.includes(':') ? 'ipv6' : 'ipv4'}         ${a}/24`).join('\n');
  const script = `#!/bin/sh
# Stand-in for a hostile guest agent: only domifaddr --source agent is answered here.
case " $* " in
  *" domifaddr "*" agent "*) cat <<'EOF'
${lines}
EOF
  exit 0 ;;
esac
exec ${realVirsh} "$@"
`;
  writeFileSync(path.join(dir, 'virsh'), script);
  chmodSync(path.join(dir, 'virsh'), 0o755);
  return dir;
}

const lab = isRoot() ? await ensureLab() : undefined;
(lab ? describe : describe.skip)('a hostile guest agent address', () => {
  const L = lab as Lab;

  it('is ignored, named escaped, and never reaches an action (CLI, virsh backend)', async () => {
    const dir = tempDir('hostile-agent');
    const binDir = virshStandIn(dir);
    const config = path.join(dir, '.clonebox.yaml');
    writeFileSync(
      config,
      stringify({
        libvirt: { uri: L.uri, address_source: 'agent' },
        health_checks: [
          // The issue's own action, as the docs wrote it.
          { name: 'port-1', type: 'tcp', host: '{{address}}', port: 1, timeout: '2s', failure_threshold: 1, on_failure: { command: 'echo "VM at {{address}} is down" >> log', where: 'host' } },
        ],
      }),
    );
    const env = { PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}` };
    const r = await clonebox(['health', 'check', 'web-1', '--config', config, '--store', path.join(dir, 'h.db'), '--libvirt-backend', 'virsh', '--json', '--verbose'], { cwd: dir, env });
    expect(readdirSync(dir).filter((f) => f.startsWith('PWNED') || f === 'log'), r.stderr).toEqual([]);
    const report = JSON.parse(r.stdout) as { reports: { vm_name: string; address?: string; overall_status: string; reason?: string }[] };
    const web1 = report.reports[0]!;
    expect(web1.address).toBeUndefined();
    expect(web1.overall_status).toBe('UNKNOWN');
    expect(web1.reason).toContain('ignored "$(touch${IFS}PWNED-by-address)": not an IPv4 address');
    expect(web1.reason).toContain('ignored "fe80::1%eth0": not an IPv6 address');
    expect(r.stderr).toMatch(/clonebox: VM web-1: agent address ignored "\$\(touch\$\{IFS\}PWNED-by-address\)": not an IPv4 address/);
    expect(r.code).toBe(3);
  });

  it('is skipped for the next source, which then gives the VM its address (CLI, virsh backend)', async () => {
    const dir = tempDir('hostile-agent-lease');
    const binDir = virshStandIn(dir);
    const config = path.join(dir, '.clonebox.yaml');
    writeFileSync(config, stringify({ libvirt: { uri: L.uri, address_source: ['agent', 'lease'] }, health_checks: [{ name: 'port-1', type: 'tcp', host: '{{address}}', port: 1, timeout: '2s' }] }));
    const r = await clonebox(['health', 'check', 'web-1', '--config', config, '--libvirt-backend', 'virsh', '--json'], { cwd: dir, env: { PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}` } });
    const web1 = (JSON.parse(r.stdout) as { reports: { address?: string; checks: { status: string }[] }[] }).reports[0]!;
    expect(web1.address).toBe(L.vms['web-1']!.address);
    expect(web1.checks[0]!.status).toBe('UNHEALTHY'); // the verdict is the service's, unchanged by the lie
    expect(readdirSync(dir).filter((f) => f.startsWith('PWNED'))).toEqual([]);
  });

  const native = loadNativeBinding();
  it.skipIf(!('binding' in native))('is ignored with the native backend too', async () => {
    const real = (native as { binding: NativeBinding }).binding;
    // The real binding and libvirt, but the agent source answers as a hostile guest would.
    const hostile: NativeBinding = {
      libvirtVersion: real.libvirtVersion,
      open: (uri, ro) => real.open(uri, ro),
      listDomains: (c) => real.listDomains(c),
      agentCommand: (c, d, j, t) => real.agentCommand(c, d, j, t),
      interfaceAddresses: async (conn, names, source, concurrency) => {
        if (source !== 1) return real.interfaceAddresses(conn, names, source, concurrency);
        return (names ?? []).map((name) => ({
          name,
          interfaces: [{ name: 'eth0', mac: '52:54:00:cb:01:01', addrs: HOSTILE_ADDRESSES.map((addr) => ({ type: addr.includes(':') ? (6 as const) : (4 as const), addr, prefix: 24 })) }],
        }));
      },
    };
    const backend = await openNativeBackend(L.uri, { binding: hostile });
    try {
      const notes: string[] = [];
      const onlyAgent = await resolveAddress(backend, 'web-1', ['agent'], 'ipv4', {}, (m) => notes.push(m));
      expect(onlyAgent.address).toBeUndefined();
      expect(notes).toHaveLength(HOSTILE_ADDRESSES.length);
      expect(notes[0]).toBe('VM web-1: agent address ignored "$(touch${IFS}PWNED-by-address)": not an IPv4 address');
      const withLease = await resolveAddress(backend, 'web-1', ['agent', 'lease'], 'ipv4');
      expect(withLease).toMatchObject({ address: L.vms['web-1']!.address, source: 'lease' });
    } finally {
      await backend.close();
    }
  });
});
