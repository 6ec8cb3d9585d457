/**
 * The user's OpenSSH client config (`~/.ssh/config`), read with the `ssh-config` parser and resolved the way
 * `ssh -G HOST` resolves it (ssh_config(5), readconf.c): directives apply in file order and the first value
 * obtained wins (IdentityFile accumulates); `Host` patterns match the name as given, with `!` negation;
 * `Match host|originalhost|user|localuser|all|final|canonical` are evaluated (never `exec`: clonebox runs no
 * commands from a config file, so a `Match exec` block does not apply); `Include` (globs, relative to ~/.ssh)
 * is followed, and a Host/Match inside an included file never changes the state of the including file.
 * Every value keeps its file and line, so `health check -v` and error messages can point at it.
 */
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { whereWritten, type MatchLine, type Node, type Option, type SshClientConfig } from './ssh-config-file.js';

export { loadSshClientConfig, parseSshClientConfig, whereWritten, type SshClientConfig } from './ssh-config-file.js';

export interface SshConfigValue<T> {
  value: T;
  file: string;
  line: number;
}

/** What `ssh -G` would use for one host, limited to the keys clonebox reads; unset keys are absent. */
export interface SshHostConfig {
  hostName?: SshConfigValue<string>;
  user?: SshConfigValue<string>;
  port?: SshConfigValue<number>;
  /** Every IdentityFile that applied, in order, tokens expanded. */
  identityFiles: SshConfigValue<string>[];
  identitiesOnly?: SshConfigValue<boolean>;
  /** A socket path, or 'none'. */
  identityAgent?: SshConfigValue<string>;
  userKnownHostsFiles?: SshConfigValue<string[]>;
  strictHostKeyChecking?: SshConfigValue<'yes' | 'no' | 'accept-new' | 'ask'>;
  /** undefined value: `ConnectTimeout none`. */
  connectTimeoutMs?: SshConfigValue<number | undefined>;
  serverAliveIntervalMs?: SshConfigValue<number>;
  /** `none`, or hops as written (`user@host:port,…`). */
  proxyJump?: SshConfigValue<string>;
  proxyCommand?: SshConfigValue<string>;
  /** Values ssh(1) would reject (a port that is not a number…): the host cannot be used as configured. */
  problems: string[];
  /** Blocks clonebox skipped (`Match exec`…), for verbose output. */
  notes: string[];
}

/** Where a value was written, as shown to the user: `~/.ssh/config line 4`. */
// ─── matching ───

function wildcard(pattern: string, text: string, fold: boolean): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, fold ? 'si' : 's').test(text);
}

/** match.c match_pattern_list: 1 when a pattern matches, -1 when a negated one does (that wins), else 0. */
function patternList(text: string, list: string, fold: boolean): -1 | 0 | 1 {
  let got: -1 | 0 | 1 = 0;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (!wildcard(pattern, text, fold)) continue;
    if (negated) return -1;
    got = 1;
  }
  return got;
}

interface EvalContext {
  /** The name as given (`%n`, `Match originalhost`). */
  originalHost: string;
  /** The name Host lines match: the original in the first pass, the HostName in the final pass. */
  host: string;
  localUser: string;
  finalPass: boolean;
  wantFinal: boolean;
  set: Map<string, Option>;
  identityFiles: Option[];
  notes: string[];
}

function matchHost(patterns: string[], host: string): boolean {
  let active = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    if (!wildcard(negated ? raw.slice(1) : raw, host, false)) continue;
    if (negated) return false;
    active = true;
  }
  return active;
}

/** readconf.c match_cfg_line, without `exec` (never run) and `localnetwork`. */
function matchCriteria(m: MatchLine, ctx: EvalContext): boolean {
  const where = whereWritten(m);
  const args = m.args.flatMap((a) => a.split(/\s+/)).filter(Boolean);
  let result = true;
  for (let i = 0; i < args.length; i++) {
    let attr = args[i]!.toLowerCase();
    const negate = attr.startsWith('!');
    if (negate) attr = attr.slice(1);
    if (attr === 'all') continue;
    if (attr === 'canonical' || attr === 'final') {
      if (attr === 'final') ctx.wantFinal = true;
      if (ctx.finalPass === negate) result = false;
      continue;
    }
    const arg = args[++i];
    if (arg === undefined) {
      ctx.notes.push(`${where}: Match ${attr} without a value; the block does not apply`);
      return false;
    }
    let hit: boolean;
    switch (attr) {
      case 'host': {
        const hostName = ctx.set.get('hostname');
        const host = hostName ? expandHostName(hostName.args[0] ?? '', ctx.originalHost) : ctx.originalHost;
        hit = patternList(host, arg, true) === 1;
        break;
      }
      case 'originalhost':
        hit = patternList(ctx.originalHost, arg, true) === 1;
        break;
      case 'user':
        hit = patternList(ctx.set.get('user')?.args[0] ?? ctx.localUser, arg, false) === 1;
        break;
      case 'localuser':
        hit = patternList(ctx.localUser, arg, false) === 1;
        break;
      default:
        // exec runs a command: clonebox never runs commands from a config file. localnetwork, tagged: not supported.
        ctx.notes.push(`${where}: Match ${attr} is not evaluated by clonebox; the block does not apply`);
        return false;
    }
    if (hit === negate) result = false;
  }
  return result;
}

function evaluate(nodes: readonly Node[], ctx: EvalContext, state: { active: boolean }, neverMatch: boolean): void {
  for (const node of nodes) {
    switch (node.kind) {
      case 'host':
        state.active = !neverMatch && matchHost(node.patterns, ctx.host);
        break;
      case 'match':
        state.active = !neverMatch && matchCriteria(node, ctx);
        break;
      case 'include': {
        const outer = state.active;
        for (const f of node.files) {
          evaluate(f.nodes, ctx, state, neverMatch || !outer);
          // A Match or Host in an included file does not change the including file's state.
          state.active = outer;
        }
        break;
      }
      case 'option':
        if (!state.active) break;
        if (node.key === 'identityfile') {
          if (!ctx.identityFiles.some((o) => o.args[0] === node.args[0])) ctx.identityFiles.push(node);
        } else if (!ctx.set.has(node.key)) {
          // ProxyJump and ProxyCommand are one option in ssh(1): whichever comes first wins.
          if ((node.key === 'proxyjump' && ctx.set.has('proxycommand')) || (node.key === 'proxycommand' && ctx.set.has('proxyjump'))) break;
          ctx.set.set(node.key, node);
        }
        break;
    }
  }
}

function expandHostName(value: string, original: string): string {
  return value.replace(/%(.)/g, (all, c: string) => (c === 'h' ? original : c === '%' ? '%' : all));
}

export interface TokenContext {
  /** %h: the host to connect to (HostName). */
  host: string;
  /** %n: the name as given. */
  original: string;
  port: number;
  /** %r: remote user. */
  user: string;
  /** %u: local user. */
  localUser: string;
}

/** `~` and %-tokens in paths (IdentityFile, UserKnownHostsFile, IdentityAgent), as ssh(1) expands them. */
export function expandPathTokens(value: string, t: TokenContext): string {
  const home = homedir();
  let v = value.startsWith('~/') || value === '~' ? home + value.slice(1) : value;
  v = v.replace(/%(.)/g, (all, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return home;
      case 'h':
        return t.host;
      case 'n':
        return t.original;
      case 'p':
        return String(t.port);
      case 'r':
        return t.user;
      case 'u':
        return t.localUser;
      case 'i':
        return String(process.getuid?.() ?? '');
      default:
        return all;
    }
  });
  return v;
}

function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

function seconds(o: Option, problems: string[], allowNone: boolean): number | undefined | null {
  const raw = o.args[0] ?? '';
  if (allowNone && raw.toLowerCase() === 'none') return undefined;
  const m = /^(\d+)([smhdw]?)$/i.exec(raw);
  if (!m) {
    problems.push(`${whereWritten(o)}: ${o.key} expects a number of seconds, got "${raw}"`);
    return null;
  }
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2]!.toLowerCase()]!;
  return Number(m[1]) * unit * 1000;
}

/** Resolve the config for one name, as `ssh -G NAME` would (keys clonebox reads only). */
export function resolveSshHost(config: SshClientConfig, name: string): SshHostConfig {
  const ctx: EvalContext = {
    originalHost: name,
    host: name,
    localUser: localUserName(),
    finalPass: false,
    wantFinal: false,
    set: new Map(),
    identityFiles: [],
    notes: [],
  };
  evaluate(config.root.nodes, ctx, { active: true }, false);
  if (ctx.wantFinal) {
    // ssh(1) reads the config again, matching Host lines against the HostName, keeping what it already has.
    const hostName = ctx.set.get('hostname');
    ctx.host = (hostName ? expandHostName(hostName.args[0] ?? '', name) : name).toLowerCase();
    ctx.finalPass = true;
    evaluate(config.root.nodes, ctx, { active: true }, false);
  }
  const out: SshHostConfig = { identityFiles: [], problems: [], notes: [...new Set(ctx.notes)] };
  const at = (o: Option) => ({ file: o.file, line: o.line });
  const get = (key: string) => ctx.set.get(key);
  const first = (o: Option) => o.args.join(' ');

  const hostName = get('hostname');
  if (hostName) out.hostName = { value: expandHostName(first(hostName), name), ...at(hostName) };
  const user = get('user');
  if (user) out.user = { value: first(user), ...at(user) };
  const port = get('port');
  if (port) {
    const n = Number(first(port));
    if (Number.isInteger(n) && n >= 1 && n <= 65535) out.port = { value: n, ...at(port) };
    else out.problems.push(`${whereWritten(port)}: Port expects a number from 1 to 65535, got "${first(port)}"`);
  }
  const yesNo = (o: Option): boolean | undefined => {
    const v = first(o).toLowerCase();
    if (v === 'yes' || v === 'true') return true;
    if (v === 'no' || v === 'false') return false;
    out.problems.push(`${whereWritten(o)}: ${o.key} expects yes or no, got "${first(o)}"`);
    return undefined;
  };
  const only = get('identitiesonly');
  if (only) {
    const v = yesNo(only);
    if (v !== undefined) out.identitiesOnly = { value: v, ...at(only) };
  }
  const agent = get('identityagent');
  if (agent) out.identityAgent = { value: first(agent), ...at(agent) };
  const known = get('userknownhostsfile');
  if (known) out.userKnownHostsFiles = { value: known.args.flatMap((a) => a.split(/\s+/)).filter(Boolean), ...at(known) };
  const strict = get('stricthostkeychecking');
  if (strict) {
    const v = first(strict).toLowerCase();
    const value = v === 'yes' || v === 'true' ? 'yes' : v === 'no' || v === 'false' || v === 'off' ? 'no' : v === 'accept-new' ? 'accept-new' : v === 'ask' ? 'ask' : undefined;
    if (value) out.strictHostKeyChecking = { value, ...at(strict) };
    else out.problems.push(`${whereWritten(strict)}: StrictHostKeyChecking expects yes, accept-new, ask or no, got "${first(strict)}"`);
  }
  const timeout = get('connecttimeout');
  if (timeout) {
    const ms = seconds(timeout, out.problems, true);
    if (ms !== null) out.connectTimeoutMs = { value: ms === 0 ? undefined : ms, ...at(timeout) };
  }
  const alive = get('serveraliveinterval');
  if (alive) {
    const ms = seconds(alive, out.problems, false);
    if (ms !== null && ms !== undefined) out.serverAliveIntervalMs = { value: ms, ...at(alive) };
  }
  const jump = get('proxyjump');
  if (jump) out.proxyJump = { value: first(jump), ...at(jump) };
  const command = get('proxycommand');
  if (command && first(command).toLowerCase() !== 'none') out.proxyCommand = { value: first(command), ...at(command) };

  // Tokens in IdentityFile need the final host, port and user, as in ssh(1).
  const tokens: TokenContext = {
    host: (out.hostName?.value ?? name).toLowerCase(),
    original: name,
    port: out.port?.value ?? 22,
    user: out.user?.value ?? ctx.localUser,
    localUser: ctx.localUser,
  };
  out.identityFiles = ctx.identityFiles.map((o) => ({ value: expandPathTokens(first(o), tokens), ...at(o) }));
  if (out.userKnownHostsFiles) out.userKnownHostsFiles.value = out.userKnownHostsFiles.value.map((f) => expandPathTokens(f, tokens));
  if (out.identityAgent && !['none', 'SSH_AUTH_SOCK'].includes(out.identityAgent.value)) {
    const v = out.identityAgent.value;
    out.identityAgent.value = v.startsWith('$') ? (process.env[v.slice(1)] ?? '') : expandPathTokens(v, tokens);
  }
  return out;
}

/** Keys of SshHostConfig that hold one value. */
type SingleKey = Exclude<keyof SshHostConfig, 'identityFiles' | 'problems' | 'notes'>;
const SINGLE_KEYS: SingleKey[] = [
  'hostName',
  'user',
  'port',
  'identitiesOnly',
  'identityAgent',
  'userKnownHostsFiles',
  'strictHostKeyChecking',
  'connectTimeoutMs',
  'serverAliveIntervalMs',
  'proxyJump',
  'proxyCommand',
];

/**
 * The config for a VM: as `ssh -G DOMAIN` resolves it, then what is still unset as `ssh -G ADDRESS` would, where
 * ADDRESS is the HostName the first pass found, else the VM's address (from libvirt, or `vms.NAME.address`).
 */
export function resolveSshForVm(config: SshClientConfig, domain: string, address: string | undefined): SshHostConfig {
  const byName = resolveSshHost(config, domain);
  const second = byName.hostName?.value ?? address;
  if (!second || second === domain) return byName;
  const byAddress = resolveSshHost(config, second);
  const merged: SshHostConfig = {
    ...byName,
    identityFiles: [...byName.identityFiles],
    problems: [...byName.problems],
    notes: [...byName.notes],
  };
  for (const key of SINGLE_KEYS) {
    // The second pass does not rename the host: HostName comes from the first pass only.
    if (key === 'hostName') continue;
    if (merged[key] === undefined && byAddress[key] !== undefined) Object.assign(merged, { [key]: byAddress[key] });
  }
  for (const f of byAddress.identityFiles) if (!merged.identityFiles.some((g) => g.value === f.value)) merged.identityFiles.push(f);
  for (const p of byAddress.problems) if (!merged.problems.includes(p)) merged.problems.push(p);
  for (const n of byAddress.notes) if (!merged.notes.includes(n)) merged.notes.push(n);
  return merged;
}

/** One hop of a ProxyJump: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export interface JumpSpec {
  /** As written (`root@hv1:22`), for messages. */
  spec: string;
  user?: string;
  host: string;
  port?: number;
}

/** Parse a ProxyJump value; `none` is no hops. Throws an Error with a one-sentence message when malformed. */
export function parseProxyJump(value: string): JumpSpec[] {
  if (value.trim().toLowerCase() === 'none') return [];
  return value.split(',').map((raw) => {
    const spec = raw.trim();
    const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s[\]/]+)(?::(\d+))?\/?$/.exec(spec);
    if (!m) throw new Error(`"${spec}" is not a jump host; expected [user@]host[:port]`);
    const port = m[3] === undefined ? undefined : Number(m[3]);
    if (port !== undefined && (port < 1 || port > 65535)) throw new Error(`"${spec}" has a port outside 1-65535`);
    return { spec, ...(m[1] ? { user: m[1] } : {}), host: m[2]!.replace(/^\[|\]$/g, ''), ...(port !== undefined ? { port } : {}) };
  });
}

/** The default client config file: ~/.ssh/config. */
export function defaultSshConfigFile(): string {
  return join(homedir(), '.ssh', 'config');
}
