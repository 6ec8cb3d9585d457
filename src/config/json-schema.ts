/**
 * The JSON Schema of `.clonebox.yaml`, generated from the zod schema (never written by hand), for
 * editors: `# yaml-language-server: $schema=./docs/clonebox.schema.json` gives completion, hover
 * text and red squiggles. It describes the INPUT side (what a person writes: `timeout: 5s`), not the
 * parsed values (milliseconds). It is a little looser than parseConfig where JSON Schema cannot say
 * what zod checks (warning_percent <= critical_percent, URL syntax beyond the scheme), never stricter.
 */
import { z } from 'zod';
import { formatDuration } from './duration.js';
import type { RegisteredProbe } from '../probes/plugins.js';
import { buildConfigSchema, HttpCheck } from './schema.js';

type Json = Record<string, unknown>;
type ZodAny = z.core.$ZodType;

/** What parseDuration accepts as text: `500ms`, `5s`, `1h30m`, or a bare number of seconds. */
export const DURATION_PATTERN = '^\\s*(?:\\d+(?:\\.\\d+)?|(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h|d))+)\\s*$';

const defOf = (s: ZodAny) => s._zod.def as unknown as Record<string, unknown> & { type: string };

/** The `Duration` of schema-values.ts (and its refinements): a string|number union piped into a transform. */
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
    // A refined Duration is schema-values.ts's PositiveDuration (the only refinement it has).
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
    plugins: 'Plugin modules that add probe types (docs/plugins.md); paths relative to the config file.',
    history: 'Where results and check states are kept. With it, `health check` reports thresholded states and runs actions.',
    alerting: 'Who is told when a check goes bad, and how: providers, routes, repeats, flapping (docs/alerting.md).',
    hypervisors: 'Several hypervisors in one view (docs/hypervisors.md): their VMs are named NAME/domain when there are more than one. Replaces libvirt.uri.',
  },
  hypervisor: {
    name: 'Short name shown with its VMs (hv1/web-1), in every output, the store and history.',
    uri: 'libvirt URI of this hypervisor, e.g. qemu+ssh://root@hv1/system.',
    jump: 'Jump host(s) to its guests, as ProxyJump; `none` dials them directly. Default: the hypervisor itself for a remote (+ssh, +tls, +tcp) URI, none for a local one.',
    timeout: 'How long its discovery may take before its VMs are UNKNOWN; the others never wait longer. Default: 10s.',
  },
  alerting: {
    providers: 'Where notifications go: alertmanager, webhook, slack, email or command, each with a name.',
    routes: 'Which providers a notification goes to; first match wins unless `continue`. No route matching: every provider.',
    repeat_interval: 'Notify a still-firing alert again after this long; 0 never. Default: 4h.',
    unreachable_after: 'One VM-level alert once a VM could not be evaluated for this long; its checks\' alerts wait. Default: 5m.',
    flapping: 'Flapping detection as Nagios does it, over the last 21 results.',
    retry: 'Redelivery of a notification a provider did not take (capped exponential backoff).',
    details_url: 'A link in every notification; {{vm}} and {{check}} are filled in.',
    hypervisor: 'The `hypervisor` label of every notification. Default: none.',
  },
  provider: {
    name: 'How routes and `health alert test --provider` name it. Default: its type.',
    type: 'alertmanager, webhook, slack, email or command.',
    timeout: 'One delivery\'s deadline. Default: 10s.',
    url: 'alertmanager: its base URL (alerts go to /api/v2/alerts); webhook and slack: the URL to POST to. Credentials in it are never printed.',
    headers: 'Extra HTTP headers (e.g. Authorization); secret ones are never printed.',
    channel: 'slack: the channel to post in, where the webhook allows it.',
    username: 'slack: the name to post as (default clonebox); email: the SMTP AUTH user.',
    host: 'email: the SMTP server.',
    port: 'email: the SMTP port. Default: 587.',
    tls: 'email: TLS from the first byte (port 465). Default: false (STARTTLS when offered).',
    require_starttls: 'email: fail rather than send without STARTTLS. Default: false.',
    insecure: 'email: accept a self-signed or expired server certificate. Default: false.',
    password: 'email: the SMTP AUTH password; never printed.',
    from: 'email: the sender address.',
    to: 'email: one address or a list.',
    command: 'command: run with /bin/sh -c on this host; the notification is JSON on stdin.',
  },
  route: {
    match: 'What the notification must match: vm globs, check globs, tags (any of). Absent: everything.',
    providers: 'Provider names this route sends to.',
    continue: 'Go on to the next routes after this one matched. Default: false.',
  },
  match: {
    vm: 'VM name or glob, or a list of them.',
    check: 'Check name or glob, or a list of them (a VM-level alert has no check and never matches).',
    tags: 'Matches when the check has any of these tags (a VM-level alert carries its checks\' tags).',
  },
  flapping: {
    enabled: 'Detect flapping. Default: true.',
    high_threshold: '% of state changes over the last 21 results from which a check is flapping. Default: 50.',
    low_threshold: '% below which it stops flapping. Default: 25.',
  },
  retry: {
    initial_backoff: 'Wait before the first retry; doubled after each failure. Default: 5s.',
    max_backoff: 'The longest wait between retries. Default: 5m.',
    give_up_after: 'Give up on a notification this old (it stays in the outbox as failed). Default: 24h.',
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
    resident_session: 'Keep one command session per VM open across rounds, so a steady round opens no channel and starts no login shell (docs/configuration.md). false: a channel per round. Default: true.',
    proxy_jump: 'Jump hosts as OpenSSH\'s ProxyJump: `[user@]host[:port]`, comma-separated, first hop first; `none` for a direct connection. Default: ProxyJump from ~/.ssh/config, else none.',
    config_file: 'OpenSSH client config to honour (Host patterns, Match, Include; docs/ssh.md). Default: ~/.ssh/config.',
    use_ssh_config: 'false: ignore the OpenSSH client config. Default: true.',
  },
  vm: {
    address: 'Reach this VM here instead of asking libvirt (e.g. a forwarded port on the host): an IPv4 or IPv6 address, or a host name.',
    agent_fallback: 'As libvirt.agent_fallback, for this VM only.',
    nic: 'For a VM with several NICs: `{mac: 52:54:00:…}` or `{interface: vnet3}` picks whose address is used.',
    ssh: 'SSH settings for this VM, over the global ones key by key.',
    health_checks: 'Checks run on this VM in addition to the global ones; a same-named check replaces the global one.',
  },
  check: {
    name: 'Unique within its list; starts with a letter or digit, then letters, digits, `_ . : -`.',
    type: 'The probe: http, tcp, command, script, disk, memory, grpc, dns, or a plugin\'s type.',
    description: 'Free text.',
    tags: 'Free labels.',
    timeout: 'The probe\'s deadline: it ends within it (plus about 1 s at most) with UNHEALTHY.',
    interval: 'Time between runs under `health watch`.',
    failure_threshold: 'Consecutive failures before the hard UNHEALTHY state (docs/state.md).',
    success_threshold: 'Consecutive passes before HEALTHY again.',
    critical: 'An UNHEALTHY critical check makes the VM UNHEALTHY; a non-critical one only DEGRADED.',
    on_failure:
      'Run on the hard transition to UNHEALTHY: a command string runs in the guest over SSH; `{command, where: guest|host, timeout}` can run on the hypervisor. {{vm}}, {{address}}, {{check}} and {{status}} become references to $CLONEBOX_VM, $CLONEBOX_ADDRESS, $CLONEBOX_CHECK, $CLONEBOX_STATUS, safe in any quoting (docs/security.md).',
    on_recovery: 'Run on the hard transition back to HEALTHY; same forms as on_failure.',
    alert_on: 'unhealthy: alert on the hard UNHEALTHY state; degraded: already on a hard DEGRADED one. Default: unhealthy.',
  },
  http: {
    url: 'http:// or https:// URL. `localhost` means the guest (tunnelled over SSH); `{{address}}` is the VM\'s address.',
    method: 'HTTP method (any case).',
    headers: 'Request headers.',
    body: 'Request body.',
    expected_status: 'Status code, or a list of them, that counts as healthy.',
    expected_body: 'A substring the body must contain (at most 1 MiB of the body is read).',
    expected_json: 'Keys whose values must be equal in the JSON body: nested objects, or dotted paths like `db.status`.',
    expected_body_regex: 'A regular expression the body must match: `source` or `/source/flags` (e.g. `/ok|ready/i`).',
    max_response_time: 'Slower than this (stream open to response read, TLS handshake included) but otherwise right: DEGRADED, with the time.',
    insecure: 'https: accept a certificate that is not trusted or not for this host name (its expiry still counts).',
    ca_file: 'https: PEM file of the CA(s) to trust instead of the system\'s (a path on the hypervisor).',
    server_name: 'https: the name sent as SNI and that the certificate must be valid for. Default: the URL\'s host.',
    cert_expiry_warning: 'https: fewer days left on the server\'s certificate than this: DEGRADED. Default: 14d.',
    cert_expiry_critical: 'https: fewer days left than this, or expired: UNHEALTHY. Default: 3d.',
  },
  grpc: {
    address: 'host:port of the gRPC server. `localhost` means the guest (tunnelled over SSH); `{{address}}` is the VM\'s address.',
    service: 'Service name asked about with grpc.health.v1.Health/Check; "" (the default) is the server as a whole.',
    tls: '`true`, or `{insecure, ca_file, server_name}`: HTTP/2 over TLS, the certificate checked like https. Default: false (plaintext).',
  },
  dns: {
    query: 'The name to look up. For PTR, an IP address is turned into its reverse name.',
    record_type: 'A, AAAA, CNAME, MX, TXT, SRV, NS or PTR (any case).',
    server: 'localhost (a resolver on the guest\'s loopback), an IP address or {{address}}, with an optional :port. Default: the guest\'s /etc/resolv.conf nameserver, asked from inside the guest.',
    protocol: 'udp or tcp, for a server asked from the hypervisor (through the guest it is always TCP; a truncated UDP reply is asked again over TCP).',
    expected_rcode: 'The response code that counts as healthy: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, …',
    expected_answers: 'Answers that must all be present: `10.0.0.5`, `mail.example.com` or `10 mail.example.com` (MX), `0 5 5060 sip.example.com` or `sip.example.com:5060` (SRV), TXT text.',
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

function describeChecks(list: Json | undefined, plugins: readonly RegisteredProbe[]): void {
  const variants = ((list?.items as Json | undefined)?.oneOf ?? (list?.items as Json | undefined)?.anyOf) as Json[] | undefined;
  for (const variant of variants ?? []) {
    const type = ((variant.properties as Record<string, Json> | undefined)?.type?.const ?? '') as string;
    describeProperties(variant, ...(type in DESCRIPTIONS ? [type as Section] : []), 'check');
    const plugin = plugins.find((p) => p.type === type);
    variant.title = plugin ? `${type} check (plugin)` : `${type} check`;
    if (plugin?.description) variant.description = plugin.description;
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

/**
 * The JSON Schema (draft-07, which editors support best) of the config file, as a fresh object;
 * with `plugins`, their check types are in it too.
 */
export function configJsonSchema(plugins: readonly RegisteredProbe[] = []): Json {
  if (plugins.length) return build(plugins);
  cached ??= build([]);
  return structuredClone(cached);
}

/** The schema as `clonebox health schema` prints it and docs/clonebox.schema.json holds it (no plugins). */
export function configJsonSchemaText(plugins: readonly RegisteredProbe[] = []): string {
  return `${JSON.stringify(configJsonSchema(plugins), null, 2)}\n`;
}

function build(plugins: readonly RegisteredProbe[]): Json {
  const generated = z.toJSONSchema(buildConfigSchema(plugins.map((p) => p.check)), {
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
  describeChecks(props.health_checks, plugins);
  const alerting = props.alerting;
  describeProperties(alerting, 'alerting');
  const ap = alerting?.properties as Record<string, Json> | undefined;
  for (const variant of (((ap?.providers?.items as Json | undefined)?.oneOf ?? (ap?.providers?.items as Json | undefined)?.anyOf) as Json[] | undefined) ?? []) {
    describeProperties(variant, 'provider');
    variant.title = `${((variant.properties as Record<string, Json> | undefined)?.type?.const ?? '') as string} provider`;
  }
  const route = ap?.routes?.items as Json | undefined;
  describeProperties(route, 'route');
  describeProperties((route?.properties as Record<string, Json> | undefined)?.match, 'match');
  describeProperties(ap?.flapping, 'flapping');
  describeProperties(ap?.retry, 'retry');
  const vm = props.vms?.additionalProperties as Json | undefined;
  describeProperties(vm, 'vm');
  describeProperties((vm?.properties as Record<string, Json> | undefined)?.ssh, 'ssh');
  describeProperties((vm?.properties as Record<string, Json> | undefined)?.nic, 'nic');
  describeChecks((vm?.properties as Record<string, Json> | undefined)?.health_checks, plugins);
  const { $schema, ...rest } = schema;
  return {
    $schema,
    title: 'clonebox-health configuration (.clonebox.yaml)',
    description: 'Which checks `clonebox health` runs on which libvirt VMs, and how it reaches them. See docs/configuration.md.',
    ...rest,
  };
}
