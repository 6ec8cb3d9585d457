import { homedir } from 'node:os';
import { join } from 'node:path';

/** `~` and `~/…` as the user's home directory (what a shell and ssh(1) would read); any other path as it is. */
export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}
