/** Errors a user causes with their config: one line each, naming file:line:column and the key path. */
import { redactText } from '../util/redact.js';

export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  /** `health_checks[2].port` */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

/** One line; a value echoed back (a URL with a password, a resolved secret) is masked. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  return redactText(p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`);
}

/** `['health_checks', 2, 'port']` → `health_checks[2].port` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
