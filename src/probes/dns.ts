/**
 * DNS: ask a server one question and compare the reply's rcode and answers with what is expected.
 *   no `server`          the guest's resolver: the first nameserver of the guest's /etc/resolv.conf,
 *                        asked from inside the guest (DNS over TCP through the SSH tunnel)
 *   `server: localhost`  a resolver on the guest's loopback, the same way
 *   `server: IP[:port]`  from the hypervisor, over UDP (TCP when `protocol: tcp` or the reply is truncated)
 */
import { isIP } from 'node:net';
import { parseDnsServer, type DnsCheck } from '../config/schema.js';
import { firstLine, outcomeFromError } from './common.js';
import { answerMatches, answerText, queryStream, queryUdp, reverseName, type DnsReply } from './dns-wire.js';
import type { ProbeTransport } from '../report.js';
import { isGuestLocal } from './registry.js';
import type { Probe, ProbeOutcome, ProbeTarget } from './types.js';

/** The first `nameserver` of a resolv.conf (its IPv6 zone, `%eth0`, dropped). */
export function resolvConfNameserver(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) {
      const ip = m[1]!.replace(/%.*$/, '');
      if (isIP(ip)) return ip;
    }
  }
  return undefined;
}

interface Asked {
  reply: DnsReply;
  /** host:port asked. */
  server: string;
  /** How the message names it: `the guest's resolver 127.0.0.53:53`, `10.0.0.2:53`. */
  label: string;
  /** Milliseconds from the query sent to the reply read. */
  ms: number;
  protocol: 'udp' | 'tcp';
  via: ProbeTransport;
}

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

async function overTcp(target: ProbeTarget, host: string, port: number, name: string, type: string, signal: AbortSignal, fromGuest: boolean) {
  const { socket, via } = await target.connect(host, port, signal, { fromGuest });
  try {
    const t0 = performance.now();
    return { reply: await queryStream(socket, name, type, signal), via, ms: Math.round(performance.now() - t0) };
  } finally {
    socket.destroy();
  }
}

async function ask(check: DnsCheck, target: ProbeTarget, name: string, signal: AbortSignal): Promise<Asked | ProbeOutcome> {
  const type = check.record_type;
  if (check.server === undefined) {
    const r = await target.exec('cat /etc/resolv.conf', { signal });
    const ns = r.exitCode === 0 ? resolvConfNameserver(r.stdout) : undefined;
    if (!ns) {
      const why = r.exitCode === 0 ? 'has no nameserver line' : `cannot be read (${firstLine(r.stderr) || `exit ${r.exitCode}`})`;
      return { status: 'UNKNOWN', message: `the guest's /etc/resolv.conf ${why}; set server: to the resolver to ask` };
    }
    const asked = await overTcp(target, ns, 53, name, type, signal, true);
    return { ...asked, server: hostPort(ns, 53), label: `the guest's resolver ${hostPort(ns, 53)}`, protocol: 'tcp' };
  }
  const parsed = parseDnsServer(check.server)!;
  const host = parsed.host === '{{address}}' ? target.address : parsed.host;
  if (isGuestLocal(host)) {
    // A minimal guest may not resolve "localhost" itself (LAB-NOTES): ask its loopback address.
    const ip = host === 'localhost' ? '127.0.0.1' : host;
    const asked = await overTcp(target, ip, parsed.port, name, type, signal, false);
    return { ...asked, server: hostPort(ip, parsed.port), label: `${hostPort(ip, parsed.port)} in the guest`, protocol: 'tcp' };
  }
  const where = hostPort(host, parsed.port);
  if (check.protocol === 'udp') {
    const t0 = performance.now();
    const reply = await queryUdp(host, parsed.port, name, type, signal);
    // A truncated reply over UDP: ask again over TCP (RFC 7766), as resolvers do.
    if (!reply.truncated) return { reply, server: where, label: where, protocol: 'udp', via: 'host', ms: Math.round(performance.now() - t0) };
  }
  const asked = await overTcp(target, host, parsed.port, name, type, signal, false);
  return { ...asked, server: where, label: where, protocol: 'tcp' };
}

function list(texts: string[], max = 3): string {
  if (texts.length === 0) return 'nothing';
  return texts.length > max ? `${texts.slice(0, max).join(', ')}, … (${texts.length} in all)` : texts.join(', ');
}

export const dnsProbe: Probe<DnsCheck> = async (check, target, signal) => {
  const type = check.record_type;
  const name = type === 'PTR' ? reverseName(check.query) : check.query;
  const details: Record<string, unknown> = { query: name, record_type: type };
  try {
    const asked = await ask(check, target, name, signal);
    if (!('reply' in asked)) return asked;
    const { reply, server, label, protocol, via } = asked;
    const answers = reply.answers.filter((a) => a.type === type).map(answerText);
    Object.assign(details, {
      server,
      protocol,
      rcode: reply.rcode,
      answers,
      ...(reply.authoritative ? { authoritative: true } : {}),
      response_ms: asked.ms,
    });
    const q = `${name} ${type}`;
    const base = { transport: via, details };
    if (reply.rcode !== check.expected_rcode) {
      return { ...base, status: 'UNHEALTHY', message: `${reply.rcode} for ${q} from ${label} (expected ${check.expected_rcode})` };
    }
    if (check.expected_rcode !== 'NOERROR') return { ...base, status: 'HEALTHY', message: `${reply.rcode} for ${q} from ${label}, as expected` };
    if (answers.length === 0) return { ...base, status: 'UNHEALTHY', message: `no ${type} record for ${name} at ${label} (NOERROR, empty answer)` };
    const missing = (check.expected_answers ?? []).filter((want) => !answers.some((got) => answerMatches(type, got, want)));
    if (missing.length) {
      return { ...base, status: 'UNHEALTHY', message: `${q} is ${list(answers)} at ${label}; missing ${list(missing)}` };
    }
    return { ...base, status: 'HEALTHY', message: `${q} is ${list(answers)} (from ${label})` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = check.server ?? "the guest's resolver";
    if (code === 'ECONNREFUSED') {
      return { status: 'UNHEALTHY', message: `no DNS server answers at ${where}: connection refused`, details: { ...details, error_code: code } };
    }
    const o = outcomeFromError(err, signal, check.timeout, `DNS query ${name} ${type} to ${where}`);
    return { ...o, details: { ...details, ...o.details } };
  }
};
