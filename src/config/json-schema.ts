/**
 * The JSON Schema of `.clonebox.yaml`, generated from the zod schema (never written by hand), for
 * editors: `# yaml-language-server: $schema=./docs/clonebox.schema.json` gives completion, hover
 * text and red squiggles. It describes the INPUT side (what a person writes: `timeout: 5s`), not the
 * parsed values (milliseconds). It is a little looser than parseConfig where JSON Schema cannot say
 * what zod checks (warning_percent <= critical_percent, URL syntax beyond the scheme), never stricter.
 */
import { z } from 'zod';
import { formatDuration } from './duration.js';
import { CloneboxConfig, HttpCheck } from './schema.js';

type Json = Record<string, unknown>;
type ZodAny = z.core.$ZodType;

/** What parseDuration accepts as text: `500ms`, `5s`, `1h30m`, or a bare number of seconds. */
export const DURATION_PATTERN = '^\\s*(?:\\d+(?:\\.\\d+)?|(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h|d))+)\\s*$';

const defOf = (s: ZodAny) => s._zod.def as unknown as Record<string, unknown> & { type: string };

/** The `Duration` of schema.ts (and its refinements): a string|number union piped into a transform. */
function isDuration(s: ZodAny): boolean {
  const def = defOf(s);
  if (def.type !== 'pipe') return false;
  const input = def.in as ZodAny;
  const output = def.out as ZodAny;
  const options = defOf(input).options as ZodAny[] | undefined;
  return (
    defOf(input).type === 'union' &&
    defOf(output).type === 'transform' &&
    options?.length === 2 &&
    options.some((o) => defOf(o).type === 'string') &&
    options.some((o) => defOf(o).type === 'number')
  );
}

/** A string normalised by a transform and then checked against an enum (the HTTP `method`). */
function enumAfterTransform(s: ZodAny): string[] | undefined {
  const def = defOf(s);
  if (def.type !== 'pipe' || defOf(def.out as ZodAny).type !== 'enum') return undefined;
  const input = defOf(def.in as ZodAny);
  if (input.type !== 'pipe' || defOf(input.in as ZodAny).type !== 'string') return undefined;
  return Object.values(defOf(def.out as ZodAny).entries as Record<string, string>);
}

/** `GET` → `[Gg][Ee][Tt]`: JSON Schema regexes have no case-insensitive flag. */
const anyCase = (word: string) => [...word].map((ch) => (/[a-z]/i.test(ch) ? `[${ch.toUpperCase()}${ch.toLowerCase()}]` : ch)).join('');

function replace(target: Json, next: Json): void {
  for (const key of Object.keys(target)) delete target[key];
  Object.assign(target, next);
}

function override(ctx: { zodSchema: ZodAny; jsonSchema: Json }): void {
  const { zodSchema: s, jsonSchema: json } = ctx;
  const def = defOf(s);
  if (isDuration(s)) {
    // A refined Duration is schema.ts's PositiveDuration (the only refinement it has).
    const positive = ((def.checks as unknown[] | undefined)?.length ?? 0) > 0;
    replace(json, { type: ['string', 'number'], pattern: DURATION_PATTERN, ...(positive ? { exclusiveMinimum: 0 } : { minimum: 0 }) });
    return;
  }
  const methods = enumAfterTransform(s);
  if (methods) {
    replace(json, { type: 'string', pattern: `^(?:${methods.map(anyCase).join('|')})$` });
    return;
  }
  if (s === HttpCheck.shape.url) {
    json.pattern = '^[Hh][Tt][Tt][Pp][Ss]?://';
    return;
  }
  // zod drops the default of a transformed value on the input side (it is an output value):
  // give it back in the form a person would write it.
  if (def.type === 'default' && json.default === undefined) {
    const inner = def.innerType as ZodAny;
    const value = (def as { defaultValue?: unknown }).defaultValue;
    if (isDuration(inner) && typeof value === 'number') json.default = formatDuration(value);
    else if (enumAfterTransform(inner) && typeof value === 'string') json.default = value;
  }
}

/** Bounds zod adds for `.int()` that say nothing to a reader. */
function dropSafeIntegerBounds(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(dropSafeIntegerBounds);
  if (node === null || typeof node !== 'object') return;
  const obj = node as Json;
  if (obj.maximum === Number.MAX_SAFE_INTEGER) delete obj.maximum;
  if (obj.minimum === Number.MIN_SAFE_INTEGER) delete obj.minimum;
  Object.values(obj).forEach(dropSafeIntegerBounds);
}

/**
 * Hover text, by section and key. Kept here rather than as `.describe()` in schema.ts so that the
 * schema module stays lean; the reference docs (docs/config-reference.md) are generated from these.
 */
export const DESCRIPTIONS = {
  config: {
    $schema: 'JSON Schema for editors (yaml-language-server); ignored by clonebox.',
    libvirt: 'How to reach libvirt and read VM addresses.',
    ssh: 'SSH settings for every VM; a VM\'s own `ssh:` overrides them key by key.',
    vms: 'Per-VM settings by libvirt domain name. Without VM names or --all on the command line, these VMs are checked.',
    health_checks: 'Checks run on every VM.',
    history: 'Where results and check states are kept. With it, `health check` reports thresholded states and runs actions.',
    hypervisors: 'Several hypervisors in one view (docs/hypervisors.md): their VMs are named NAME/domain when there are more than one. Replaces libvirt.uri.',
  },
  hypervisor: {
    name: 'Short name shown with its VMs (hv1/web-1), in every output, the store and history.',
    uri: 'libvirt URI of this hypervisor, e.g. qemu+ssh://root@hv1/system.',
    jump: 'Jump host(s) to its guests, as ProxyJump; `none` dials them directly. Default: the hypervisor itself for a remote (+ssh, +tls, +tcp) URI, none for a local one.',
    timeout: 'How long its discovery may take before its VMs are UNKNOWN; the others never wait longer. Default: 10s.',
  },
  nic: {
    mac: 'MAC address of the NIC whose address is used, e.g. 52:54:00:12:34:56.',
    interface: 'Interface name as libvirt reports it (vnet3; with the agent source, the guest\'s eth1).',
  },
  history: {
    store: 'default ($XDG_DATA_HOME/clonebox/health.db), a SQLite file path, sqlite:PATH, or postgres://user@host/db.',
    retention: 'How long results are kept; older ones are pruned automatically. Default: 30d.',
  },
  libvirt: {
    uri: 'libvirt connection URI. Default: $LIBVIRT_DEFAULT_URI, else qemu:///system; --connect wins.',
    address_source: 'Where a VM\'s address comes from, tried in this order. Default: [lease, agent, arp].',
    address_family: 'Preferred address family when a VM reports both. Default: ipv4.',
    agent_fallback: 'Run command, script, disk and memory checks through the QEMU guest agent when SSH cannot reach a VM (no address, port closed, no key). Default: false.',
  },
  ssh: {
    user: 'Login user in the guest. Default: root.',
    port: 'SSH port. Default: 22.',
    identity_file: 'Private key file; `~` is expanded. Default: ssh-agent ($SSH_AUTH_SOCK), else ~/.ssh/id_ed25519, id_ecdsa, id_rsa.',
    known_hosts: 'known_hosts file (OpenSSH format; hashed entries understood). Default: ~/.ssh/known_hosts.',
    host_key_policy: 'strict: unknown host keys are refused; accept-new: recorded on first contact. A changed key is always refused. Default: strict.',
    connect_timeout: 'How long to wait for the SSH connection. Default: 10s.',
    max_sessions: 'Channels open at once on one connection (sshd\'s MaxSessions). Default: 10.',
    proxy_jump: 'Jump hosts as OpenSSH\'s ProxyJump: `[user@]host[:port]`, comma-separated, first hop first; `none` for a direct connection. Default: ProxyJump from ~/.ssh/config, else none.',
    config_file: 'OpenSSH client config to honour (Host patterns, Match, Include; docs/ssh.md). Default: ~/.ssh/config.',
    use_ssh_config: 'false: ignore the OpenSSH client config. Default: true.',
  },
  vm: {
    address: 'Reach this VM here instead of asking libvirt (e.g. a forwarded port on the host).',
    agent_fallback: 'As libvirt.agent_fallback, for this VM only.',
    nic: 'For a VM with several NICs: `{mac: 52:54:00:…}` or `{interface: vnet3}` picks whose address is used.',
    ssh: 'SSH settings for this VM, over the global ones key by key.',
    health_checks: 'Checks run on this VM in addition to the global ones; a same-named check replaces the global one.',
  },
  check: {
    name: 'Unique within its list; starts with a letter or digit, then letters, digits, `_ . : -`.',
    type: 'The probe: http, tcp, command, script, disk or memory.',
    description: 'Free text.',
    tags: 'Free labels.',
    timeout: 'The probe\'s deadline: it ends within it (plus about 1 s at most) with UNHEALTHY.',
    interval: 'Time between runs under `health watch`.',
    failure_threshold: 'Consecutive failures before the hard UNHEALTHY state (docs/state.md).',
    success_threshold: 'Consecutive passes before HEALTHY again.',
    critical: 'An UNHEALTHY critical check makes the VM UNHEALTHY; a non-critical one only DEGRADED.',
    on_failure:
      'Run on the hard transition to UNHEALTHY: a command string runs in the guest over SSH; `{command, where: guest|host, timeout}` can run on the hypervisor ({{vm}} and {{address}} are filled in).',
    on_recovery: 'Run on the hard transition back to HEALTHY; same forms as on_failure.',
  },
  http: {
    url: 'http:// or https:// URL. `localhost` means the guest (tunnelled over SSH); `{{address}}` is the VM\'s address.',
    method: 'HTTP method (any case).',
    headers: 'Request headers.',
    body: 'Request body.',
    expected_status: 'Status code, or a list of them, that counts as healthy.',
    expected_body: 'A substring the body must contain (at most 1 MiB of the body is read).',
    expected_json: 'Keys whose values must be equal in the JSON body: nested objects, or dotted paths like `db.status`.',
    insecure: 'Accept a self-signed certificate (https only).',
  },
  tcp: {
    host: 'Host to connect to. `localhost` means the guest (tunnelled over SSH); `{{address}}` is the VM\'s address.',
    port: 'TCP port; healthy when a connection opens.',
  },
  command: {
    exec: 'Shell command run in the guest.',
    expected_output: 'A substring the command\'s stdout must contain.',
    exit_code: 'The exit code that counts as healthy.',
  },
  script: {
    path: 'Path of an executable script inside the guest; a missing script is said so.',
    args: 'Arguments passed to the script.',
    expected_output: 'A substring the script\'s stdout must contain.',
    exit_code: 'The exit code that counts as healthy.',
  },
  disk: {
    path: 'A path on the filesystem to check (`df -P` of it).',
    warning_percent: 'Used share from which the check is DEGRADED.',
    critical_percent: 'Used share from which the check is UNHEALTHY.',
  },
  memory: {
    warning_percent: 'Used share (MemTotal - MemAvailable) from which the check is DEGRADED.',
    critical_percent: 'Used share from which the check is UNHEALTHY.',
  },
} as const satisfies Record<string, Record<string, string>>;

type Section = keyof typeof DESCRIPTIONS;

function describeProperties(node: Json | undefined, ...sections: Section[]): void {
  const props = node?.properties as Record<string, Json> | undefined;
  if (!props) return;
  for (const [key, prop] of Object.entries(props)) {
    for (const section of sections) {
      const text = (DESCRIPTIONS[section] as Record<string, string>)[key];
      if (text) {
        prop.description = text;
        break;
      }
    }
  }
}

function describeChecks(list: Json | undefined): void {
  const variants = ((list?.items as Json | undefined)?.oneOf ?? (list?.items as Json | undefined)?.anyOf) as Json[] | undefined;
  for (const variant of variants ?? []) {
    const type = ((variant.properties as Record<string, Json> | undefined)?.type?.const ?? '') as string;
    describeProperties(variant, ...(type in DESCRIPTIONS ? [type as Section] : []), 'check');
    variant.title = `${type} check`;
  }
}

/** zod names recursive schemas `__schema0`…; the only one here is the JSON value of `expected_json`. */
function nameDefinitions(schema: Json): Json {
  const defs = schema.definitions as Record<string, Json> | undefined;
  if (!defs) return schema;
  let text = JSON.stringify(schema);
  for (const [name, def] of Object.entries(defs)) {
    const branches = (def.anyOf as Json[] | undefined)?.map((b) => b.type).join(',');
    if (name.startsWith('__schema') && branches === 'string,number,boolean,null,array,object') {
      text = text.replaceAll(`"#/definitions/${name}"`, '"#/definitions/JsonValue"').replace(`"${name}":`, '"JsonValue":');
    }
  }
  return JSON.parse(text) as Json;
}

let cached: Json | undefined;

/** The JSON Schema (draft-07, which editors support best) of the config file, as a fresh object. */
export function configJsonSchema(): Json {
  cached ??= build();
  return structuredClone(cached);
}

/** The schema as `clonebox health schema` prints it and docs/clonebox.schema.json holds it. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

function build(): Json {
  const generated = z.toJSONSchema(CloneboxConfig, {
    target: 'draft-07',
    io: 'input',
    unrepresentable: 'any',
    override: override as never,
  }) as Json;
  // zod shares one JSON object between schemas it saw more than once; annotate copies, not the shared one.
  const schema = nameDefinitions(structuredClone(generated));
  dropSafeIntegerBounds(schema);
  const props = schema.properties as Record<string, Json>;
  describeProperties(schema, 'config');
  describeProperties(props.libvirt, 'libvirt');
  describeProperties(props.ssh, 'ssh');
  describeProperties(props.history, 'history');
  describeProperties(props.hypervisors?.items as Json | undefined, 'hypervisor');
  describeChecks(props.health_checks);
  const vm = props.vms?.additionalProperties as Json | undefined;
  describeProperties(vm, 'vm');
  describeProperties((vm?.properties as Record<string, Json> | undefined)?.ssh, 'ssh');
  describeProperties((vm?.properties as Record<string, Json> | undefined)?.nic, 'nic');
  describeChecks((vm?.properties as Record<string, Json> | undefined)?.health_checks);
  const { $schema, ...rest } = schema;
  return {
    $schema,
    title: 'clonebox-health configuration (.clonebox.yaml)',
    description: 'Which checks `clonebox health` runs on which libvirt VMs, and how it reaches them. See docs/configuration.md.',
    ...rest,
  };
}
