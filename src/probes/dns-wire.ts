/**
 * DNS on the wire for the dns probe: one query over UDP (from the host) or over a TCP stream (a
 * direct socket, or the SSH tunnel into the guest), and the answers in the text form people write
 * in `expected_answers`.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import dnsPacket, { type Answer, type DecodedPacket, type RecordType } from 'dns-packet';
import { DNS_RCODES } from '../config/schema.js';

/** What a DNS server said. */
export interface DnsReply {
  rcode: string;
  truncated: boolean;
  authoritative: boolean;
  answers: Answer[];
}

export function queryPacket(id: number, name: string, type: string): dnsPacket.Packet {
  return { type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as RecordType, name, class: 'IN' }] };
}

function toReply(packet: DecodedPacket): DnsReply {
  const flags = packet.flags ?? 0;
  return {
    rcode: DNS_RCODES[flags & 0xf] ?? `RCODE${flags & 0xf}`,
    truncated: (flags & dnsPacket.TRUNCATED_RESPONSE) !== 0,
    authoritative: (flags & dnsPacket.AUTHORITATIVE_ANSWER) !== 0,
    answers: packet.answers ?? [],
  };
}

/** Reject with the signal's reason when it aborts; the returned function stops listening. */
function onAbort(signal: AbortSignal, cleanup: () => void, reject: (e: unknown) => void): () => void {
  const listener = () => {
    cleanup();
    reject(signal.reason);
  };
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/** One query over a connected UDP socket, so an ICMP "port unreachable" comes back as ECONNREFUSED. */
export function queryUdp(host: string, port: number, name: string, type: string, signal: AbortSignal): Promise<DnsReply> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const id = randomInt(0, 65536);
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    const done = onAbort(signal, () => socket.close(), reject);
    const finish = (fn: () => void) => {
      done();
      try {
        socket.close();
      } catch {
        // already closed
      }
      fn();
    };
    socket.on('error', (err) => finish(() => reject(err)));
    socket.on('message', (msg) => {
      let packet: DecodedPacket;
      try {
        packet = dnsPacket.decode(msg);
      } catch (err) {
        return finish(() => reject(new Error(`unreadable DNS reply: ${(err as Error).message}`)));
      }
      if (packet.id !== id) return; // not ours (a late reply to someone else's query)
      finish(() => resolve(toReply(packet)));
    });
    socket.connect(port, host, () => socket.send(dnsPacket.encode(queryPacket(id, name, type))));
  });
}

/** One query over a TCP stream (RFC 1035 §4.2.2: each message prefixed by its 2-byte length). */
export function queryStream(stream: Duplex, name: string, type: string, signal: AbortSignal): Promise<DnsReply> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const id = randomInt(0, 65536);
    let buf = Buffer.alloc(0);
    const done = onAbort(signal, () => stream.destroy(), reject);
    const fail = (err: Error) => {
      done();
      reject(err);
    };
    stream.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      const length = buf.readUInt16BE(0);
      if (buf.length < 2 + length) return;
      done();
      try {
        const packet = dnsPacket.decode(buf.subarray(2, 2 + length));
        if (packet.id !== id) return reject(new Error('the DNS reply answers another query (id mismatch)'));
        resolve(toReply(packet));
      } catch (err) {
        reject(new Error(`unreadable DNS reply: ${(err as Error).message}`));
      }
    });
    stream.on('error', fail);
    stream.on('end', () => fail(Object.assign(new Error('the DNS server closed the connection without an answer'), { code: 'ECONNRESET' })));
    stream.write(dnsPacket.streamEncode(queryPacket(id, name, type)));
  });
}

/** `10.1.2.3` → `3.2.1.10.in-addr.arpa`, an IPv6 address → its ip6.arpa name; anything else unchanged. */
export function reverseName(query: string): string {
  const v = isIP(query);
  if (v === 4) return `${query.split('.').reverse().join('.')}.in-addr.arpa`;
  if (v === 6) {
    const [head = '', tail = ''] = query.split('::');
    const part = (s: string) => (s ? s.split(':') : []);
    const h = part(head);
    const t = part(tail);
    const groups = query.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    const nibbles = groups.map((g) => g.padStart(4, '0')).join('');
    return `${[...nibbles].reverse().join('.')}.ip6.arpa`;
  }
  return query;
}

const normName = (n: string) => n.toLowerCase().replace(/\.$/, '');

/** An IPv6 address in its one canonical (compressed, lowercase) form. */
function normIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/** An answer's data as text: `10.1.2.3`, `mail.example.com`, `10 mail.example.com` (MX), `0 5 5060 sip.example.com` (SRV). */
export function answerText(a: Answer): string {
  switch (a.type) {
    case 'A':
    case 'AAAA':
      return normIp(a.data);
    case 'CNAME':
    case 'NS':
    case 'PTR':
    case 'DNAME':
      return normName(a.data);
    case 'MX':
      return `${a.data.preference ?? 0} ${normName(a.data.exchange)}`;
    case 'SRV':
      return `${a.data.priority ?? 0} ${a.data.weight ?? 0} ${a.data.port} ${normName(a.data.target)}`;
    case 'TXT': {
      const parts = Array.isArray(a.data) ? a.data : [a.data];
      return parts.map((p) => (Buffer.isBuffer(p) ? p.toString('utf8') : p)).join('');
    }
    default:
      return JSON.stringify((a as { data?: unknown }).data ?? null);
  }
}

/** Does one answer (as answerText gives it) satisfy what a person wrote? MX and SRV also match by target name alone. */
export function answerMatches(type: string, text: string, expected: string): boolean {
  const want = expected.trim();
  switch (type) {
    case 'A':
    case 'AAAA':
      return isIP(want) !== 0 && normIp(want) === text;
    case 'TXT':
      return text === want;
    case 'MX':
    case 'SRV': {
      const parts = text.split(' ');
      const target = parts.at(-1)!;
      const w = normName(want.replace(/\s+/g, ' '));
      return w === text || w === target || (type === 'SRV' && w === `${target}:${parts[2]}`);
    }
    default:
      return normName(want) === text;
  }
}
