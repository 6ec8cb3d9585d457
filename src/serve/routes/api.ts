/** The JSON API: `/api/v1/fleet`, `/api/v1/vms/:vm`, `/api/v1/vms/:vm/checks/:check/history` (docs/api.md). */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { parseDuration } from '../../config/duration.js';
import { serverTiming, type ServeContext } from '../context.js';
import { fleetJson, historyJson, vmDetailJson } from '../json.js';
import { HISTORY_LIMIT_MAX, loadFleet, loadHistory, loadVmSummary, parseFilter } from '../queries.js';
import { toBars, uptimeOf, WINDOWS, type Uptime } from '../uptime.js';

const DAY = 86_400_000;

function jsonError(reply: FastifyReply, status: number, error: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error });
}

/** A time from a query: a duration back from now (`24h`, `90m`, `7d`) or an ISO-8601 time. */
export function parseTime(value: string, now: number): number | undefined {
  const d = /^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value) ? parseDuration(value) : undefined;
  if (d !== undefined) return now - d;
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

export function registerApi(app: FastifyInstance, ctx: ServeContext): void {
  app.get<{ Querystring: Record<string, unknown> }>('/api/v1/fleet', async (req, reply) => {
    const t0 = performance.now();
    const view = await loadFleet(ctx.store, ctx.meta, parseFilter(req.query), ctx.now());
    return reply.header('server-timing', serverTiming(t0)).send(fleetJson(view));
  });

  app.get<{ Params: { vm: string } }>('/api/v1/vms/:vm', async (req, reply) => {
    const t0 = performance.now();
    const now = ctx.now();
    const summary = await loadVmSummary(ctx.store, ctx.meta, req.params.vm, now);
    if (!summary) return jsonError(reply, 404, `no VM named "${req.params.vm}" has results in this store`);
    const uptimes = new Map<string, Record<'24h' | '7d' | '30d', Uptime>>();
    for (const c of summary.checks) {
      const u = {} as Record<'24h' | '7d' | '30d', Uptime>;
      for (const w of WINDOWS) {
        // The window exactly, as one bucket: [now - window, now].
        const span = w.bucketMs * w.count;
        const rows = await ctx.store.resultBuckets({ vm: c.vm, check: c.check, sinceMs: now - span, untilMs: now + 1, bucketMs: span + 1 });
        u[w.key] = uptimeOf(toBars(rows, now - span, span + 1, 1));
      }
      uptimes.set(c.check, u);
    }
    return reply.header('server-timing', serverTiming(t0)).send(vmDetailJson(now, summary, uptimes));
  });

  app.get<{ Params: { vm: string; check: string }; Querystring: Record<string, unknown> }>('/api/v1/vms/:vm/checks/:check/history', async (req, reply) => {
    const t0 = performance.now();
    const now = ctx.now();
    const q = req.query;
    const since = typeof q.since === 'string' && q.since !== '' ? parseTime(q.since, now) : now - DAY;
    if (since === undefined) return jsonError(reply, 400, 'since must be a duration back from now (24h, 90m, 7d) or an ISO-8601 time');
    const until = typeof q.until === 'string' && q.until !== '' ? parseTime(q.until, now) : now + 1;
    if (until === undefined) return jsonError(reply, 400, 'until must be a duration back from now (1h) or an ISO-8601 time');
    const limitText = typeof q.limit === 'string' ? q.limit : '1000';
    const limit = /^\d+$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= HISTORY_LIMIT_MAX)) return jsonError(reply, 400, `limit must be a whole number from 1 to ${HISTORY_LIMIT_MAX}`);
    const { vm, check } = req.params;
    const summary = await loadVmSummary(ctx.store, ctx.meta, vm, now);
    if (!summary?.checks.some((c) => c.check === check)) return jsonError(reply, 404, `no check "${check}" of VM "${vm}" has results in this store`);
    const page = await loadHistory(ctx.store, vm, check, since, until, limit);
    return reply.header('server-timing', serverTiming(t0)).send(historyJson(vm, check, since, until, page));
  });
}
