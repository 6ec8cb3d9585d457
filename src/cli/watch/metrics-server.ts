/**
 * `health watch --metrics-port N`: serves the watch's current picture at `/metrics` (prom-client), bound to
 * 127.0.0.1 unless told otherwise. The gauges carry the names, help and labels of the textfile output
 * (src/outputs/prometheus.ts), so dashboards and alerts work with either; they are computed when scraped, from
 * the latest state, and reset each time, so a VM that leaves the fleet leaves the exposition too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { UsageError } from '../../engine/fleet.js';
import { prometheusFamilies } from '../../outputs/prometheus.js';
import type { FleetReport } from '../../report.js';

/** Label names of each family of the textfile output; prom-client wants them up front. */
const LABELS: Record<string, readonly string[]> = {
  clonebox_check_status: ['vm', 'check', 'type', 'status'],
  clonebox_check_up: ['vm', 'check', 'type'],
  clonebox_check_duration_seconds: ['vm', 'check', 'type'],
  clonebox_disk_used_percent: ['vm', 'check', 'path'],
  clonebox_memory_used_percent: ['vm', 'check'],
  clonebox_vm_status: ['vm', 'status'],
  clonebox_vm_up: ['vm'],
  clonebox_fleet_vms: ['status'],
  clonebox_fleet_checks: ['status'],
  clonebox_last_run_timestamp_seconds: [],
  clonebox_run_duration_seconds: [],
};

export interface WatchCounters {
  rounds: number;
  connectionsOpened: number;
  connectionsOpen: number;
}

export interface MetricsServerOptions {
  host: string;
  /** 0: any free port (the URL says which). */
  port: number;
  /** The fleet as the watch knows it now; undefined before the first results. */
  snapshot: () => FleetReport | undefined;
  counters: () => WatchCounters;
  /** prom-client's process_* and nodejs_* metrics. Default true. */
  processMetrics?: boolean;
}

export interface MetricsServer {
  readonly url: string;
  readonly registry: Registry;
  close(): Promise<void>;
}

/** The registry behind `/metrics`: what a scrape returns (exported for tests). */
export function watchRegistry(opts: Pick<MetricsServerOptions, 'snapshot' | 'counters' | 'processMetrics'>): { registry: Registry; refresh: () => void } {
  const registry = new Registry();
  if (opts.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // prom-client 15 also exports these three gauges under counter-style `_total` names, which promtool's linter
    // rejects; the same numbers stay available without the suffix (nodejs_active_handles, …).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  }
  const gauges = new Map<string, Gauge>();
  const gauge = (name: string, help: string, labelNames: readonly string[]): Gauge => {
    let g = gauges.get(name);
    if (!g) {
      g = new Gauge({ name, help, labelNames: [...labelNames], registers: [registry] });
      gauges.set(name, g);
    }
    return g;
  };
  const counters = { value: (): WatchCounters => opts.counters() };
  new Counter({
    name: 'clonebox_watch_rounds_total',
    help: 'Full rounds completed by this watch (every check ran once more).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.value().rounds);
    },
  });
  new Counter({
    name: 'clonebox_ssh_connections_opened_total',
    help: 'SSH handshakes completed by this watch; flat while VMs stay up (connections are reused).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.value().connectionsOpened);
    },
  });
  new Gauge({
    name: 'clonebox_ssh_connections_open',
    help: 'SSH connections up right now.',
    registers: [registry],
    collect() {
      this.set(counters.value().connectionsOpen);
    },
  });

  const refresh = (): void => {
    const report = opts.snapshot();
    for (const g of gauges.values()) g.reset();
    if (!report) return;
    for (const f of prometheusFamilies(report)) {
      if (f.samples.length === 0 && !gauges.has(f.name)) continue;
      const g = gauge(f.name, f.help, LABELS[f.name] ?? Object.keys(f.samples[0]?.labels ?? {}));
      for (const s of f.samples) {
        if (Object.keys(s.labels).length) g.set(s.labels, s.value);
        else g.set(s.value);
      }
    }
  };
  return { registry, refresh };
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'the port is in use; choose another --metrics-port'
          : err.code === 'EACCES'
            ? 'permission denied; choose a port above 1023'
            : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND'
              ? `this host has no address ${host}; check --metrics-host`
              : err.message;
      reject(new UsageError(`cannot serve metrics on ${host}:${port}: ${why}`));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const { registry, refresh } = watchRegistry(opts);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    refresh();
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`cannot collect metrics: ${(err as Error).message}\n`);
      },
    );
  });
  // Scrapers keep connections alive; a stuck one must not hold the watch open at exit.
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  const address = await listen(server, opts.host, opts.port);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/metrics`,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
