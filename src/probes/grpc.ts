/**
 * gRPC health: `grpc.health.v1.Health/Check` (the standard health protocol) over Node's own HTTP/2,
 * on whatever stream target.connect gives (the SSH tunnel for `localhost`). The request and reply
 * are one-field protobuf messages, encoded here by hand rather than with generated code:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3
 */
import { connect as http2Connect, constants as h2, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { GrpcCheck } from '../config/schema.js';
import { outcomeFromError } from './common.js';
import { CaFileError, judgeCertificate, tlsHandshake } from './tls.js';
import type { Probe, ProbeOutcome } from './types.js';

export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

/** gRPC status codes by number, for messages. */
const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
];

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** A length-prefixed gRPC message (uncompressed) holding HealthCheckRequest{service}. */
export function encodeHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const message = name.length ? Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]) : Buffer.alloc(0);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

function readVarint(buf: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length && shift < 35; i++) {
    value += (buf[i]! & 0x7f) * 2 ** shift;
    shift += 7;
    if ((buf[i]! & 0x80) === 0) return [value, i + 1];
  }
  throw new Error('truncated varint');
}

/** The status field of the first HealthCheckResponse in a gRPC body; throws on a malformed one. */
export function decodeHealthResponse(body: Buffer): number {
  if (body.length < 5) throw new Error(`a gRPC message needs 5 header bytes, got ${body.length}`);
  if (body[0] !== 0) throw new Error('the reply is compressed, which was not asked for');
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) throw new Error(`the reply is cut short (${body.length - 5} of ${length} bytes)`);
  const msg = body.subarray(5, 5 + length);
  let status = 0; // proto3: an absent field is its zero value
  for (let at = 0; at < msg.length; ) {
    const [key, next] = readVarint(msg, at);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const [v, after] = readVarint(msg, next);
      if (field === 1) status = v;
      at = after;
    } else if (wire === 2) {
      const [len, after] = readVarint(msg, next);
      at = after + len;
    } else if (wire === 1) at = next + 8;
    else if (wire === 5) at = next + 4;
    else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
  return status;
}

/** `host:port` / `[v6]:port` → parts. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[(.+)\]|(.+)):(\d+)$/.exec(address);
  return { host: m?.[1] ?? m?.[2] ?? address, port: Number(m?.[3] ?? 0) };
}

interface GrpcReply {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
}

function call(session: ClientHttp2Session, check: GrpcCheck, signal: AbortSignal): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const req = session.request(
      {
        [h2.HTTP2_HEADER_METHOD]: 'POST',
        [h2.HTTP2_HEADER_PATH]: '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.max(1, check.timeout)}m`,
        'user-agent': 'clonebox-health',
      },
      { signal },
    );
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (chunk: Buffer) => {
      if (size < 64 * 1024) chunks.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    session.on('error', reject);
    req.end(encodeHealthRequest(check.service));
  });
}

function judge(reply: GrpcReply, check: GrpcCheck, where: string, details: Record<string, unknown>): ProbeOutcome {
  const httpStatus = Number(reply.headers[h2.HTTP2_HEADER_STATUS] ?? 0);
  details.http_status = httpStatus;
  // A Trailers-Only reply carries grpc-status in its headers.
  const rawCode = reply.trailers['grpc-status'] ?? reply.headers['grpc-status'];
  const grpcMessage = String(reply.trailers['grpc-message'] ?? reply.headers['grpc-message'] ?? '');
  if (httpStatus !== 200) {
    return { status: 'UNHEALTHY', message: `${where} answered HTTP ${httpStatus}, not a gRPC reply`, details };
  }
  const code = rawCode === undefined ? undefined : Number(rawCode);
  if (code !== undefined) details.grpc_status = GRPC_CODES[code] ?? code;
  const service = check.service ? `service "${check.service}"` : 'the server';
  if (code === 5) {
    details.serving_status = 'SERVICE_UNKNOWN';
    return { status: 'UNHEALTHY', message: `SERVICE_UNKNOWN: ${where} does not know ${service}`, details };
  }
  if (code === 12) return { status: 'UNHEALTHY', message: `${where} does not implement grpc.health.v1.Health (UNIMPLEMENTED)`, details };
  if (code !== undefined && code !== 0) {
    const name = GRPC_CODES[code] ?? `code ${code}`;
    return { status: 'UNHEALTHY', message: `${where} answered gRPC ${name}${grpcMessage ? `: ${decodeURIComponent(grpcMessage)}` : ''}`, details };
  }
  let serving: number;
  try {
    serving = decodeHealthResponse(reply.body);
  } catch (err) {
    return { status: 'UNHEALTHY', message: `${where} sent an unreadable health reply: ${(err as Error).message}`, details };
  }
  const name = SERVING_STATUS[serving] ?? `status ${serving}`;
  details.serving_status = name;
  if (serving === 1) return { status: 'HEALTHY', message: `SERVING: ${service} at ${where}`, details };
  return { status: 'UNHEALTHY', message: `${name}: ${service} at ${where}`, details };
}

export const grpcProbe: Probe<GrpcCheck> = async (check, target, signal) => {
  const address = check.address.replaceAll('{{address}}', target.address.includes(':') ? `[${target.address}]` : target.address);
  const { host, port } = splitHostPort(address);
  const details: Record<string, unknown> = { address, service: check.service, tls: check.tls !== false };
  let socket: Duplex | undefined;
  let tls: TLSSocket | undefined;
  let session: ClientHttp2Session | undefined;
  try {
    try {
      socket = (await target.connect(host, port, signal)).socket;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
        return { status: 'UNHEALTHY', message: `connection to ${address} refused: nothing listens there`, details };
      }
      throw err;
    }
    let stream: Duplex = socket;
    if (check.tls !== false) {
      const o = check.tls === true ? { insecure: false } : check.tls;
      const opts = { serverName: o.server_name ?? host, caFile: o.ca_file, insecure: o.insecure, alpn: ['h2'] };
      tls = await tlsHandshake(socket, opts, signal);
      const cert = judgeCertificate(tls, opts);
      if (cert.certificate) details.certificate = cert.certificate;
      if (cert.status !== 'HEALTHY') return { status: cert.status, message: `${address}: ${cert.message}`, details };
      if (tls.alpnProtocol !== 'h2') return { status: 'UNHEALTHY', message: `${address} did not agree to HTTP/2 over TLS (ALPN h2), so it is no gRPC server`, details };
      stream = tls;
    }
    const s = stream;
    session = http2Connect(`${check.tls !== false ? 'https' : 'http'}://${address}`, { createConnection: () => s as never });
    const reply = await call(session, check, signal);
    return judge(reply, check, address, details);
  } catch (err) {
    if (err instanceof CaFileError) return { status: 'UNKNOWN', message: err.message, details };
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_HTTP2_ERROR' || code === 'ERR_HTTP2_SESSION_ERROR' || code === 'ERR_HTTP2_STREAM_ERROR' || code === 'ERR_HTTP2_INVALID_SESSION') {
      return { status: 'UNHEALTHY', message: `${address} does not speak gRPC (HTTP/2): ${(err as Error).message}`, details: { ...details, error_code: code } };
    }
    const o = outcomeFromError(err, signal, check.timeout, `gRPC health check of ${address}`);
    return { ...o, details: { ...details, ...o.details } };
  } finally {
    session?.destroy();
    tls?.destroy();
    socket?.destroy();
  }
};
