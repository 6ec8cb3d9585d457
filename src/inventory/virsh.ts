/**
 * The libvirt backend that shells out to `virsh`: the fallback where the native binding cannot be
 * built. One `virsh` call costs ~13 ms here (LAB-NOTES.md), so it is fine for a handful of VMs.
 */
import { execFile } from 'node:child_process';
import { printable } from '../util/printable.js';
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

const STATE_WORDS = Object.keys(VIRSH_STATES).join('|');
const LIST_ROW = new RegExp(`^\\s*(\\d+|-)\\s+(.*?)\\s+(${STATE_WORDS})\\s*$`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parse `virsh -q list --all` (`Id Name State`, `-` as id for inactive domains). Names are as virsh shows them. */
export function parseVirshList(text: string): DomainInfo[] {
  const domains: DomainInfo[] = [];
  for (const line of text.split('\n')) {
    const m = LIST_ROW.exec(line);
    if (!m) continue;
    const [, id, name, state] = m as unknown as [string, string, string, string];
    domains.push({ name, state: VIRSH_STATES[state] ?? 'unknown', ...(id === '-' ? {} : { id: Number(id) }) });
  }
  return domains;
}

/**
 * Parse `virsh -q list --all --uuid --name`: `UUID NAME` per domain. virsh prints names raw, so a
 * name holding a line break continues on the next line; such lines are joined back. (A name could
 * hold a line that looks like another record: the caller checks every odd record by its UUID.)
 */
export function parseVirshUuidNames(text: string): { uuid: string; name: string }[] {
  const out: { uuid: string; name: string }[] = [];
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  for (const line of lines) {
    const m = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) (.*)$/i.exec(line);
    if (m) out.push({ uuid: m[1]!.toLowerCase(), name: m[2]! });
    else if (out.length > 0) out[out.length - 1]!.name += `\n${line}`;
  }
  return out;
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
  // libvirt's text can carry a domain name or a guest agent's words: shown escaped, on one line each.
  const lines = stderr
    .split('\n')
    .map((l) => printable(l.replace(/^error:\s*/, '').trim()))
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
    return new LibvirtError(`libvirt at ${uri} has no domain named "${printable(domain)}"`, 42, 'no-domain');
  }
  if (/domain is not running/i.test(detail)) return new LibvirtError(`domain "${printable(domain ?? '')}" is not running`, 55, 'not-running');
  return new LibvirtError(`virsh failed${domain ? ` for domain "${printable(domain)}"` : ''}: ${detail || 'no message'}`);
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

  /** Domain name → UUID, from the last listDomains(): virsh is always given the UUID, never the name. */
  #uuids = new Map<string, string>();

  /**
   * Every domain with its UUID, id and state. Names are data: each is read back exactly (a name
   * with spaces, line breaks, a leading `-` or the look of an id or UUID is looked up by its UUID).
   */
  async listDomains(): Promise<DomainInfo[]> {
    const [table, named] = await Promise.all([this.run(['list', '--all'], true), this.run(['list', '--all', '--uuid', '--name'], true)]);
    const rows = parseVirshList(table.stdout);
    const records = parseVirshUuidNames(named.stdout);
    const rowsByName = new Map<string, DomainInfo[]>();
    for (const r of rows) rowsByName.set(r.name, [...(rowsByName.get(r.name) ?? []), r]);
    const uuidCount = new Map<string, number>();
    for (const r of records) uuidCount.set(r.uuid, (uuidCount.get(r.uuid) ?? 0) + 1);
    const byUuid = new Map<string, DomainInfo>();
    const odd: string[] = [];
    for (const rec of records) {
      const match = rowsByName.get(rec.name);
      // Plain case: the table shows this very name once, and no other record claims the UUID.
      if (match?.length === 1 && uuidCount.get(rec.uuid) === 1 && !byUuid.has(rec.uuid)) {
        const row = match[0]!;
        byUuid.set(rec.uuid, { name: rec.name, uuid: rec.uuid, ...(row.id === undefined ? {} : { id: row.id }), state: row.state });
      } else if (!odd.includes(rec.uuid)) odd.push(rec.uuid);
    }
    for (const uuid of odd) {
      byUuid.delete(uuid);
      const d = await this.#byUuid(uuid);
      if (d) byUuid.set(uuid, d);
    }
    const domains = [...byUuid.values()];
    this.#uuids = new Map(domains.map((d) => [d.name, d.uuid!]));
    // virsh's order: active domains by id, then inactive ones by name.
    return domains.sort((a, b) => (a.id ?? Infinity) - (b.id ?? Infinity) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** One domain read back by its UUID; undefined when there is none (a record forged inside another's name). */
  async #byUuid(uuid: string): Promise<DomainInfo | undefined> {
    if (!UUID.test(uuid)) return undefined;
    const ref = `--domain=${uuid}`;
    try {
      const [name, state, id] = await Promise.all([this.run(['domname', ref], true), this.run(['domstate', ref], true), this.run(['domid', ref], true)]);
      const n = name.stdout.endsWith('\n') ? name.stdout.slice(0, -1) : name.stdout;
      const st = VIRSH_STATES[state.stdout.trim()] ?? 'unknown';
      const num = /^\s*(\d+)\s*$/.exec(id.stdout);
      return { name: n, uuid, ...(num ? { id: Number(num[1]) } : {}), state: st };
    } catch (err) {
      if (err instanceof LibvirtError && err.kind === 'connect') throw err;
      return undefined;
    }
  }

  /** `--domain=UUID` for a domain name: never the name itself, which virsh would read as an id or UUID if it looks like one. */
  async #ref(domain: string): Promise<string> {
    let uuid = this.#uuids.get(domain);
    if (uuid === undefined) {
      await this.listDomains();
      uuid = this.#uuids.get(domain);
    }
    if (uuid === undefined) throw new LibvirtError(`libvirt at ${this.uri} has no domain named "${printable(domain)}"`, 42, 'no-domain');
    return `--domain=${uuid}`;
  }

  async interfaceAddresses(domain: string, source: AddressSource): Promise<InterfaceAddress[]> {
    // The agent source needs a read-write connection; the others work read-only.
    const { stdout } = await this.run(['domifaddr', await this.#ref(domain), '--full', '--source', source], source !== 'agent', domain);
    const addrs = parseDomifaddr(stdout);
    // A guest agent reports the guest's own loopback and link-local addresses: useless from the host.
    return source === 'agent' ? addrs.filter((a) => !isGuestLocalAddress(a.address, a.family)) : addrs;
  }

  async agentCommand(domain: string, command: string | object, timeoutSeconds = 5): Promise<string> {
    const json = typeof command === 'string' ? command : JSON.stringify(command);
    const timeout = String(Math.max(1, Math.round(timeoutSeconds)));
    const { stdout } = await this.run(['qemu-agent-command', await this.#ref(domain), '--timeout', timeout, `--cmd=${json}`], false, domain);
    return stdout.trim();
  }

  async close(): Promise<void> {}
}
