/**
 * Secrets never reach output, logs, errors or history. One function decides what a secret looks
 * like, and every printable text goes through it on its way out:
 * - values the config marks as secret (credential headers, URL passwords, secret-named query
 *   parameters, `${env:…}` / `${file:…}` references, a store DSN's password) are registered at load
 *   and masked wherever they show up later, as CI systems mask theirs: in a server's echo of an
 *   Authorization header, in a command's output, in an error text;
 * - a URL's password and secret-named query values are masked in any text, registered or not.
 */

const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-vault-token)$|token|secret|password|passwd|apikey|api_key/i;
const SECRET_PARAM = /token|secret|password|passwd|pwd|api_?key|access_?key|private_?key|^key$|auth|signature|^sig$|credential|session/i;
export const REDACTED = '***';

/** Shorter values would mask ordinary words; a secret that short protects nothing anyway. */
const MIN_SECRET_LENGTH = 4;

const secrets = new Set<string>();
/** Registered secrets, longest first, so a secret that contains another is masked whole. */
let ordered: string[] = [];

/** Mask `value` (and its URL-encoded form) in every text that goes out from now on. */
export function registerSecret(value: string | undefined): void {
  if (value === undefined) return;
  const forms = [value, value.trim()];
  try {
    forms.push(encodeURIComponent(value), decodeURIComponent(value));
  } catch {
    // not URL-encoded text
  }
  let added = false;
  for (const v of forms) {
    if (v.length >= MIN_SECRET_LENGTH && !secrets.has(v)) {
      secrets.add(v);
      added = true;
    }
  }
  if (added) ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/** A credential header's value: the whole value and, for `Bearer TOKEN` / `Basic B64`, the credential alone. */
export function registerHeaderSecret(value: string): void {
  registerSecret(value);
  const m = /^\s*[A-Za-z][\w-]*\s+(\S.*)$/.exec(value);
  if (m) registerSecret(m[1]);
}

/** Passwords and secret-named query values of a URL (or DSN), and the Basic credential made from its userinfo. */
export function registerUrlSecrets(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    const m = /\/\/[^/@\s:]*:([^/@\s]*)@/.exec(url);
    if (m) registerSecret(m[1]);
    return;
  }
  if (u.password) {
    registerSecret(u.password);
    const user = safeDecode(u.username);
    const pass = safeDecode(u.password);
    registerSecret(pass);
    registerSecret(Buffer.from(`${user}:${pass}`).toString('base64'));
  }
  for (const [key, value] of u.searchParams) if (SECRET_PARAM.test(key)) registerSecret(value);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** For tests: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
  ordered = [];
}

// A URL in free text: scheme://…, up to whitespace or a quote.
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;
// userinfo with a password: //user:pass@ (the password may hold '@' or ':', up to the last '@' before the path).
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/[^/?#\s@:]*):[^/?#\s]*@/i;
const QUERY_PARAM = /([?&;])([^=&#;\s]+)=([^&#;\s]*)/g;
// libpq-style `password=…` in a connection string or an error echoing one.
const KEYWORD_PASSWORD = /\b(password|passwd|pwd)\s*=\s*('[^']*'|"[^"]*"|[^\s&;]+)/gi;

function redactUrlText(url: string): string {
  let out = url.replace(USERINFO, `$1:${REDACTED}@`);
  const q = out.search(/[?]/);
  if (q >= 0) {
    out = out.slice(0, q) + out.slice(q).replace(QUERY_PARAM, (all, sep: string, key: string, value: string) => (value && SECRET_PARAM.test(key) ? `${sep}${key}=${REDACTED}` : all));
  }
  return out;
}

/**
 * `text` safe to print: registered secrets, URL passwords, secret-named query values and
 * `password=` pairs masked. The text is otherwise left exactly as it was (URLs are not normalised).
 */
export function redactText(text: string): string {
  let out = text;
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join(REDACTED);
  if (out.includes('://')) out = out.replace(URL_IN_TEXT, redactUrlText);
  if (/pass|pwd/i.test(out)) out = out.replace(KEYWORD_PASSWORD, (_all, key: string) => `${key}=${REDACTED}`);
  return out;
}

/**
 * `value` with every string in it (object keys kept) passed through redactText: a copy where something was masked,
 * `value` itself (not copied) where nothing was. Reports are rebuilt several times per check in a watch, so the
 * common case, nothing to mask, allocates nothing.
 */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const r = redactDeep(v);
      if (r !== v) (out ??= value.slice())[i] = r;
    }
    return (out ?? value) as T;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const obj = value as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    for (const k in obj) {
      if (!Object.hasOwn(obj, k)) continue;
      const v = obj[k];
      const r = redactDeep(v);
      if (r !== v) (out ??= { ...obj })[k] = r;
    }
    return (out ?? value) as T;
  }
  return value;
}

/** A URL safe to print: password (and user) in userinfo and secret-looking query values hidden. */
export function redactUrl(url: string): string {
  return redactText(url);
}

export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, isSecretHeader(k) ? REDACTED : v]));
}

/** Remove known secret values wherever they appear in a free-form text (an error message, say). */
export function scrubSecrets(text: string, extra: readonly string[] = []): string {
  let out = text;
  for (const s of extra) if (s.length >= 3) out = out.split(s).join(REDACTED);
  return redactText(out);
}
