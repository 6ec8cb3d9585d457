/** Small shared rules of the status page: which status is worse, how names sort, what a message may show. */
import type { HealthStatus } from '../report.js';

/** Names in code-point order: deterministic, and far cheaper than localeCompare over thousands of rows. */
export const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Worst first: a known failure outranks not knowing (as in src/engine/aggregate.ts). */
export const SEVERITY: Record<HealthStatus, number> = { HEALTHY: 0, UNKNOWN: 1, DEGRADED: 2, UNHEALTHY: 3 };

/** Messages are stored redacted; as a second line of defence, no URL userinfo is ever shown, and a page stays small. */
export function displayMessage(message: string): string {
  const clean = message.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@');
  return clean.length > 500 ? `${clean.slice(0, 499)}…` : clean;
}
