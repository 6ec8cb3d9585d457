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
  /** Jump hosts, as OpenSSH's ProxyJump: `[user@]host[:port]`, several separated by commas (first hop first), or `none`. */
  proxy_jump: z.string().min(1).optional(),
  /** The OpenSSH client config to honour (default ~/.ssh/config; docs/ssh.md). */
  config_file: z.string().min(1).optional(),
  /** false: ignore the OpenSSH client config. */
  use_ssh_config: z.boolean().optional(),
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

export const CloneboxConfig = z.strictObject({
  /** For the yaml-language-server; ignored. */
  $schema: z.string().optional(),
  history: HistorySettings.optional(),
  libvirt: LibvirtSettings.default({}),
  hypervisors: z
    .array(HypervisorSettings)
    .min(1, 'must list at least one hypervisor (or leave hypervisors out and use libvirt.uri)')
    .refine((list) => new Set(list.map((h) => h.name)).size === list.length, { message: 'hypervisor names must be unique' })
    .optional(),
  ssh: SshSettings.default({}),
  vms: z.record(z.string(), VmSettings).default({}),
  health_checks: z.array(HealthCheck).default([]),
});
export type CloneboxConfig = z.infer<typeof CloneboxConfig>;
