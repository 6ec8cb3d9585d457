/** The HTML pages: `/` (fleet), `/vms/:vm`, `/vms/:vm/checks/:check`. `?fragment=1` returns only the live part. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { serverTiming, type ServeContext } from '../context.js';
import { checkContent, checkHead } from '../html/check.js';
import { html, type Html } from '../html/escape.js';
import { fleetContent, fleetHead } from '../html/fleet.js';
import { FAVICON_SVG, page } from '../html/layout.js';
import { vmContent, vmHead } from '../html/vm.js';
import { loadCheck, loadFleet, loadVm, parseFilter } from '../queries.js';

type Query = Record<string, unknown>;

function send(reply: FastifyReply, t0: number, query: Query, title: string, head: Html, content: Html, source: string, status = 200): FastifyReply {
  const body = query.fragment === '1' ? content.value : page({ title, head, content, source }).value;
  return reply.code(status).header('server-timing', serverTiming(t0)).type('text/html; charset=utf-8').send(body);
}

export function notFoundPage(reply: FastifyReply, what: Html, source: string): FastifyReply {
  return send(reply, performance.now(), {}, 'Not found', html``, html`<h1>Not found</h1><p>${what}</p><p><a href="/">Back to the fleet</a></p>`, source, 404);
}

export function registerPages(app: FastifyInstance, ctx: ServeContext): void {
  const icon = (_req: unknown, reply: FastifyReply) => reply.header('cache-control', 'max-age=86400').type('image/svg+xml').send(FAVICON_SVG);
  app.get('/favicon.svg', icon);
  app.get('/favicon.ico', icon);

  app.get<{ Querystring: Query }>('/', async (req, reply) => {
    const t0 = performance.now();
    const view = await loadFleet(ctx.store, ctx.meta, parseFilter(req.query), ctx.now());
    return send(reply, t0, req.query, 'Fleet', fleetHead(view), fleetContent(view, ctx.source), ctx.source);
  });

  app.get<{ Params: { vm: string }; Querystring: Query }>('/vms/:vm', async (req, reply) => {
    const t0 = performance.now();
    const view = await loadVm(ctx.store, ctx.meta, req.params.vm, ctx.now());
    if (!view) return notFoundPage(reply, html`No VM named “${req.params.vm}” has results in this store.`, ctx.source);
    return send(reply, t0, req.query, req.params.vm, vmHead(req.params.vm), vmContent(view), ctx.source);
  });

  app.get<{ Params: { vm: string; check: string }; Querystring: Query }>('/vms/:vm/checks/:check', async (req, reply) => {
    const t0 = performance.now();
    const { vm, check } = req.params;
    const view = await loadCheck(ctx.store, ctx.meta, vm, check, ctx.now());
    if (!view) return notFoundPage(reply, html`No check “${check}” of VM “${vm}” has results in this store.`, ctx.source);
    return send(reply, t0, req.query, `${vm} / ${check}`, checkHead(vm, check), checkContent(view), ctx.source);
  });
}
