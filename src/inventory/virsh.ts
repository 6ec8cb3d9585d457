/**
 * The libvirt backend that shells out to `virsh`: the fallback where the native binding cannot be
 * built. One `virsh` call costs ~13 ms here (LAB-NOTES.md), so it is fine for a handful of VMs.
 */
import { execFile } from 'node:child_process';
import { isGuestLocalAddress } from './addresses.js';
import { LibvirtError, type AddressSource, type DomainInfo, type DomainState, type InterfaceAddress, type LibvirtBackend } from './types.js';

const VIRSH_STATES: Record<string, DomainState> = {
  running: 'running',
  idle: 'blocked',
  paused: 'paused',
  'in shutdown': 'shutdown',
  'shut off': 'shutoff',
  crashed: 'crashed',
  pmsuspended: 'pmsuspended',
  'no state': 'nostate',
};

interface VirshResult {
  stdout: string;
  stderr: string;
}

/** Parse `virsh -q list --all` (`Id Name State`, `-` as id for inactive domains). */
export function parseVirshList(text: string): DomainInfo[] {
  const domains: DomainInfo[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+|-)\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const [, id, name, state] = m as unknown as [string, string, string, string];
    domains.push({ name, state: VIRSH_STATES[state] ?? 'unknown', ...(id === '-' ? {} : { id: Number(id) }) });
  }
  return domains;
}

/** Parse `virsh -q domifaddr DOM --full`: `name mac ipv4|ipv6 addr/prefix`, one line per address. */
export function parseDomifaddr(text: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+(\S+)\s+(ipv4|ipv6)\s+(\S+?)\/(\d+)\s*$/.exec(line);
    if (!m) continue;
    const [, iface, mac, family, address, prefix] = m as unknown as [string, string, string, 'ipv4' | 'ipv6', string, string];
    out.push({ interface: iface, ...(mac === '-' ? {} : { mac }), family, address, prefix: Number(prefix) });
  }
  return out;
}

/** Turn virsh's stderr into one sentence and a kind the engine can act on. */
export function virshError(uri: string, stderr: string, domain?: string): LibvirtError {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter((l) => l && !l.startsWith('I/O warning'));
  const detail = lines.filter((l) => !/^failed to (connect to the hypervisor|get domain)/.test(l)).join('; ') || lines.join('; ');
  if (lines.some((l) => l.startsWith('failed to connect to the hypervisor'))) {
    return new LibvirtError(
      `cannot connect to libvirt at ${uri}: ${detail}. Is libvirtd running and may this user open its socket? Check --connect or libvirt.uri.`,
      undefined,
      'connect',
    );
  }
  if (domain && lines.some((l) => l.startsWith('failed to get domain') || /Domain not found/i.test(l))) {
    return new LibvirtError(`libvirt at ${uri} has no domain named "${domain}"`, 42, 'no-domain');
  }
  if (/domain is not running/i.test(detail)) return new LibvirtError(`domain "${domain}" is not running`, 55, 'not-running');
  return new LibvirtError(`virsh failed${domain ? ` for domain "${domain}"` : ''}: ${detail || 'no message'}`);
}

export class VirshBackend implements LibvirtBackend {
  readonly kind = 'virsh' as const;
  constructor(
    readonly uri: string,
    private readonly virsh = 'virsh',
    private readonly timeoutMs = 15_000,
  ) {}

  private run(args: string[], readOnly: boolean, domain?: string): Promise<VirshResult> {
    const argv = ['-c', this.uri, ...(readOnly ? ['-r'] : []), '-q', ...args];
    return new Promise((resolve, reject) => {
      execFile(
        this.virsh,
        argv,
        { timeout: this.timeoutMs, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (!err) return resolve({ stdout, stderr });
          const e = err as NodeJS.ErrnoException & { killed?: boolean };
          if (e.code === 'ENOENT') {
            return reject(new LibvirtError('virsh is not installed; install libvirt-clients (apt-get install libvirt-clients)', undefined, 'connect'));
          }
          if (e.killed) return reject(new LibvirtError(`virsh did not answer within ${this.timeoutMs / 1000}s (uri ${this.uri})`, undefined, 'connect'));
          reject(virshError(this.uri, stderr, domain));
        },
      );
    });
  }

  async listDomains(): Promise<DomainInfo[]> {
    const [table, uuids] = await Promise.all([this.run(['list', '--all'], true), this.run(['list', '--all', '--uuid', '--name'], true)]);
    const uuidByName = new Map<string, string>();
    for (const line of uuids.stdout.split('\n')) {
      const m = /^\s*([0-9a-f-]{36})\s+(\S+)\s*$/i.exec(line);
      if (m) uuidByName.set(m[2]!, m[1]!);
    }
    return parseVirshList(table.stdout).map((d) => {
      const uuid = uuidByName.get(d.name);
      return uuid ? { name: d.name, uuid, ...(d.id === undefined ? {} : { id: d.id }), state: d.state } : d;
    });
  }

  async interfaceAddresses(domain: string, source: AddressSource): Promise<InterfaceAddress[]> {
    // The agent source needs a read-write connection; the others work read-only.
    const { stdout } = await this.run(['domifaddr', domain, '--full', '--source', source], source !== 'agent', domain);
    const addrs = parseDomifaddr(stdout);
    // A guest agent reports the guest's own loopback and link-local addresses: useless from the host.
    return source === 'agent' ? addrs.filter((a) => !isGuestLocalAddress(a.address, a.family)) : addrs;
  }

  async agentCommand(domain: string, command: string | object, timeoutSeconds = 5): Promise<string> {
    const json = typeof command === 'string' ? command : JSON.stringify(command);
    const { stdout } = await this.run(['qemu-agent-command', domain, json, '--timeout', String(Math.max(1, Math.round(timeoutSeconds)))], false, domain);
    return stdout.trim();
  }

  async close(): Promise<void> {}
}
