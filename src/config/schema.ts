/**
 * The one schema of `.clonebox.yaml`. TypeScript types are inferred from it, never written twice.
 * Objects are strict: an unknown key is an error (with a "did you mean" from the loader).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { configAddressProblem } from '../inventory/addresses.js';
import { MAX_TIMER_TEXT, parseDuration, timerProblem } from './duration.js';

/** A duration (`500ms`, `5s`, `1m`, bare number = seconds) as milliseconds; `waited`: a timer will wait this long. */
function duration(waited: boolean) {
  return z.union([z.string(), z.number()]).transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as 500ms, 5s, 1m or 300s, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    const tooLong = waited ? timerProblem(ms) : undefined;
    if (tooLong) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_TIMER_TEXT}, the longest wait a timer can hold; got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A duration something waits for (a timeout, an interval): at most MAX_TIMER_MS. */
export const Duration = duration(true);
/** A span that is compared, never waited for (a retention window): any length. */
export const Span = duration(false);

const PositiveDuration = Duration.refine((ms) => ms > 0, { message: 'must be longer than 0' });
const PositiveSpan = Span.refine((ms) => ms > 0, { message: 'must be longer than 0' });

const Percent = z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100');
const Port = z.number().int('must be a whole number').min(1, 'must be a port from 1 to 65535').max(65535, 'must be a port from 1 to 65535');
const Count = z.number().int('must be a whole number').min(1, 'must be at least 1');

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

const JsonValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonValue), z.record(z.string(), JsonValue)]),
);

/** A JavaScript regular expression, as `source` or `/source/flags`; checked when the config loads. */
export const RegexText = z.string().superRefine((text, ctx) => {
  try {
    compileRegex(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `must be a valid regular expression: ${(err as Error).message}` });
  }
});

/** `/source/flags` or a bare source (no flags). */
export function compileRegex(text: string): RegExp {
  const m = /^\/(.*)\/([dimsuv]*)$/s.exec(text);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(text);
}

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

const AddressSourceName = z.enum(['lease', 'agent', 'arp']);

export const SshSettings = z.strictObject({
  user: z.string().min(1).optional(),
  port: Port.optional(),
  /** Private key file; `~` is expanded. Without it, ssh-agent ($SSH_AUTH_SOCK) is used. */
  identity_file: z.string().min(1).optional(),
  known_hosts: z.string().min(1).optional(),
  /** strict: unknown host keys are refused; accept-new: recorded on first contact. A changed key is always refused. */
  host_key_policy: z.enum(['strict', 'accept-new']).optional(),
  connect_timeout: PositiveDuration.optional(),
  /** Channels open at once on one connection; sshd's MaxSessions (10 by default). */
  max_sessions: z.number().int().min(1).max(100).optional(),
  /** false: a channel per round instead of the resident command session (docs/configuration.md). */
  resident_session: z.boolean().optional(),
  /** Jump hosts, as OpenSSH's ProxyJump: `[user@]host[:port]`, several separated by commas (first hop first), or `none`. */
  proxy_jump: z.string().min(1).optional(),
  /** The OpenSSH client config to honour (default ~/.ssh/config; docs/ssh.md). */
  config_file: z.string().min(1).optional(),
  /** false: ignore the OpenSSH client config. */
  use_ssh_config: z.boolean().optional(),
});
export type SshSettings = z.infer<typeof SshSettings>;

const vmSettings = <C extends z.ZodType>(check: C) =>
  z.strictObject({
  /** Reach the VM here instead of asking libvirt (e.g. a forwarded port on the host). */
  address: z
    .string()
    .min(1)
    .superRefine((a, ctx) => {
      const problem = configAddressProblem(a);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  ssh: SshSettings.optional(),
  /** For a VM with several NICs: take the address of the one with this MAC or interface name. */
  nic: z
    .strictObject({
      mac: z.string().regex(/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/, 'must be a MAC address like 52:54:00:12:34:56').optional(),
      interface: z.string().min(1).optional(),
    })
    .optional(),
  /** Run command, script, disk and memory checks through the QEMU guest agent when SSH cannot reach this VM. */
  agent_fallback: z.boolean().optional(),
  /** Checks run on this VM in addition to the global ones (a same-named one replaces the global). */
  health_checks: z.array(check).default([]),
});
export const VmSettings = vmSettings(HealthCheck);
export type VmSettings = z.infer<typeof VmSettings>;

export const LibvirtSettings = z.strictObject({
  uri: z.string().min(1).optional(),
  address_source: z.union([AddressSourceName, z.array(AddressSourceName).min(1)]).optional(),
  /** Prefer this address family when a VM reports both. */
  address_family: z.enum(['ipv4', 'ipv6']).optional(),
  /** For every VM: guest commands through the QEMU guest agent when SSH cannot reach it (off by default). */
  agent_fallback: z.boolean().optional(),
});

export const HistorySettings = z.strictObject({
  /**
   * Where results and check states are kept: `default` ($XDG_DATA_HOME/clonebox/health.db), a SQLite
   * file path, `sqlite:PATH`, or `postgres://…`. With it, `health check` is stateful (docs/state.md).
   */
  store: z.string().min(1).optional(),
  /** How long results are kept; older ones are pruned automatically. */
  retention: PositiveSpan.default(30 * 86_400_000),
});

/** One hypervisor of several: its VMs are named `NAME/domain` when there is more than one (docs/hypervisors.md). */
export const HypervisorSettings = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and use only letters, digits, _ . -'),
  /** libvirt URI, e.g. qemu+ssh://root@hv1/system. */
  uri: z.string().min(1),
  /**
   * Jump host(s) to its guests, as ProxyJump (`none`: dial them directly). Default: for a remote URI the
   * hypervisor itself (its NAT networks are only routable from there); for a local one, none.
   */
  jump: z.string().min(1).optional(),
  /** How long its discovery may take before its VMs are UNKNOWN (the others never wait longer). */
  timeout: PositiveDuration.optional(),
});
export type HypervisorSettings = z.infer<typeof HypervisorSettings>;

// ───────────────────────────── alerting (docs/alerting.md) ─────────────────────────────

const ProviderName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and use only letters, digits, _ . -');
const HttpUrl = z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), {
  message: 'must be an http:// or https:// URL',
});
const providerCommon = {
  /** How routes and `health alert test --provider` name it; default: its type. */
  name: ProviderName.optional(),
  /** One delivery's deadline. */
  timeout: PositiveDuration.default(10_000),
};

export const AlertmanagerProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('alertmanager'),
  /** Alertmanager's base URL (`http://alertmanager:9093`); alerts go to `/api/v2/alerts` under it. */
  url: HttpUrl,
  headers: z.record(z.string(), z.string()).default({}),
});
export const WebhookProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('webhook'),
  url: HttpUrl,
  headers: z.record(z.string(), z.string()).default({}),
});
export const SlackProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('slack'),
  /** The incoming-webhook URL (Slack, Mattermost, Rocket.Chat). */
  url: HttpUrl,
  channel: z.string().min(1).optional(),
  username: z.string().min(1).optional(),
});
export const EmailProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('email'),
  host: z.string().min(1, 'must be the SMTP server host'),
  port: Port.default(587),
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  tls: z.boolean().default(false),
  /** Refuse to send without STARTTLS (a server that does not offer it fails the delivery). */
  require_starttls: z.boolean().default(false),
  /** Accept a self-signed server certificate. */
  insecure: z.boolean().default(false),
  username: z.string().min(1).optional(),
  password: z.string().optional(),
  from: z.string().min(3, 'must be a sender address'),
  to: z.union([z.string().min(3), z.array(z.string().min(3)).min(1)]).transform((t) => (Array.isArray(t) ? t : [t])),
});
export const CommandProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('command'),
  /** Run on this host with /bin/sh -c; the notification arrives as JSON on stdin. */
  command: z.string().min(1, 'must be a command'),
});

export type AlertmanagerProvider = z.infer<typeof AlertmanagerProvider>;
export type WebhookProvider = z.infer<typeof WebhookProvider>;
export type SlackProvider = z.infer<typeof SlackProvider>;
export type EmailProvider = z.infer<typeof EmailProvider>;
export type CommandProvider = z.infer<typeof CommandProvider>;

export const PROVIDER_TYPES = ['alertmanager', 'webhook', 'slack', 'email', 'command'] as const;
export const AlertProvider = z.discriminatedUnion('type', [AlertmanagerProvider, WebhookProvider, SlackProvider, EmailProvider, CommandProvider]);
export type AlertProvider = z.infer<typeof AlertProvider>;

const OneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

export const AlertRoute = z.strictObject({
  /** Every key given must match; no `match` matches everything. */
  match: z
    .strictObject({
      /** VM names or globs (`db-*`). */
      vm: OneOrMany.optional(),
      /** Check names or globs. */
      check: OneOrMany.optional(),
      /** The check has any of these tags (a VM-level alert carries the tags of the VM's checks). */
      tags: z.array(z.string().min(1)).min(1).optional(),
    })
    .default({}),
  providers: z.array(ProviderName).min(1, 'must name at least one provider'),
  /** Go on to the next routes after this one matched. */
  continue: z.boolean().default(false),
});
export type AlertRoute = z.infer<typeof AlertRoute>;

const Share = z.number().min(0, 'must be a percentage from 0 to 100').max(100, 'must be a percentage from 0 to 100');

export const AlertingSettings = z
  .strictObject({
    providers: z.array(AlertProvider).default([]),
    /** First match wins (unless `continue`); a notification no route matches goes to every provider. */
    routes: z.array(AlertRoute).default([]),
    /** Notify a still-firing alert again after this long; 0 never. */
    repeat_interval: Duration.default(4 * 3_600_000),
    /** One VM-level alert once a VM could not be evaluated for this long; its checks' alerts wait. */
    unreachable_after: Duration.default(5 * 60_000),
    flapping: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** % of state changes over the last 21 results from which a check is flapping. */
        high_threshold: Share.default(50),
        /** % below which it stops flapping. */
        low_threshold: Share.default(25),
      })
      .refine((f) => f.low_threshold <= f.high_threshold, { message: 'low_threshold must not be above high_threshold', path: ['low_threshold'] })
      .default({ enabled: true, high_threshold: 50, low_threshold: 25 }),
    /** Redelivery of a notification a provider did not take. */
    retry: z
      .strictObject({
        initial_backoff: PositiveDuration.default(5000),
        max_backoff: PositiveDuration.default(5 * 60_000),
        /** Give up on a notification this old. */
        give_up_after: PositiveDuration.default(24 * 3_600_000),
      })
      .default({ initial_backoff: 5000, max_backoff: 5 * 60_000, give_up_after: 24 * 3_600_000 }),
    /** A link in every notification; `{{vm}}` and `{{check}}` are filled in. */
    details_url: z.string().min(1).optional(),
    /** The `hypervisor` label; default: none. */
    hypervisor: z.string().min(1).optional(),
  })
  .superRefine((a, ctx) => {
    const names = new Map<string, number>();
    a.providers.forEach((p, i) => {
      const name = p.name ?? p.type;
      const first = names.get(name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['providers', i, 'name'],
          message: `duplicate provider name ${JSON.stringify(name)} (first at providers.${first}); give each provider of one type its own name`,
        });
      } else names.set(name, i);
    });
    a.routes.forEach((r, i) =>
      r.providers.forEach((name, j) => {
        if (!names.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', i, 'providers', j],
            message: `no provider named ${JSON.stringify(name)}; configured: ${[...names.keys()].join(', ') || 'none'}`,
          });
        }
      }),
    );
  });
export type AlertingSettings = z.infer<typeof AlertingSettings>;

const configSchema = <C extends z.ZodType>(check: C) =>
  z.strictObject({
    /** For the yaml-language-server; ignored. */
    $schema: z.string().optional(),
    /** Modules that add probe types (docs/plugins.md); paths relative to the config file. */
    plugins: z.array(z.string().min(1, 'must be the path of a plugin module')).default([]),
    history: HistorySettings.optional(),
    alerting: AlertingSettings.optional(),
    libvirt: LibvirtSettings.default({}),
    hypervisors: z
      .array(HypervisorSettings)
      .min(1, 'must list at least one hypervisor (or leave hypervisors out and use libvirt.uri)')
      .refine((list) => new Set(list.map((h) => h.name)).size === list.length, { message: 'hypervisor names must be unique' })
      .optional(),
    ssh: SshSettings.default({}),
    vms: z.record(z.string(), vmSettings(check)).default({}),
    health_checks: z.array(check).default([]),
  });

export const CloneboxConfig = configSchema(HealthCheck);
export type CloneboxConfig = z.infer<typeof CloneboxConfig>;

/**
 * The config schema with plugin check types added to the built-in ones. A plugin's check is typed
 * as a HealthCheck from here on: code that switches on `type` must keep a default branch.
 */
export function buildConfigSchema(pluginChecks: readonly z.ZodObject[]): typeof CloneboxConfig {
  if (pluginChecks.length === 0) return CloneboxConfig;
  const union = z.discriminatedUnion('type', [...BUILTIN_CHECKS, ...pluginChecks] as unknown as typeof BUILTIN_CHECKS);
  return configSchema(union) as unknown as typeof CloneboxConfig;
}
