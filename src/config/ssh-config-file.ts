/**
 * Reading an OpenSSH client config (`~/.ssh/config`) with the `ssh-config` parser: directives flattened in file
 * order (Host and Match are markers, as in readconf.c), each with its file and line, and `Include` followed (globs,
 * relative to ~/.ssh, at most 16 levels). Matching and resolving are in ssh-config.ts.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parse, type Line } from 'ssh-config';
import { ConfigError } from './errors.js';

/** One directive inside a config file, with where it was written. */
export interface Option {
  kind: 'option';
  /** Lower-case keyword. */
  key: string;
  args: string[];
  file: string;
  line: number;
}
export interface HostLine {
  kind: 'host';
  patterns: string[];
  file: string;
  line: number;
}
export interface MatchLine {
  kind: 'match';
  args: string[];
  file: string;
  line: number;
}
export interface IncludeLine {
  kind: 'include';
  files: ParsedFile[];
  file: string;
  line: number;
}
export type Node = Option | HostLine | MatchLine | IncludeLine;

export interface ParsedFile {
  path: string;
  nodes: Node[];
}

/** A loaded client config: the file, its includes, and what could not be read (said in verbose output). */
export interface SshClientConfig {
  file: string;
  root: ParsedFile;
  notes: string[];
}

/** A value from the config and where it was written. */
export function whereWritten(v: { file: string; line: number }): string {
  const home = homedir();
  const file = v.file.startsWith(`${home}/`) ? `~${v.file.slice(home.length)}` : v.file;
  return `${file} line ${v.line}`;
}

const MAX_INCLUDE_DEPTH = 16; // readconf.c READCONF_MAX_DEPTH

function countBreaks(s: string): number {
  return s.match(/\r\n|\n|\r/g)?.length ?? 0;
}

function argsOf(value: string | { val: string }[]): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value];
  return value.map((v) => v.val);
}

/** Lines of an `ssh-config` parse, flattened in file order (Host and Match are markers, as in readconf.c). */
function flatten(lines: readonly Line[], file: string, depth: number, notes: string[], state: { line: number }): Node[] {
  const nodes: Node[] = [];
  for (const l of lines) {
    const line = state.line + countBreaks(l.before);
    state.line = line + countBreaks(l.after);
    if (l.type !== 1) continue;
    const key = l.param.toLowerCase();
    const args = argsOf(l.value);
    if (key === 'host') nodes.push({ kind: 'host', patterns: args.flatMap((a) => a.split(/\s+/)).filter(Boolean), file, line });
    else if (key === 'match') nodes.push({ kind: 'match', args, file, line });
    else if (key === 'include') nodes.push({ kind: 'include', files: includeFiles(args, file, line, depth, notes), file, line });
    else nodes.push({ kind: 'option', key, args, file, line });
    if ('config' in l) nodes.push(...flatten(l.config, file, depth, notes, state));
  }
  return nodes;
}

/** Expand a glob (`*`, `?`, `[…]` in any path component) to existing paths, sorted as glob(3) sorts them. */
function expandGlob(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) return [pattern];
  const parts = pattern.split('/');
  let paths = [pattern.startsWith('/') ? '/' : '.'];
  for (const part of parts) {
    if (part === '') continue;
    if (!/[*?[]/.test(part)) {
      paths = paths.map((p) => join(p, part));
      continue;
    }
    const re = globPart(part);
    const next: string[] = [];
    for (const p of paths) {
      let names: string[];
      try {
        names = readdirSync(p);
      } catch {
        continue;
      }
      for (const n of names.sort()) if (re.test(n) && (part.startsWith('.') || !n.startsWith('.'))) next.push(join(p, n));
    }
    paths = next;
  }
  return paths;
}

function globPart(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function includeFiles(args: string[], from: string, line: number, depth: number, notes: string[]): ParsedFile[] {
  const files: ParsedFile[] = [];
  for (const arg of args) {
    // Relative paths are relative to ~/.ssh for a user config (ssh_config(5) Include).
    const expanded = arg.startsWith('~/') || arg === '~' ? join(homedir(), arg.slice(1)) : isAbsolute(arg) ? arg : join(homedir(), '.ssh', arg);
    for (const path of expandGlob(expanded)) {
      if (depth + 1 > MAX_INCLUDE_DEPTH) {
        throw new ConfigError([{ file: from, line, path: '', message: `Include nested deeper than ${MAX_INCLUDE_DEPTH} levels (an Include loop?)` }]);
      }
      try {
        if (statSync(path).isDirectory()) continue;
      } catch {
        // glob(3) without wildcards returns the name as is; ssh skips a file it cannot open.
        notes.push(`${whereWritten({ file: from, line })}: Include ${path} not found; skipped`);
        continue;
      }
      files.push(readParsed(path, depth + 1, notes));
    }
  }
  return files;
}

function readParsed(path: string, depth: number, notes: string[]): ParsedFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    notes.push(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}); skipped`);
    return { path, nodes: [] };
  }
  let lines: Line[];
  try {
    lines = parse(text);
  } catch (err) {
    throw new ConfigError([{ file: path, path: '', message: `not a valid OpenSSH client config: ${(err as Error).message}` }]);
  }
  return { path, nodes: flatten(lines, path, depth, notes, { line: 1 }) };
}

/**
 * Read an OpenSSH client config and everything it includes. A missing file is no config (undefined); a file
 * that cannot be parsed is a ConfigError naming it.
 */
export function loadSshClientConfig(file: string): SshClientConfig | undefined {
  try {
    if (!statSync(file).isFile()) return undefined;
  } catch {
    return undefined;
  }
  const notes: string[] = [];
  const root = readParsed(file, 0, notes);
  return { file, root, notes };
}

/** Parse config text directly (tests, and configs given inline). */
export function parseSshClientConfig(text: string, file: string): SshClientConfig {
  const notes: string[] = [];
  let lines: Line[];
  try {
    lines = parse(text);
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `not a valid OpenSSH client config: ${(err as Error).message}` }]);
  }
  return { file, root: { path: file, nodes: flatten(lines, file, 0, notes, { line: 1 }) }, notes };
}

