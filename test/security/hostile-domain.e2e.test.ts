/**
 * A domain name is whatever the person who created the domain typed (issue 16, item 2). Domains of
 * libvirt's test driver with hostile names go through the real CLI, with host actions in every
 * quoting style the docs use: no file is created, the actions receive the exact names, the names
 * are shown escaped, and each domain gets its own address (a name that looks like an id or an
 * option never reaches virsh as one). Both libvirt backends.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ensureLab, isRoot, type Lab } from '../lab/lab.js';
import { clonebox, tempDir } from './support.js';

const PWN = '$(touch${IFS}PWNED)';
// The last one forges, inside its name, the `virsh list --uuid --name` record of domain "2" (its UUID, below).
const NAMES = [PWN, '-x', '2', 'nl\nFAKE HEALTHY', "q'\"`touch PWNED2`", 'forge\ncb0c1a60-0000-4000-8000-000000000102 2'];

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}
function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;');

/** A test-driver node where NAMES[i] is running with id i+1 and reports `addresses[i]`. */
function nodeXml(addresses: string[]): string {
  const parts = NAMES.map((name, i) => {
    // The test driver reports network ip + 20*(id-1) + 1 for the first interface of domain `id`.
    const base = intToIp(ipToInt(addresses[i]!) - 20 * i - 1);
    return {
      net: `<network><name>hostile${i}</name><ip address='${base}' prefix='30'/></network>`,
      dom: `<domain type='test'><name>${xml(name)}</name><uuid>cb0c1a60-0000-4000-8000-0000000001${String(i).padStart(2, '0')}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices><interface type='network'><mac address='52:54:00:cd:00:0${i}'/><source network='hostile${i}'/></interface></devices></domain>`,
    };
  });
  return `<node>\n${parts.map((p) => p.net).join('\n')}\n${parts.map((p) => p.dom).join('\n')}\n</node>\n`;
}

/** Every documented style, one command: the docs' logger line, double and single quotes, unquoted, inside $(…). */
const ACTION = [
  `logger -t clonebox-test "{{vm}} is down" 2>/dev/null || true`,
  `printf '%s\\n' "VM {{vm}} at {{address}} is down" >> double.log`,
  `printf '%s\\n' '{{vm}}' >> single.log`,
  `printf '%s\\n' {{vm}} >> unquoted.log`,
  `printf '%s\\n' "$(printf '%s' {{vm}})" >> subst.log`,
  `echo "{{vm}}" > /dev/null; echo '{{vm}}' > /dev/null; echo {{vm}} > /dev/null`,
  `printf '%s %s\\n' {{check}} "{{status}}" >> fired.log`,
].join('; ');

const GUEST_ACTION = [`printf '%s\\n' "{{vm}}" >> guest-double.log`, `printf '%s\\n' '{{vm}}' >> guest-single.log`, `printf '%s\\n' {{vm}} >> guest-unquoted.log`, `echo "{{vm}} {{address}}" > /dev/null`].join('; ');

const lab = isRoot() ? await ensureLab() : undefined;
(lab ? describe : describe.skip)('hostile domain names', () => {
  const L = lab as Lab;

  it.each(['native', 'virsh'])('run no code and reach the action exactly (%s backend)', async (backend) => {
    const addresses = ['web-1', 'web-2', 'web-3', 'db-1', 'web-1', 'web-2'].map((vm) => L.vms[vm]!.address);
    const dir = tempDir(`hostile-${backend}`);
    const node = path.join(dir, 'node.xml');
    writeFileSync(node, nodeXml(addresses));
    const config = path.join(dir, '.clonebox.yaml');
    writeFileSync(
      config,
      stringify({
        libvirt: { uri: `test://${node}`, address_source: 'lease' },
        ssh: { user: 'root', identity_file: L.identityFile, known_hosts: L.knownHostsFile, host_key_policy: 'strict', connect_timeout: '5s' },
        // From the host, nothing listens on port 1 (or 2) of a lab VM: refused at once, UNHEALTHY, on_failure fires.
        health_checks: [
          { name: 'port-1', type: 'tcp', host: '{{address}}', port: 1, timeout: '3s', critical: true, failure_threshold: 1, on_failure: { command: ACTION, where: 'host' } },
          // The same styles in the guest (over SSH, the values set by quoted assignments); the lab guests share the host's /tmp.
          { name: 'port-2', type: 'tcp', host: '{{address}}', port: 2, timeout: '3s', critical: true, failure_threshold: 1, on_failure: `cd ${dir} && ${GUEST_ACTION}` },
        ],
      }),
    );
    const r = await clonebox(['health', 'check', '--all', '--config', config, '--store', path.join(dir, 'h.db'), '--libvirt-backend', backend, '-o', 'json', '-o', 'table', '-o', 'nagios'], { cwd: dir });
    expect(readdirSync(dir).filter((f) => f.startsWith('PWNED')), `stderr: ${r.stderr}`).toEqual([]);
    expect(existsSync(path.join(process.cwd(), 'PWNED'))).toBe(false);
    expect(r.code, r.stderr).toBe(2);

    const json = JSON.parse(r.stdout.slice(0, r.stdout.indexOf('\n}\n') + 2)) as { reports: { vm_name: string; address?: string; overall_status: string }[] };
    const byName = new Map(json.reports.map((x) => [x.vm_name, x]));
    NAMES.forEach((name, i) => {
      expect(byName.get(name), `no report for ${JSON.stringify(name)}`).toMatchObject({ address: addresses[i], overall_status: 'UNHEALTHY' });
    });

    // Each action got its domain's exact name, whatever the quoting.
    const lines = (file: string) => readFileSync(path.join(dir, file), 'utf8');
    const splitRecords = (text: string) => NAMES.every((n) => text.includes(`${n}\n`));
    expect(splitRecords(lines('single.log')), lines('single.log')).toBe(true);
    expect(splitRecords(lines('unquoted.log')), lines('unquoted.log')).toBe(true);
    expect(splitRecords(lines('subst.log')), lines('subst.log')).toBe(true);
    NAMES.forEach((name, i) => expect(lines('double.log')).toContain(`VM ${name} at ${addresses[i]} is down\n`));
    expect(lines('fired.log')).toBe('port-1 UNHEALTHY\n'.repeat(NAMES.length));
    for (const f of ['guest-double.log', 'guest-single.log', 'guest-unquoted.log']) expect(splitRecords(lines(f)), `${f}: ${lines(f)}`).toBe(true);

    // People see the names escaped: the line-break name cannot forge a table or Nagios line of its own.
    expect(r.stdout).toContain('nl\\nFAKE HEALTHY');
    expect(r.stdout).not.toMatch(/^FAKE HEALTHY/m);
    expect(r.stderr).toMatch(/action nl\\nFAKE HEALTHY\/port-1: on_failure .* ok/);
    expect(r.stderr).toMatch(/action nl\\nFAKE HEALTHY\/port-2: on_failure .* ok/);
  });
});
