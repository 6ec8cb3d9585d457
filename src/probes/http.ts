import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { HttpCheck } from '../config/schema.js';
import { capText } from '../util/cap.js';
import { isSecretHeader, redactUrl, scrubSecrets } from '../util/redact.js';
import { outcomeFromError } from './common.js';
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

function send(check: HttpCheck, url: URL, socket: Duplex, signal: AbortSignal): Promise<IncomingMessage> {
  const headers: Record<string, string> = { 'user-agent': 'clonebox-health', ...check.headers };
  if (url.username && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  let stream: Duplex = socket;
  if (url.protocol === 'https:') {
    stream = tlsConnect({ socket: socket as never, servername: url.hostname, rejectUnauthorized: !check.insecure });
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

export const httpProbe: Probe<HttpCheck> = async (check, target, signal) => {
  const url = new URL(check.url);
  const shownUrl = redactUrl(check.url);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const expected = Array.isArray(check.expected_status) ? check.expected_status : [check.expected_status];
  const details: Record<string, unknown> = { url: shownUrl, method: check.method };
  const secretValues = Object.entries(check.headers).filter(([k]) => isSecretHeader(k)).map(([, v]) => v);
  let connected: { socket: Duplex; remote?: string } | undefined;
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
    const res = await send(check, url, connected.socket, signal);
    details.status_code = res.statusCode;
    const contentType = res.headers['content-type'];
    if (contentType) details.content_type = contentType;
    const status = res.statusCode ?? 0;
    const needBody = check.expected_body !== undefined || check.expected_json !== undefined || !expected.includes(status);
    const { body, truncated } = needBody ? await readCapped(res, MAX_BODY_BYTES, signal) : (res.destroy(), { body: Buffer.alloc(0), truncated: false });
    const text = body.toString('utf8');
    if (needBody) details.body = capText(text, 1024);
    if (truncated) details.body_truncated_at = MAX_BODY_BYTES;
    let outcome: ProbeOutcome;
    if (!expected.includes(status)) {
      outcome = { status: 'UNHEALTHY', message: `HTTP ${status} from ${shownUrl} (expected ${expected.join(' or ')})`, details };
    } else if (check.expected_body !== undefined && !text.includes(check.expected_body)) {
      outcome = {
        status: 'UNHEALTHY',
        message: `body of ${shownUrl} does not contain ${JSON.stringify(check.expected_body)}${truncated ? ` in its first ${MAX_BODY_BYTES} bytes` : ''}`,
        details,
      };
    } else if (check.expected_json !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return {
          status: 'UNHEALTHY',
          message: truncated
            ? `body of ${shownUrl} is larger than ${MAX_BODY_BYTES} bytes; expected_json needs a complete JSON document`
            : `body of ${shownUrl} is not JSON`,
          details,
        };
      }
      const mismatch = jsonMismatch(parsed, check.expected_json);
      outcome = mismatch ? { status: 'UNHEALTHY', message: mismatch, details } : { status: 'HEALTHY', message: `HTTP ${status}, JSON as expected`, details };
    } else {
      outcome = { status: 'HEALTHY', message: `HTTP ${status}${check.expected_body !== undefined ? ', body as expected' : ''}`, details };
    }
    return outcome;
  } catch (err) {
    const o = outcomeFromError(err, signal, check.timeout, `${check.method} ${shownUrl}`);
    // An error text could echo a header or URL secret back; never let it through.
    return { ...o, message: scrubSecrets(o.message, secretValues), details: { ...details, ...o.details } };
  } finally {
    // Always give the socket (and with it the SSH channel slot) back.
    connected?.socket.destroy();
  }
};
