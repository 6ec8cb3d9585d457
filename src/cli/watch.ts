/**
 * `clonebox health watch`: the library call behind the thin oclif command (docs/watch.md). It opens what the watch
 * runs on (SSH pool, libvirt, the store), builds the loop (src/engine/watch/loop.ts) and wires its subscribers: the
 * live table, plain lines or JSON lines (src/cli/watch/*.ts), and /metrics. A new subscriber is one file there and
 * one `events.subscribe(…)` here.
 */
import { loadConfig } from '../config/load.js';
import { libvirtUri } from '../config/resolve.js';
import { WatchEvents } from '../engine/watch/events.js';
import { WatchLoop } from '../engine/watch/loop.js';
import { discoveryEveryMs, keepaliveMsFor, minIntervalMs, reconnectBackoffMs } from '../engine/watch/policy.js';
import { fleetSources } from '../engine/watch/sources.js';
import { UsageError } from '../engine/fleet.js';
import { BackendCache, openBackend, type BackendChoice } from '../inventory/open.js';
import type { LibvirtBackend } from '../inventory/types.js';
import { wantColor } from '../outputs/types.js';
import type { FleetReport } from '../report.js';
import { SshPool } from '../transport/ssh-pool.js';
import type { WatchIO } from './watch/io.js';
import { jsonLines } from './watch/json.js';
import { plainLines } from './watch/lines.js';
import { liveTable, type LiveTable } from './watch/live.js';
import type { MetricsServer } from './watch/metrics-server.js';
import { openWatchState, type WatchState } from './watch/store.js';
import { watchAlerting, type WatchAlerting } from './watch/alerting.js';

export type { WatchIO } from './watch/io.js';

export interface WatchCommandOptions {
  vms: string[];
  config: string;
  all: boolean;
  probe?: string[];
  json: boolean;
  connect?: string;
  /** VMs checked at once. */
  concurrency: number;
  verbose: boolean;
  acceptNewHostKeys: boolean;
  libvirtBackend: BackendChoice;
  /** Overrides every check's `interval`. */
  intervalMs?: number;
  /** History store spec; default: the default store (`$XDG_DATA_HOME/clonebox/health.db`) or `history.store`. */
  store?: string;
  /** State in memory only: nothing recorded, nothing read. */
  noStore?: boolean;
  metricsPort?: number;
  metricsHost?: string;
  /** Stop after this many full rounds (tests, cron). */
  rounds?: number;
  /** Seed for the jitter (tests). */
  seed?: number;
  /** Live table on/off; default: stdout is a terminal and not --json. */
  live?: boolean;
}

export interface WatchResult {
  exitCode: number;
  rounds: number;
  /** What stopped it. */
  reason: 'interrupted' | 'rounds';
  report: FleetReport;
}

export async function runWatch(opts: WatchCommandOptions, io: WatchIO, signal: AbortSignal): Promise<WatchResult> {
  const config = await loadConfig(opts.config);
  if (config.hypervisors?.length && opts.connect) {
    throw new UsageError(`--connect names one libvirt, but ${opts.config} lists hypervisors:; leave out --connect, or the hypervisors: list`);
  }
  const uri = libvirtUri(config, opts.connect);
  const live = opts.live ?? (!opts.json && Boolean(io.stdout.isTTY));
  const events = new WatchEvents();
  const debug = (msg: string) => events.note(msg, 'debug');

  const minInterval = minIntervalMs(config, opts.intervalMs);
  const pool = new SshPool({ log: debug, maxBackoffMs: reconnectBackoffMs(minInterval), keepaliveMs: keepaliveMsFor(minInterval) });
  let backend: Promise<LibvirtBackend> | undefined;
  const backends = new BackendCache(opts.libvirtBackend, debug);
  const openLibvirt = (): Promise<LibvirtBackend> =>
    (backend ??= openBackend(uri, opts.libvirtBackend, debug).catch((err: unknown) => {
      backend = undefined; // try again at the next discovery
      throw err;
    }));

  let state: WatchState | undefined;
  const loop = new WatchLoop(
    fleetSources({
      config,
      selectors: opts.vms,
      all: opts.all,
      ...(opts.probe ? { probes: opts.probe } : {}),
      concurrency: opts.concurrency,
      acceptNewHostKeys: opts.acceptNewHostKeys,
      log: debug,
      backend: openLibvirt,
      backendFor: (hv) => backends.get(hv.uri),
      pool,
      advance: (vm, target, raw, s) => state!.advance(vm, target, raw, s),
      forget: (vm) => state?.forget?.(vm),
    }),
    {
      ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
      discoveryEveryMs: discoveryEveryMs(minInterval),
      concurrency: opts.concurrency,
      ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      events,
    },
  );

  // ─── subscribers ───
  const ssh = () => pool.stats();
  const out = { verbose: opts.verbose, ssh, startedAt: loop.startedAt };
  let table: LiveTable | undefined;
  if (live) {
    table = liveTable(io, loop, { verbose: opts.verbose, color: wantColor(io.stdout), ssh, ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}) });
    events.subscribe(table.subscriber);
  } else events.subscribe(opts.json ? jsonLines(io, out) : plainLines(io, out));

  let metrics: MetricsServer | undefined;
  let alerting: WatchAlerting | undefined;
  try {
    state = await openWatchState(opts, config, pool);
    debug(state.describe);
    if (state.alerting) {
      alerting = watchAlerting(events, state.alerting);
      events.subscribe(alerting.subscriber);
    }
    await loop.start();
    alerting?.start();
    if (opts.metricsPort !== undefined) {
      const { startMetricsServer } = await import('./watch/metrics-server.js');
      metrics = await startMetricsServer({
        host: opts.metricsHost ?? '127.0.0.1',
        port: opts.metricsPort,
        snapshot: () => loop.snapshot(),
        counters: () => {
          const s = pool.stats();
          return { rounds: loop.rounds, connectionsOpened: s.connectionsOpened, connectionsOpen: s.open };
        },
      });
      events.note(`metrics at ${metrics.url}`);
    }
    table?.start();
    return await loop.run(signal);
  } finally {
    table?.close();
    // Delivery stops before the store it reads closes.
    await alerting?.close();
    await Promise.allSettled([
      metrics?.close(),
      pool.close(),
      state?.close(),
      (async () => (backend ? (await backend.catch(() => undefined))?.close() : undefined))(),
      backends.close(),
    ]);
  }
}
