import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { formatDuration } from '../config/duration.js';
import { compileRegex, type HttpCheck } from '../config/schema.js';
import { capText } from '../util/cap.js';
import { isSecretHeader, redactUrl, scrubSecrets } from '../util/redact.js';
import { outcomeFromError } from './common.js';
import { CaFileError, judgeCertificate, tlsHandshake, worse, type CertificateVerdict } from './tls.js';
import type { Probe, ProbeOutcome } from './types.js';

/** Bytes of a body read for expected_body / expected_json; the rest is never read. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Does `actual` hold everything in `expected`? Objects match as subsets (nested keys), a key with
 * dots (`db.status`) is a path, arrays and scalars must be equal. Returns the first mismatch.
 */
export function jsonMismatch(actual: unknown, expected: Record<string, unknown>, prefix = ''): string | undefined {
  for (const [key, want] of Object.entries(expected)) {
    const path = prefix ? `${prefix}.${key}` : key;
    let got: unknown = actual;
    for (const part of key.split('.')) {
      got = got !== null && typeof got === 'object' && !Array.isArray(got) ? (got as Record<string, unknown>)[part] : undefined;
    }
    if (want !== null && typeof want === 'object' && !Array.isArray(want)) {
      if (got === null || typeof got !== 'object' || Array.isArray(got)) return `JSON key ${path} is ${show(got)}, expected an object`;
      const inner = jsonMismatch(got, want as Record<string, unknown>, path);
      if (inner) return inner;
    } else if (JSON.stringify(got) !== JSON.stringify(want)) {
      return `JSON key ${path} is ${show(got)}, expected ${show(want)}`;
    }
  }
  return undefined;
}

function show(v: unknown): string {
  return v === undefined ? 'missing' : capText(JSON.stringify(v), 80);
}

/** Read at most `limit` bytes of a response, then stop reading (a 100 MB body costs 1 MiB). */
function readCapped(res: IncomingMessage, limit: number, signal: AbortSignal): Promise<{ body: Buffer; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (truncated: boolean) => {
      signal.removeEventListener('abort', onAbort);
      resolve({ body: Buffer.concat(chunks), truncated });
    };
    const onAbort = () => {
      res.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    res.on('data', (chunk: Buffer) => {
      const room = limit - size;
      chunks.push(room < chunk.length ? chunk.subarray(0, room) : chunk);
      size += Math.min(room, chunk.length);
      if (size >= limit) {
        res.destroy();
        finish(true);
      }
    });
    res.on('end', () => finish(false));
    res.on('error', (err) => (size >= limit ? undefined : reject(err)));
  });
}

function send(check: HttpCheck, url: URL, stream: Duplex, signal: AbortSignal): Promise<IncomingMessage> {
  const headers: Record<string, string> = { 'user-agent': 'clonebox-health', ...check.headers };
  if (url.username && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        method: check.method,
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        headers,
        createConnection: () => stream as never,
        signal,
      },
      resolve,
    );
    req.on('error', reject);
    req.end(check.body);
  });
}

/** The response against status, body, regex and JSON expectations. */
function judgeResponse(check: HttpCheck, shownUrl: string, status: number, text: string, truncated: boolean, details: Record<string, unknown>): ProbeOutcome {
  const expected = Array.isArray(check.expected_status) ? check.expected_status : [check.expected_status];
  const inFirst = truncated ? ` in its first ${MAX_BODY_BYTES} bytes` : '';
  if (!expected.includes(status)) {
    return { status: 'UNHEALTHY', message: `HTTP ${status} from ${shownUrl} (expected ${expected.join(' or ')})`, details };
  }
  if (check.expected_body !== undefined && !text.includes(check.expected_body)) {
    return { status: 'UNHEALTHY', message: `body of ${shownUrl} does not contain ${JSON.stringify(check.expected_body)}${inFirst}`, details };
  }
  if (check.expected_body_regex !== undefined && !compileRegex(check.expected_body_regex).test(text)) {
    return { status: 'UNHEALTHY', message: `body of ${shownUrl} does not match ${check.expected_body_regex}${inFirst}`, details };
  }
  const bodyNote = check.expected_body !== undefined || check.expected_body_regex !== undefined ? ', body as expected' : '';
  if (check.expected_json === undefined) return { status: 'HEALTHY', message: `HTTP ${status}${bodyNote}`, details };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {
      status: 'UNHEALTHY',
      message: truncated ? `body of ${shownUrl} is larger than ${MAX_BODY_BYTES} bytes; expected_json needs a complete JSON document` : `body of ${shownUrl} is not JSON`,
      details,
    };
  }
  const mismatch = jsonMismatch(parsed, check.expected_json);
  return mismatch ? { status: 'UNHEALTHY', message: mismatch, details } : { status: 'HEALTHY', message: `HTTP ${status}, JSON as expected`, details };
}

/** Fold the certificate's and the response time's verdicts into the response's. */
function combine(outcome: ProbeOutcome, cert: CertificateVerdict | undefined, slow: string | undefined): ProbeOutcome {
  let { status, message } = outcome;
  if (cert && cert.status !== 'HEALTHY') {
    status = worse(status, cert.status);
    message = `${message}; ${cert.message}`;
  }
  if (slow) {
    status = worse(status, 'DEGRADED');
    message = `${message}; ${slow}`;
  }
  return { ...outcome, status, message };
}

export const httpProbe: Probe<HttpCheck> = async (check, target, signal) => {
  const url = new URL(check.url);
  const shownUrl = redactUrl(check.url);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const details: Record<string, unknown> = { url: shownUrl, method: check.method };
  const secretValues = Object.entries(check.headers).filter(([k]) => isSecretHeader(k)).map(([, v]) => v);
  let connected: { socket: Duplex; remote?: string } | undefined;
  let tls: TLSSocket | undefined;
  try {
    try {
      connected = await target.connect(host, port, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
        return { status: 'UNHEALTHY', message: `connection to ${host}:${port} refused: nothing listens there`, details };
      }
      throw err;
    }
    if (connected.remote) details.remote_address = connected.remote;
    // The service's time: from the open stream (TLS handshake included) to the response read.
    const started = performance.now();
    let stream: Duplex = connected.socket;
    let cert: CertificateVerdict | undefined;
    if (url.protocol === 'https:') {
      const opts = { serverName: check.server_name ?? host, caFile: check.ca_file, insecure: check.insecure };
      tls = await tlsHandshake(connected.socket, opts, signal);
      cert = judgeCertificate(tls, opts, { warningMs: check.cert_expiry_warning, criticalMs: check.cert_expiry_critical });
      if (cert.certificate) details.certificate = cert.certificate;
      // A server that failed the trust or name check never sees the request (its headers may hold credentials).
      if (cert.status === 'UNHEALTHY') return { status: 'UNHEALTHY', message: `${shownUrl}: ${cert.message}`, details };
      stream = tls;
    }
    const res = await send(check, url, stream, signal);
    details.status_code = res.statusCode;
    const contentType = res.headers['content-type'];
    if (contentType) details.content_type = contentType;
    const status = res.statusCode ?? 0;
    const expected = Array.isArray(check.expected_status) ? check.expected_status : [check.expected_status];
    const needBody =
      check.expected_body !== undefined ||
      check.expected_body_regex !== undefined ||
      check.expected_json !== undefined ||
      check.max_response_time !== undefined ||
      !expected.includes(status);
    const { body, truncated } = needBody ? await readCapped(res, MAX_BODY_BYTES, signal) : (res.destroy(), { body: Buffer.alloc(0), truncated: false });
    const responseMs = Math.round(performance.now() - started);
    details.response_ms = responseMs;
    const text = body.toString('utf8');
    if (needBody) details.body = capText(text, 1024);
    if (truncated) details.body_truncated_at = MAX_BODY_BYTES;
    let slow: string | undefined;
    if (check.max_response_time !== undefined) {
      details.max_response_ms = check.max_response_time;
      if (responseMs > check.max_response_time) slow = `slow: answered in ${formatDuration(responseMs)}, over max_response_time ${formatDuration(check.max_response_time)}`;
    }
    return combine(judgeResponse(check, shownUrl, status, text, truncated, details), cert, slow);
  } catch (err) {
    const o = err instanceof CaFileError ? { status: 'UNKNOWN' as const, message: err.message } : outcomeFromError(err, signal, check.timeout, `${check.method} ${shownUrl}`);
    // An error text could echo a header or URL secret back; never let it through.
    return { ...o, message: scrubSecrets(o.message, secretValues), details: { ...details, ...o.details } };
  } finally {
    // Always give the socket (and with it the SSH channel slot) back.
    tls?.destroy();
    connected?.socket.destroy();
  }
};
