/**
 * Which providers a notification goes to. Routes are tried in order; the first that matches decides (and
 * `continue: true` lets the next ones add theirs). A notification no route matches goes to every provider, so a
 * config without routes sends everything everywhere, and a last route without `match` is "the rest".
 */
import type { AlertRoute } from '../config/schema.js';
import { globToRegExp, isGlob } from '../inventory/discover.js';
import type { AlertNotification } from './types.js';

function anyMatch(patterns: readonly string[], value: string | undefined): boolean {
  if (value === undefined) return false;
  return patterns.some((p) => (isGlob(p) ? globToRegExp(p).test(value) : p === value));
}

export function routeMatches(route: AlertRoute, n: Pick<AlertNotification, 'vm' | 'check' | 'tags'>): boolean {
  const m = route.match;
  if (m.vm && !anyMatch(m.vm, n.vm)) return false;
  if (m.check && !anyMatch(m.check, n.check)) return false;
  if (m.tags && !m.tags.some((t) => n.tags.includes(t))) return false;
  return true;
}

/** Provider names for this notification, each once, in the order routes name them. */
export function routeNotification(n: Pick<AlertNotification, 'vm' | 'check' | 'tags'>, routes: readonly AlertRoute[], providers: readonly string[]): string[] {
  const out = new Set<string>();
  let matched = false;
  for (const r of routes) {
    if (!routeMatches(r, n)) continue;
    matched = true;
    for (const p of r.providers) out.add(p);
    if (!r.continue) break;
  }
  return matched ? [...out] : [...providers];
}
