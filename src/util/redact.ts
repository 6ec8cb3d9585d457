/**
 * Secrets never reach output, logs or history. Everything printable that came from config
 * (URLs, headers) goes through here first.
 */

const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-vault-token)$|token|secret|password|passwd|apikey|api_key/i;
const SECRET_PARAM = /token|secret|password|passwd|pwd|api_?key|auth|signature|sig|credential|session/i;
export const REDACTED = '***';

/** A URL safe to print: password (and user) in userinfo and secret-looking query values hidden. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url.replace(/\/\/[^/@]*@/, `//${REDACTED}@`);
  }
  if (u.password) u.password = REDACTED;
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(key)) u.searchParams.set(key, REDACTED);
  }
  return u.toString().replaceAll(encodeURIComponent(REDACTED), REDACTED);
}

export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, isSecretHeader(k) ? REDACTED : v]));
}

/** Remove known secret values wherever they appear in a free-form text (an error message, say). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join(REDACTED);
  return out;
}
