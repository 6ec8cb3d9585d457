/**
 * Secret references in the config: `${env:NAME}` and `${file:/path}`, anywhere a string value is
 * allowed (a header, a URL, a store DSN, a command). Resolved once at load; each value is registered
 * as a secret, so it is masked in every output, error and history row from then on. `$${…}` keeps
 * the text `${…}` as it is. A reference that cannot be resolved is a config error at its file:line.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { isScalar, visit, type Document } from 'yaml';
import { registerSecret } from '../util/redact.js';
import { expandHome } from '../util/home.js';

/** A secret file larger than this is not a secret but a mistake (a log, a binary). */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

const REFERENCE = /(\$?)\$\{(env|file):([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ReferenceProblem {
  /** Offset of the scalar in the YAML text. */
  offset: number;
  message: string;
}

function readSecretFile(raw: string): string {
  const path = expandHome(raw.trim());
  if (!isAbsolute(path)) throw new Error(`\${file:${raw}} must name an absolute path (or ~/…)`);
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `\${file:${raw}}: the file does not exist` : `\${file:${raw}}: cannot read the file (${code ?? 'error'})`);
  }
  if (size > MAX_SECRET_FILE_BYTES) throw new Error(`\${file:${raw}}: the file is larger than ${MAX_SECRET_FILE_BYTES / 1024} KiB; a secret file holds just the secret`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`\${file:${raw}}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // One trailing newline is how editors and `echo` end a file, not part of the secret.
  return text.replace(/\r?\n$/, '');
}

function resolveOne(kind: string, arg: string, env: NodeJS.ProcessEnv): string {
  if (kind === 'env') {
    const name = arg.trim();
    if (!ENV_NAME.test(name)) throw new Error(`\${env:${arg}}: expected an environment variable name such as \${env:API_TOKEN}`);
    const value = env[name];
    if (value === undefined) throw new Error(`\${env:${name}}: the environment variable ${name} is not set; set it, or change the config`);
    return value;
  }
  return readSecretFile(arg);
}

/** Replace the references in one string; every resolved value is registered as a secret. */
export function resolveReferences(text: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!text.includes('${')) return text;
  return text.replace(REFERENCE, (all, escaped: string, kind: string, arg: string) => {
    if (escaped) return all.slice(1);
    const value = resolveOne(kind, arg, env);
    registerSecret(value);
    return value;
  });
}

/** Resolve every reference in the document's string values, in place. Returns what could not be resolved. */
export function resolveDocumentSecrets(doc: Document, env: NodeJS.ProcessEnv = process.env): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || !isScalar(node) || typeof node.value !== 'string' || !node.value.includes('${')) return;
      try {
        node.value = resolveReferences(node.value, env);
      } catch (err) {
        problems.push({ offset: node.range?.[0] ?? 0, message: (err as Error).message });
      }
    },
  });
  return problems;
}
