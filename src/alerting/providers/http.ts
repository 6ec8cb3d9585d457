/** One JSON POST with a deadline, for the HTTP providers. Errors say what happened, never the URL's secrets. */
import { redactUrl } from '../../util/redact.js';
import { DeliveryError } from '../types.js';

/** Secret-looking parts of a URL (userinfo password, token-ish query values, the path of a chat webhook). */
export function urlSecrets(url: string): string[] {
  const out: string[] = [];
  try {
    const u = new URL(url);
    if (u.password) out.push(decodeURIComponent(u.password), u.password);
    for (const [k, v] of u.searchParams) if (/token|secret|key|sig|auth|pass/i.test(k) && v) out.push(v);
  } catch {
    // an unparsable URL is refused by the schema
  }
  return out;
}

/** fetch refuses a URL with credentials: `user:password@` becomes HTTP Basic auth, as curl does. */
function splitCredentials(url: string): { target: string; auth?: string } {
  const u = new URL(url);
  if (!u.username && !u.password) return { target: url };
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  return { target: u.toString(), auth };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
  let res: Response;
  const { target, auth } = splitCredentials(url);
  try {
    res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'clonebox-health', ...(auth ? { authorization: auth } : {}), ...headers },
      body: JSON.stringify(body),
      signal,
      redirect: 'error',
    });
  } catch (err) {
    if (signal.aborted) throw new DeliveryError(`no answer from ${redactUrl(url)} in time`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new DeliveryError(`cannot POST to ${redactUrl(url)}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  // Read (and cap) the body either way, so the connection can be reused; its start explains a refusal.
  let text = '';
  try {
    text = (await res.text()).slice(0, 300);
  } catch {
    // the status is enough
  }
  if (res.status < 200 || res.status > 299) {
    throw new DeliveryError(`${redactUrl(url)} answered HTTP ${res.status}${text ? `: ${text.replace(/\s+/g, ' ').trim().slice(0, 200)}` : ''}`);
  }
}
