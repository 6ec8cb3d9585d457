/** `/badge/{vm}.svg` and `/badge/{vm}/{check}.svg`: status and 24-hour uptime, for READMEs and wikis. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { statusBadge } from '../badge.js';
import { serverTiming, type ServeContext } from '../context.js';
import { loadBadge } from '../queries.js';

async function badge(ctx: ServeContext, reply: FastifyReply, vm: string, file: string, check: boolean): Promise<FastifyReply> {
  const t0 = performance.now();
  if (!file.endsWith('.svg')) return reply.code(404).type('text/plain; charset=utf-8').send('badges end in .svg\n');
  const name = file.slice(0, -4);
  const b = await loadBadge(ctx.store, ctx.meta, check ? vm : name, check ? name : undefined, ctx.now());
  return reply
    .code(b ? 200 : 404)
    .header('server-timing', serverTiming(t0))
    // Image proxies (e.g. GitHub's) must not keep an old status for long.
    .header('cache-control', 'no-cache, max-age=0')
    .type('image/svg+xml; charset=utf-8')
    .send(statusBadge(check ? `${vm}/${name}` : name, b?.status, b?.uptime.ratio ?? null));
}

export function registerBadges(app: FastifyInstance, ctx: ServeContext): void {
  app.get<{ Params: { file: string } }>('/badge/:file', (req, reply) => badge(ctx, reply, '', req.params.file, false));
  app.get<{ Params: { vm: string; file: string } }>('/badge/:vm/:file', (req, reply) => badge(ctx, reply, req.params.vm, req.params.file, true));
}
