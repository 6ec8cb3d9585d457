/**
 * TLS for the http and grpc probes: the handshake over any stream (a direct socket or the SSH
 * tunnel), then a verdict on the server's certificate that says what is wrong in words an operator
 * can act on (expired on DATE, self-signed, issued for another name), and how long it has left.
 *
 * The handshake itself never refuses a certificate (rejectUnauthorized: false): the chain and the
 * host name are judged afterwards, so the reason is ours, not an OpenSSL code, and nothing is sent
 * to a server that failed the checks (headers may carry credentials).
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { formatDuration } from '../config/duration.js';
import type { HealthStatus } from '../report.js';

const DAY_MS = 86_400_000;

export interface TlsOptions {
  /** The name sent as SNI and checked against the certificate. */
  serverName: string;
  /** PEM file of the CAs to trust instead of the system's. */
  caFile?: string | undefined;
  /** Skip the chain and host name checks (the certificate's dates still count). */
  insecure: boolean;
  /** ALPN protocols to offer (`h2` for gRPC). */
  alpn?: string[];
}

/** What the report shows of the server's certificate. */
export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** ISO-8601. */
  not_after: string;
  /** Whole days until not_after; negative once expired. */
  days_left: number;
  /** DNS and IP names it is valid for. */
  names?: string[];
}

export interface CertificateVerdict {
  status: HealthStatus;
  /** Empty when the certificate is fine. */
  message: string;
  certificate?: CertificateInfo;
}

/** A CA file could not be read: the check cannot be evaluated (UNKNOWN), it says nothing of the service. */
export class CaFileError extends Error {
  override readonly name = 'CaFileError';
}

async function readCa(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new CaFileError(`cannot read ca_file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Handshake over `socket`; resolves once the session is up (whatever the certificate). */
export async function tlsHandshake(socket: Duplex, opts: TlsOptions, signal: AbortSignal): Promise<TLSSocket> {
  const ca = opts.caFile ? await readCa(opts.caFile) : undefined;
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({
      socket: socket as never,
      // SNI must be a name, never an IP address (RFC 6066 §3).
      ...(isIP(opts.serverName) ? {} : { servername: opts.serverName }),
      rejectUnauthorized: false,
      ...(ca ? { ca } : {}),
      ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}),
    });
    const onAbort = () => {
      tls.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    tls.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      // Later errors reach whoever reads the socket (http, http2); never let one go unhandled.
      tls.on('error', () => {});
      resolve(tls);
    });
    tls.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(Object.assign(new Error(`TLS handshake failed: ${err.message}`), { code: (err as NodeJS.ErrnoException).code }));
    });
  });
}

function nameOf(part: PeerCertificate['subject'] | undefined): string {
  if (!part) return '';
  const entries = Object.entries(part).filter(([, v]) => v !== undefined);
  const cn = entries.find(([k]) => k === 'CN');
  const o = entries.find(([k]) => k === 'O');
  return [cn && `CN=${String(cn[1])}`, o && `O=${String(o[1])}`].filter(Boolean).join(', ') || entries.map(([k, v]) => `${k}=${String(v)}`).join(', ');
}

/** The certificate's summary as of `now`. */
export function certificateInfo(cert: PeerCertificate, now = Date.now()): CertificateInfo | undefined {
  const notAfter = Date.parse(cert.valid_to);
  if (!cert.valid_to || Number.isNaN(notAfter)) return undefined;
  const names = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .map((n) => n.replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
  return {
    subject: nameOf(cert.subject),
    issuer: nameOf(cert.issuer),
    not_after: new Date(notAfter).toISOString(),
    days_left: Math.floor((notAfter - now) / DAY_MS),
    ...(names.length ? { names } : {}),
  };
}

/** OpenSSL's verify codes in an operator's words. */
function chainProblem(code: string, info: CertificateInfo | undefined): string {
  switch (code) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'the certificate is self-signed (trust it with ca_file, or set insecure: true)';
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      return 'the certificate chain ends in an untrusted self-signed CA (trust it with ca_file)';
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      return `the certificate's issuer${info?.issuer ? ` (${info.issuer})` : ''} is not trusted (trust it with ca_file)`;
    case 'CERT_HAS_EXPIRED':
      return `the certificate expired${info ? ` on ${info.not_after.slice(0, 10)}` : ''}`;
    case 'CERT_NOT_YET_VALID':
      return 'the certificate is not valid yet';
    default:
      return `the certificate is not trusted (${code})`;
  }
}

function remaining(ms: number): string {
  if (ms >= DAY_MS) {
    const days = Math.floor(ms / DAY_MS);
    return `${days} day${days === 1 ? '' : 's'}`;
  }
  const hours = Math.max(0, Math.floor(ms / 3_600_000));
  return hours >= 1 ? `${hours} hour${hours === 1 ? '' : 's'}` : 'less than an hour';
}

export interface ExpiryThresholds {
  warningMs: number;
  criticalMs: number;
}

/**
 * Judge the server's certificate: trust (unless insecure), host name (unless insecure), then time
 * left against the thresholds. Expired is UNHEALTHY even when insecure.
 */
export function judgeCertificate(tls: TLSSocket, opts: TlsOptions, thresholds?: ExpiryThresholds, now = Date.now()): CertificateVerdict {
  const cert = tls.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return { status: 'UNHEALTHY', message: 'the server sent no certificate' };
  const info = certificateInfo(cert, now);
  const withInfo = (status: HealthStatus, message: string): CertificateVerdict => ({ status, message, ...(info ? { certificate: info } : {}) });
  if (!opts.insecure) {
    const code = tls.authorizationError ? String((tls.authorizationError as unknown as { code?: string }).code ?? tls.authorizationError) : '';
    // Node reports a host name mismatch here too (with its own idea of the name): ours comes next.
    if (!tls.authorized && code && code !== 'ERR_TLS_CERT_ALTNAME_INVALID') return withInfo('UNHEALTHY', chainProblem(code, info));
    const mismatch = checkServerIdentity(opts.serverName, cert);
    if (mismatch) {
      const names = info?.names?.join(', ') || nameOf(cert.subject);
      return withInfo('UNHEALTHY', `the certificate is for ${names || 'another name'}, not ${opts.serverName} (set server_name to the name it is for)`);
    }
  }
  if (!info) return { status: 'UNHEALTHY', message: 'the certificate has no readable expiry date' };
  const left = Date.parse(info.not_after) - now;
  if (left <= 0) return withInfo('UNHEALTHY', `the certificate expired on ${info.not_after.slice(0, 10)}`);
  if (thresholds && left < thresholds.criticalMs) {
    return withInfo('UNHEALTHY', `the certificate expires in ${remaining(left)} (critical below ${formatDuration(thresholds.criticalMs)})`);
  }
  if (thresholds && left < thresholds.warningMs) {
    return withInfo('DEGRADED', `the certificate expires in ${remaining(left)} (warning below ${formatDuration(thresholds.warningMs)})`);
  }
  return withInfo('HEALTHY', '');
}

/** The worse of two statuses, for combining a response's verdict with the certificate's. */
export function worse(a: HealthStatus, b: HealthStatus): HealthStatus {
  const rank: Record<HealthStatus, number> = { HEALTHY: 0, UNKNOWN: 1, DEGRADED: 2, UNHEALTHY: 3 };
  return rank[a] >= rank[b] ? a : b;
}
