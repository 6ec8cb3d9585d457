/**
 * Where the watch keeps its thresholds: the history store (default; state shared with cron runs of `health check`,
 * every result recorded), or memory with --no-store. Not a passive subscriber: the store advances the state and
 * records the results, transitions and claimed actions in one transaction, which is what keeps two overlapping
 * runs from both firing an action (and where alerting's outbox rows go, in the same transaction).
 */
import { MemoryAlerts } from '../../alerting/memory.js';
import type { Outbox } from '../../alerting/outbox.js';
import { alertingFromConfig, type AlertingRuntime } from '../../alerting/runtime.js';
import type { CloneboxConfig } from '../../config/schema.js';
import { MemoryState, poolActionRunner, storeAdvancer, type Advancer } from '../../engine/watch/advance.js';
import { UsageError } from '../../engine/fleet.js';
import { DEFAULT_RETENTION_MS } from '../../store/types.js';
import type { SshPool } from '../../transport/ssh-pool.js';

export interface WatchState {
  advance: Advancer;
  forget?: (vm: string) => void;
  /** For --verbose: where state lives. */
  describe: string;
  /** Alerting as configured, and the outbox its notifications are queued in. */
  alerting?: { runtime: AlertingRuntime; outbox: Outbox };
  close(): Promise<void>;
}

export async function openWatchState(opts: { store?: string; noStore?: boolean }, config: CloneboxConfig, pool: SshPool): Promise<WatchState> {
  const spec = opts.noStore ? undefined : (opts.store ?? config.history?.store ?? 'default');
  const runtime = alertingFromConfig(config);
  if (spec === undefined) {
    const alerts = runtime ? new MemoryAlerts(runtime) : undefined;
    const memory = new MemoryState(poolActionRunner(pool), Date.now, undefined, alerts);
    return {
      advance: memory.advance,
      forget: (vm) => memory.forget(vm),
      describe: 'history: none (--no-store); thresholds kept in memory',
      ...(runtime && alerts ? { alerting: { runtime, outbox: alerts.outbox } } : {}),
      close: async () => undefined,
    };
  }
  const { openStore, storeOpenError } = await import('../../store/index.js');
  try {
    const store = await openStore(spec, { retentionMs: config.history?.retention ?? DEFAULT_RETENTION_MS });
    return {
      advance: storeAdvancer(store, pool, runtime),
      describe: `history: ${store.kind} at ${store.location}`,
      ...(runtime ? { alerting: { runtime, outbox: store.outbox } } : {}),
      close: () => store.close(),
    };
  } catch (err) {
    throw new UsageError(`${storeOpenError(spec, err)}; choose another with --store, or keep state in memory with --no-store`);
  }
}
