import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$XDG_DATA_HOME/clonebox/health.db`; XDG's default data home is `~/.local/share`, and a relative one is ignored. */
export function defaultSqlitePath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME && env.XDG_DATA_HOME.startsWith('/') ? env.XDG_DATA_HOME : join(env.HOME || homedir(), '.local', 'share');
  return join(xdg, 'clonebox', 'health.db');
}
