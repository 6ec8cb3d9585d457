/** The checks of `.clonebox.yaml` (one schema per built-in type) and the actions they run: part of schema.ts. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { Count, Duration, JsonValue, Percent, Port, PositiveDuration, RegexText } from './schema-values.js';

/**
 * What to run on a hard transition (docs/state.md). A plain string runs in the guest over the VM's
 * SSH connection (the seed's `systemctl restart uvicorn`); the long form can run on the hypervisor
 * instead (`virsh reboot {{vm}}`), where `{{vm}}` and `{{address}}` are filled in.
 */
export const Action = z
  .union([
    z.string().min(1, 'must be a command'),
    z.strictObject({
      command: z.string().min(1, 'must be a command'),
      where: z.enum(['guest', 'host']).default('guest'),
      timeout: PositiveDuration.default(60_000),
    }),
  ])
  .transform((a) => (typeof a === 'string' ? { command: a, where: 'guest' as const, timeout: 60_000 } : a));
export type Action = z.infer<typeof Action>;

/** Fields every check has (a plugin's check too: it adds its own keys to these). */
export const COMMON_CHECK_KEYS = {
  name: z
    .string()
    .min(1, 'must not be empty')
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'must start with a letter or digit and use only letters, digits, _ . : -'),
  description: z.string().optional(),
  tags: z.array(z.string()).default([]),
  timeout: PositiveDuration.default(5000),
  interval: PositiveDuration.default(30_000),
  failure_threshold: Count.default(3),
  success_threshold: Count.default(1),
  critical: z.boolean().default(false),
  /** Command run in the guest on the hard transition to UNHEALTHY (see docs/state.md). */
  on_failure: Action.optional(),
  /** Command run in the guest on the hard transition back to HEALTHY. */
  on_recovery: Action.optional(),
  /** Alert on the hard UNHEALTHY state (default), or already on a hard DEGRADED one (docs/alerting.md). */
  alert_on: z.enum(['unhealthy', 'degraded']).default('unhealthy'),
};

export const HttpCheck = z
  .strictObject({
    ...COMMON_CHECK_KEYS,
    type: z.literal('http'),
    url: z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), {
      message: 'must be an http:// or https:// URL',
    }),
    method: z
      .string()
      .transform((m) => m.toUpperCase())
      .pipe(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']))
      .default('GET'),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.string().optional(),
    expected_status: z.union([z.number().int().min(100).max(599), z.array(z.number().int().min(100).max(599)).min(1)]).default(200),
    /** A substring the body must contain. */
    expected_body: z.string().optional(),
    /** Keys (nested objects, or dotted paths like `db.status`) whose values must be equal in the JSON body. */
    expected_json: z.record(z.string(), JsonValue).optional(),
    /** A regular expression the body must match. */
    expected_body_regex: RegexText.optional(),
    /** Slower than this (open connection, TLS included, → response read), but otherwise right: DEGRADED. */
    max_response_time: PositiveDuration.optional(),
    /** Accept a self-signed certificate (https only). */
    insecure: z.boolean().default(false),
    /** PEM file of the CA(s) to trust instead of the system's (https only). */
    ca_file: z.string().min(1).optional(),
    /** The name sent as SNI and that the certificate must be valid for (default: the URL's host). */
    server_name: z.string().min(1).optional(),
    /** Fewer days left on the certificate than this: DEGRADED. */
    cert_expiry_warning: Duration.default(14 * 86_400_000),
    /** Fewer days left than this (or expired): UNHEALTHY. */
    cert_expiry_critical: Duration.default(3 * 86_400_000),
  })
  .refine((c) => c.cert_expiry_warning >= c.cert_expiry_critical, {
    message: 'cert_expiry_warning must not be shorter than cert_expiry_critical',
    path: ['cert_expiry_warning'],
  });

export const TcpCheck = z.strictObject({
  ...COMMON_CHECK_KEYS,
  type: z.literal('tcp'),
  host: z.string().min(1).default('localhost'),
  port: Port,
});

export const CommandCheck = z.strictObject({
  ...COMMON_CHECK_KEYS,
  type: z.literal('command'),
  exec: z.string().min(1, 'must be a command'),
  /** A substring the command's stdout must contain. */
  expected_output: z.string().optional(),
  exit_code: z.number().int().min(0).max(255).default(0),
});

export const ScriptCheck = z.strictObject({
  ...COMMON_CHECK_KEYS,
  type: z.literal('script'),
  /** Path of an executable script inside the guest. */
  path: z.string().min(1, 'must be the path of a script in the guest'),
  args: z.array(z.string()).default([]),
  expected_output: z.string().optional(),
  exit_code: z.number().int().min(0).max(255).default(0),
});

const thresholds = {
  warning_percent: Percent.default(80),
  critical_percent: Percent.default(90),
};

export const DiskCheck = z
  .strictObject({ ...COMMON_CHECK_KEYS, type: z.literal('disk'), path: z.string().min(1).default('/'), ...thresholds })
  .refine((c) => c.warning_percent <= c.critical_percent, {
    message: 'warning_percent must not be above critical_percent',
    path: ['warning_percent'],
  });

export const MemoryCheck = z
  .strictObject({ ...COMMON_CHECK_KEYS, type: z.literal('memory'), ...thresholds })
  .refine((c) => c.warning_percent <= c.critical_percent, {
    message: 'warning_percent must not be above critical_percent',
    path: ['warning_percent'],
  });

/** `host:port`, `[v6]:port`; `localhost` is the guest, `{{address}}` the VM's address. */
const HostPort = z.string().regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}$/, 'must be host:port, e.g. localhost:50051 or [::1]:50051');

export const GrpcCheck = z.strictObject({
  ...COMMON_CHECK_KEYS,
  type: z.literal('grpc'),
  /** The server's host:port. `localhost` means the guest (tunnelled over SSH). */
  address: HostPort,
  /** The service name asked about; "" is the server as a whole. */
  service: z.string().default(''),
  /** TLS: `true`, or its options. Off by default (plaintext HTTP/2). */
  tls: z
    .union([
      z.boolean(),
      z.strictObject({
        insecure: z.boolean().default(false),
        ca_file: z.string().min(1).optional(),
        server_name: z.string().min(1).optional(),
      }),
    ])
    .default(false),
});

export const DNS_RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'NS', 'PTR'] as const;
export const DNS_RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'] as const;

/**
 * A DNS server: `localhost` (the guest), an IP address or `{{address}}`, with an optional `:port`
 * (an IPv6 address with a port goes in brackets). Undefined when the text is none of these.
 */
export function parseDnsServer(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]+))(?::(\d{1,5}))?$/.exec(text) ?? /^()([0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)()$/.exec(text);
  if (!m) return undefined;
  const host = m[1] || m[2] || '';
  const port = m[3] ? Number(m[3]) : 53;
  const ok = host === 'localhost' || host === '{{address}}' || isIP(host) !== 0;
  return ok && port >= 1 && port <= 65535 ? { host, port } : undefined;
}

const DnsServer = z.string().refine((s) => parseDnsServer(s) !== undefined, {
  message: 'must be localhost (the guest), an IP address or {{address}}, optionally with :port ([v6]:port)',
});

export const DnsCheck = z.strictObject({
  ...COMMON_CHECK_KEYS,
  type: z.literal('dns'),
  /** The name to look up (an IP address for PTR is turned into its reverse name). */
  query: z.string().min(1, 'must be a name to look up'),
  record_type: z
    .string()
    .transform((t) => t.toUpperCase())
    .pipe(z.enum(DNS_RECORD_TYPES))
    .default('A'),
  /** Default: the guest's /etc/resolv.conf nameserver, asked from inside the guest. */
  server: DnsServer.optional(),
  /** For a server reached from the host; through the guest it is always TCP. */
  protocol: z.enum(['udp', 'tcp']).default('udp'),
  expected_rcode: z
    .string()
    .transform((t) => t.toUpperCase())
    .pipe(z.enum(DNS_RCODES))
    .default('NOERROR'),
  /** Answers that must all be present (others may be too). */
  expected_answers: z.array(z.string().min(1)).min(1).optional(),
});

export const CHECK_TYPES = ['http', 'tcp', 'command', 'script', 'disk', 'memory', 'grpc', 'dns'] as const;
export type CheckType = (typeof CHECK_TYPES)[number];

/** The built-in check schemas, in CHECK_TYPES order; plugins add theirs after these (buildConfigSchema). */
export const BUILTIN_CHECKS = [HttpCheck, TcpCheck, CommandCheck, ScriptCheck, DiskCheck, MemoryCheck, GrpcCheck, DnsCheck] as const;

export const HealthCheck = z.discriminatedUnion('type', BUILTIN_CHECKS);

export type HealthCheck = z.infer<typeof HealthCheck>;
export type HttpCheck = z.infer<typeof HttpCheck>;
export type TcpCheck = z.infer<typeof TcpCheck>;
export type CommandCheck = z.infer<typeof CommandCheck>;
export type ScriptCheck = z.infer<typeof ScriptCheck>;
export type DiskCheck = z.infer<typeof DiskCheck>;
export type MemoryCheck = z.infer<typeof MemoryCheck>;
export type GrpcCheck = z.infer<typeof GrpcCheck>;
export type DnsCheck = z.infer<typeof DnsCheck>;
