/** `/events`: a server-sent event `change` whenever the store records something (src/serve/live.ts). */
import type { FastifyInstance } from 'fastify';
import type { ServeContext } from '../context.js';

export function registerEvents(app: FastifyInstance, ctx: ServeContext): void {
  app.get('/events', (req, reply) => {
    if (req.method === 'HEAD') return reply.type('text/event-stream; charset=utf-8').send();
    // The stream is written by the hub, outside fastify's reply cycle.
    reply.hijack();
    if (!ctx.live.add(reply.raw)) {
      reply.raw.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '30' }).end('too many live pages open; try again later\n');
    }
  });
}
