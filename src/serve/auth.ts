/**
 * Who may read the page when it is served beyond this host: a bearer token or basic-auth credentials, read from
 * the environment or a file (`--auth env:NAME` / `--auth file:PATH`), never from the command line, where `ps`
 * and shell history would show them. Browsers cannot send a bearer token, so a token also works as the password
 * of basic auth (any user name).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { UsageError } from '../engine/fleet.js';

export type AuthConfig = { kind: 'bearer'; token: string } | { kind: 'basic'; user: string; password: string };

export const MIN_SECRET_LENGTH = 16;

/** Reads the secret named by `env:NAME` or `file:PATH`; `warn` hears about a file others can read. */
export function loadAuth(source: string, kind: 'bearer' | 'basic', env: NodeJS.ProcessEnv = process.env, warn: (msg: string) => void = () => undefined): AuthConfig {
  let secret: string;
  if (source.startsWith('env:')) {
    const name = source.slice(4);
    const value = env[name];
    if (!name || value === undefined || value.trim() === '') throw new UsageError(`--auth ${source}: the environment variable ${name || '(empty name)'} is not set; export it first`);
    secret = value.trim();
  } else if (source.startsWith('file:')) {
    const path = source.slice(5);
    try {
      secret = readFileSync(path, 'utf8').split('\n')[0]!.trim();
      if ((statSync(path).mode & 0o077) !== 0) warn(`${path} can be read by other users; chmod 600 it`);
    } catch (err) {
      throw new UsageError(`--auth ${source}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (secret === '') throw new UsageError(`--auth ${source}: ${path} is empty; put the ${kind === 'basic' ? 'user:password' : 'token'} on its first line`);
  } else {
    // Not echoed: it may be the secret itself.
    throw new UsageError('--auth expects env:NAME or file:PATH: the secret itself never goes on the command line (it would show in ps and shell history)');
  }
  if (kind === 'basic') {
    const i = secret.indexOf(':');
    if (i <= 0) throw new UsageError(`--auth ${source}: basic auth needs "user:password", found no user name before a colon`);
    const password = secret.slice(i + 1);
    if (password.length < MIN_SECRET_LENGTH) throw new UsageError(`--auth ${source}: the password is shorter than ${MIN_SECRET_LENGTH} characters; use a longer one (e.g. openssl rand -hex 16)`);
    return { kind, user: secret.slice(0, i), password };
  }
  if (secret.length < MIN_SECRET_LENGTH) throw new UsageError(`--auth ${source}: the token is shorter than ${MIN_SECRET_LENGTH} characters; use a longer one (e.g. openssl rand -hex 16)`);
  return { kind, token: secret };
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** Whether an Authorization header grants access (constant-time comparisons). */
export function authorized(auth: AuthConfig, header: string | undefined): boolean {
  if (!header) return false;
  const [scheme, value = ''] = header.split(/\s+/, 2) as [string, string?];
  if (/^bearer$/i.test(scheme)) return auth.kind === 'bearer' && same(value, auth.token);
  if (!/^basic$/i.test(scheme)) return false;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return false;
  const user = decoded.slice(0, i);
  const password = decoded.slice(i + 1);
  if (auth.kind === 'bearer') return same(password, auth.token);
  // Both compared, always: no early exit on the user name.
  return [same(user, auth.user), same(password, auth.password)].every(Boolean);
}
