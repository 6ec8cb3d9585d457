/**
 * The one schema of `.clonebox.yaml`. TypeScript types are inferred from it, never written twice.
 * Objects are strict: an unknown key is an error (with a "did you mean" from the loader).
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** A duration (`500ms`, `5s`, `1m`, bare number = seconds) as milliseconds. */
export const Duration = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as 500ms, 5s, 1m or 300s, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return ms;
  });

const PositiveDuration = Duration.refine((ms) => ms > 0, { message: 'must be longer than 0' });

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

/** Fields every check has. */
const common = {
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

export const HttpCheck = z.strictObject({
  ...common,
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
  /** Accept a self-signed certificate (https only). */
  insecure: z.boolean().default(false),
});

export const TcpCheck = z.strictObject({
  ...common,
  type: z.literal('tcp'),
  host: z.string().min(1).default('localhost'),
  port: Port,
});

export const CommandCheck = z.strictObject({
  ...common,
  type: z.literal('command'),
  exec: z.string().min(1, 'must be a command'),
  /** A substring the command's stdout must contain. */
  expected_output: z.string().optional(),
  exit_code: z.number().int().min(0).max(255).default(0),
});

export const ScriptCheck = z.strictObject({
  ...common,
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
  .strictObject({ ...common, type: z.literal('disk'), path: z.string().min(1).default('/'), ...thresholds })
  .refine((c) => c.warning_percent <= c.critical_percent, {
    message: 'warning_percent must not be above critical_percent',
    path: ['warning_percent'],
  });

export const MemoryCheck = z
  .strictObject({ ...common, type: z.literal('memory'), ...thresholds })
  .refine((c) => c.warning_percent <= c.critical_percent, {
    message: 'warning_percent must not be above critical_percent',
    path: ['warning_percent'],
  });

export const CHECK_TYPES = ['http', 'tcp', 'command', 'script', 'disk', 'memory'] as const;
export type CheckType = (typeof CHECK_TYPES)[number];

export const HealthCheck = z.discriminatedUnion('type', [HttpCheck, TcpCheck, CommandCheck, ScriptCheck, DiskCheck, MemoryCheck]);

export type HealthCheck = z.infer<typeof HealthCheck>;
export type HttpCheck = z.infer<typeof HttpCheck>;
export type TcpCheck = z.infer<typeof TcpCheck>;
export type CommandCheck = z.infer<typeof CommandCheck>;
export type ScriptCheck = z.infer<typeof ScriptCheck>;
export type DiskCheck = z.infer<typeof DiskCheck>;
export type MemoryCheck = z.infer<typeof MemoryCheck>;

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
});
export type SshSettings = z.infer<typeof SshSettings>;

export const VmSettings = z.strictObject({
  /** Reach the VM here instead of asking libvirt (e.g. a forwarded port on the host). */
  address: z.string().min(1).optional(),
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
  health_checks: z.array(HealthCheck).default([]),
});
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
  retention: PositiveDuration.default(30 * 86_400_000),
});

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

export const CloneboxConfig = z.strictObject({
  /** For the yaml-language-server; ignored. */
  $schema: z.string().optional(),
  history: HistorySettings.optional(),
  alerting: AlertingSettings.optional(),
  libvirt: LibvirtSettings.default({}),
  ssh: SshSettings.default({}),
  vms: z.record(z.string(), VmSettings).default({}),
  health_checks: z.array(HealthCheck).default([]),
});
export type CloneboxConfig = z.infer<typeof CloneboxConfig>;
