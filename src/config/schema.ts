/**
 * The one schema of `.clonebox.yaml`. TypeScript types are inferred from it, never written twice.
 * Objects are strict: an unknown key is an error (with a "did you mean" from the loader).
 */
import { z } from 'zod';
import { configAddressProblem } from '../inventory/addresses.js';
import { AlertingSettings } from './schema-alerting.js';
import { BUILTIN_CHECKS, HealthCheck } from './schema-checks.js';
import { Port, PositiveDuration, PositiveSpan } from './schema-values.js';

// The parts, one file each; everything is exported from here, as one schema.
export * from './schema-alerting.js';
export * from './schema-checks.js';
export { compileRegex, Duration, RegexText, Span } from './schema-values.js';

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
