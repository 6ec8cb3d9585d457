/** The watch's timing rules: how often to ask libvirt again, how long to back off a dead VM, keepalives. */
import type { CloneboxConfig } from '../../config/schema.js';

/** How long a finished result waits for the other checks of its VM, so they make one store transaction. */
export const COALESCE_MS = 20;

/** After a transport error, discovery runs again this soon (or at its usual time, if sooner). */
export const URGENT_DISCOVERY_MS = 2000;

/** The longest pause before redialling a VM whose SSH failed: a few intervals, between 2 s and 30 s. */
export function reconnectBackoffMs(minIntervalMs: number): number {
  return Math.max(2000, Math.min(30_000, minIntervalMs * 4));
}

/**
 * SSH keepalive under watch: past the shortest interval (+50 %, jitter included), so a connection the rounds keep
 * busy is never probed, and at least 15 s. ssh2 counts only replies to channel requests as activity; the resident
 * session's answers restart the countdown too (vm-connection.ts `heardFrom`). With the default 15 s, a 30 s watch
 * sent two probes per connection per round, about as many packets as the round's own work.
 */
export function keepaliveMsFor(minIntervalMs: number): number {
  return Math.max(15_000, Math.round(minIntervalMs * 1.5));
}

/** How often the list of VMs and their addresses is asked of libvirt again: min(interval, 30 s), at least 1 s. */
export function discoveryEveryMs(minIntervalMs: number): number {
  return Math.max(1000, Math.min(30_000, minIntervalMs));
}

/** The shortest interval a watch runs at: `--interval`, else the shortest configured check interval (default 30 s). */
export function minIntervalMs(config: CloneboxConfig, intervalMs?: number): number {
  if (intervalMs !== undefined) return intervalMs;
  const intervals = [...config.health_checks, ...Object.values(config.vms).flatMap((v) => v.health_checks)].map((c) => c.interval);
  return intervals.length ? Math.min(...intervals) : 30_000;
}
