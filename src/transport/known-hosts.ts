/**
 * OpenSSH known_hosts, read the way ssh(1) reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
 * `patterns keytype base64 [comment]`, where patterns is a comma-separated list of host names
 * (`[host]:port` for ports other than 22) with `*`/`?` wildcards and `!` negation, or one hashed
 * name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 * `@revoked` lines refuse their key for every host; `@cert-authority` lines are skipped
 * (host certificates are not supported).
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker?: 'revoked';
  patterns: string;
  keyType: string;
  key: Buffer;
}

export type HostKeyVerdict =
  | { kind: 'match'; line: number }
  | { kind: 'revoked'; line: number }
  /** The host has a recorded key of this key type, and it is a different key. */
  | { kind: 'changed'; line: number; keyType: string }
  /** No recorded key of this type; `otherTypes` lists the host's recorded keys of other types. */
  | { kind: 'unknown'; otherTypes: { line: number; keyType: string }[] };

/** Entries of a known_hosts text; malformed, comment and `@cert-authority` lines are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let fields = lines[i]!.trim().split(/\s+/);
    if (fields[0] === '' || fields[0]!.startsWith('#')) continue;
    let marker: 'revoked' | undefined;
    if (fields[0]!.startsWith('@')) {
      if (fields[0] === '@revoked') marker = 'revoked';
      else continue; // @cert-authority: host certificates are not supported.
      fields = fields.slice(1);
    }
    const [patterns, keyType, base64] = fields;
    if (!patterns || !keyType || !base64) continue;
    const key = Buffer.from(base64, 'base64');
    if (key.length === 0 || blobKeyType(key) !== keyType) continue;
    entries.push({ line: i + 1, ...(marker ? { marker } : {}), patterns, keyType, key });
  }
  return entries;
}

/** The name ssh(1) looks up for a host and port: `host` for 22, else `[host]:port`. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type named inside an SSH public key blob (its first string). */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return undefined;
  return blob.toString('latin1', 4, 4 + len);
}

/** `SHA256:…` as ssh-keygen -l prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function wildcardMatch(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(name);
}

/** Whether a known_hosts pattern field names `name` (already in `[host]:port` form where needed). */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  const lower = name.toLowerCase();
  let matched = false;
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (pattern && wildcardMatch(pattern, lower)) {
      if (negated) return false; // A matching negation wins over every positive match.
      matched = true;
    }
  }
  return matched;
}

/**
 * The entries that may name `name` (or are @revoked), in file order. Entries whose patterns are plain names are
 * looked up by name; the rest (wildcards, negations, hashed names, @revoked) are always candidates. A cold round
 * over N VMs with an N-line file looked at every line for every VM: at N=1,000, 2 M pattern matches, 0.2 s of CPU.
 */
function candidates(entries: KnownHostEntry[], name: string): KnownHostEntry[] {
  if (entries.length < 16) return entries;
  let index = indexes.get(entries);
  if (!index) {
    index = buildIndex(entries);
    indexes.set(entries, index);
  }
  const named = index.byName.get(name.toLowerCase());
  if (!named) return index.always;
  if (index.always.length === 0) return named;
  // Both lists are in file order: merge them.
  const out: KnownHostEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < named.length || j < index.always.length) {
    if (j >= index.always.length || (i < named.length && named[i]!.line < index.always[j]!.line)) out.push(named[i++]!);
    else out.push(index.always[j++]!);
  }
  return out;
}

interface KnownHostsIndex {
  byName: Map<string, KnownHostEntry[]>;
  always: KnownHostEntry[];
}

const indexes = new WeakMap<KnownHostEntry[], KnownHostsIndex>();

function buildIndex(entries: KnownHostEntry[]): KnownHostsIndex {
  const byName = new Map<string, KnownHostEntry[]>();
  const always: KnownHostEntry[] = [];
  for (const e of entries) {
    const names = e.patterns.split(',');
    if (e.marker || e.patterns.startsWith('|') || names.some((p) => p === '' || p.startsWith('!') || /[*?]/.test(p))) {
      always.push(e);
      continue;
    }
    for (const n of new Set(names.map((p) => p.toLowerCase()))) {
      const list = byName.get(n);
      if (list) list.push(e);
      else byName.set(n, [e]);
    }
  }
  return { byName, always };
}

/** The key types recorded for host:port (to prefer them when negotiating, as ssh(1) does). */
export function recordedKeyTypes(entries: KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  const types: string[] = [];
  for (const e of candidates(entries, name)) {
    if (!e.marker && patternsMatch(e.patterns, name) && !types.includes(e.keyType)) types.push(e.keyType);
  }
  return types;
}

export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostName(host, port);
  const keyType = blobKeyType(key) ?? 'unknown';
  let changed: { line: number; keyType: string } | undefined;
  const otherTypes: { line: number; keyType: string }[] = [];
  for (const e of candidates(entries, name)) {
    if (e.marker === 'revoked') {
      if (e.key.equals(key)) return { kind: 'revoked', line: e.line };
      continue;
    }
    if (!patternsMatch(e.patterns, name)) continue;
    if (e.key.equals(key)) return { kind: 'match', line: e.line };
    if (e.keyType === keyType) changed ??= { line: e.line, keyType };
    else otherTypes.push({ line: e.line, keyType: e.keyType });
  }
  // Keep looking after a mismatch: a host may have several lines, one of them current.
  if (changed) return { kind: 'changed', ...changed };
  return { kind: 'unknown', otherTypes };
}

/** Parsed files by path, with the stat they were parsed at: a cold round over N VMs parses once, not N times. */
const parsedFiles = new Map<string, { stamp: string; entries: Promise<KnownHostEntry[]> }>();

/** The entries of a known_hosts file; a missing file has none. Re-read whenever its size or mtime changed. */
export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  let stamp: string;
  try {
    const st = await stat(file, { bigint: true });
    stamp = `${st.size}:${st.mtimeNs}:${st.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const cached = parsedFiles.get(file);
  if (cached?.stamp === stamp) return cached.entries;
  const entries = readFile(file, 'utf8').then(parseKnownHosts, (err: unknown) => {
    parsedFiles.delete(file);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  });
  parsedFiles.set(file, { stamp, entries });
  return entries;
}

/**
 * Record a host key as ssh(1)'s accept-new does. One write on an O_APPEND descriptor, so
 * concurrent writers do not interleave inside a line; the file is created 0600 (dir 0700).
 */
export async function appendKnownHost(file: string, host: string, port: number, key: Buffer): Promise<string> {
  const keyType = blobKeyType(key);
  if (!keyType) throw new Error('malformed host key');
  const line = `${knownHostName(host, port)} ${keyType} ${key.toString('base64')}`;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // If the file lacks a final newline, start on a fresh line rather than extend the last one.
  let prefix = '';
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = '\n';
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await appendFile(file, `${prefix}${line}\n`, { mode: 0o600, flag: 'a' });
  return line;
}
