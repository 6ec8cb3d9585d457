/**
 * `/metrics`: the store's current picture in the Prometheus text format (one-hot statuses, as the textfile output
 * writes them, under `clonebox_store_*` so they never collide with a watch's own `/metrics`), and this server's
 * process metrics.
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { escapeHelp, escapeLabelValue, formatValue } from '../../outputs/prometheus.js';
import { STATUSES, type StatusCounts } from '../../report.js';
import type { ServeContext } from '../context.js';
import { loadFleet, type FleetView } from '../queries.js';

type Labels = Record<string, string>;

function family(out: string[], name: string, help: string, samples: Iterable<[Labels, number]>): void {
  out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} gauge`);
  for (const [labels, value] of samples) {
    const body = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
      .join(',');
    out.push(`${name}${body ? `{${body}}` : ''} ${formatValue(value)}`);
  }
}

const countSamples = (c: StatusCounts) => STATUSES.map((s): [Labels, number] => [{ status: s }, c[s.toLowerCase() as Lowercase<typeof s>]]);

export function storeExposition(view: FleetView): string {
  const out: string[] = [];
  family(
    out,
    'clonebox_store_check_status',
    'State of a check in the history store (after thresholds): 1 for its state, 0 for the other three.',
    view.vms.flatMap((v) => v.checks.flatMap((c) => STATUSES.map((s): [Labels, number] => [{ vm: v.vm, check: c.check, status: s }, c.status === s ? 1 : 0]))),
  );
  family(
    out,
    'clonebox_store_check_last_result_timestamp_seconds',
    "When the check's latest result was recorded, in seconds since the epoch.",
    view.vms.flatMap((v) => v.checks.map((c): [Labels, number] => [{ vm: v.vm, check: c.check }, Math.floor(c.last_result_at / 1000)])),
  );
  family(
    out,
    'clonebox_store_vm_status',
    'Status of a VM from its checks in the history store: 1 for its status, 0 for the other three.',
    view.vms.flatMap((v) => STATUSES.map((s): [Labels, number] => [{ vm: v.vm, status: s }, v.status === s ? 1 : 0])),
  );
  family(out, 'clonebox_store_vms', 'VMs in the history store per status.', countSamples(view.counts.vms));
  family(out, 'clonebox_store_checks', 'Checks in the history store per status.', countSamples(view.counts.checks));
  return `${out.join('\n')}\n`;
}

export function registerMetrics(app: FastifyInstance, ctx: ServeContext): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  new Gauge({
    name: 'clonebox_serve_live_clients',
    help: 'Pages holding a live-update stream open.',
    registers: [registry],
    collect() {
      this.set(ctx.live.clients);
    },
  });
  app.get('/metrics', async (_req, reply) => {
    const view = await loadFleet(ctx.store, ctx.meta, {}, ctx.now());
    // prom-client writes a not-yet-sampled gauge (event-loop lag right after start) as "Nan", which parsers refuse.
    const text = storeExposition(view) + (await registry.metrics()).replace(/ Nan$/gm, ' NaN');
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });
}
