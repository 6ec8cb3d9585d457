/**
 * The status page's HTTP server (fastify): pages, JSON API, badges, /metrics and live updates, all read-only.
 *
 * Safe by default, in this order for every request: only GET and HEAD; on a loopback address only loopback Host
 * names (a web page elsewhere cannot reach it by DNS rebinding); at most `rateLimitPerMinute` requests per client
 * address; then the credentials, when `--auth` is on. Requests carry no body (1 KiB at most), headers are bounded
 * by Node (16 KiB), and responses say what may run: the page's own script and nothing else (CSP).
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { UsageError } from '../engine/fleet.js';
import type { HealthStore } from '../store/types.js';
import { authorized, type AuthConfig } from './auth.js';
import type { ServeContext } from './context.js';
import { html } from './html/escape.js';
import { CONTENT_SECURITY_POLICY } from './html/layout.js';
import { LiveHub } from './live.js';
import type { MetaLookup } from './queries.js';
import { registerApi } from './routes/api.js';
import { registerBadges } from './routes/badge.js';
import { registerEvents } from './routes/events.js';
import { registerMetrics } from './routes/metrics.js';
import { notFoundPage, registerPages } from './routes/pages.js';

const gzipAsync = promisify(gzip);

export interface ServeOptions {
  host: string;
  /** 0: any free port (the URL says which). */
  port: number;
  store: HealthStore;
  meta?: MetaLookup;
  /** Credentials every request must carry; undefined: none (loopback, or --no-auth). */
  auth?: AuthConfig;
  /** Per client address. Default 600 (a page with live updates uses about one a second at most). */
  rateLimitPerMinute?: number;
  /** How often the store is asked whether something changed. Default 1000 ms. */
  pollMs?: number;
  /** Open live-update streams at most. Default 100. */
  maxLiveClients?: number;
  /** One line per problem (a store that stops answering, a failed request). */
  log?: (msg: string) => void;
  now?: () => number;
}

export interface StatusServer {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly live: LiveHub;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** The Host header's name part, for the DNS-rebinding check. */
function hostName(header: string | undefined): string {
  if (!header) return '';
  if (header.startsWith('[')) return header.slice(0, header.indexOf(']') + 1);
  return header.replace(/:\d+$/, '');
}

const COMPRESSIBLE = /^(text\/|application\/json|image\/svg\+xml)/;

export async function buildServer(opts: ServeOptions): Promise<{ app: FastifyInstance; live: LiveHub }> {
  const log = opts.log ?? (() => undefined);
  const live = new LiveHub(() => opts.store.changeMarker(), {
    pollMs: opts.pollMs ?? 1000,
    maxClients: opts.maxLiveClients ?? 100,
    onError: (err) => log(`cannot read the history store ${opts.store.location}: ${err.message}; live updates resume when it answers`),
  });
  const ctx: ServeContext = { store: opts.store, meta: opts.meta ?? (() => undefined), source: opts.store.location, live, now: opts.now ?? Date.now };
  const app = Fastify({
    logger: false,
    bodyLimit: 1024,
    requestTimeout: 15_000,
    keepAliveTimeout: 5000,
    return503OnClosing: true,
    forceCloseConnections: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
  });
  const loopbackOnly = isLoopback(opts.host);

  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reply.code(405).header('allow', 'GET, HEAD').type('text/plain; charset=utf-8').send('read-only: only GET and HEAD\n');
    }
    if (loopbackOnly && !isLoopback(hostName(req.headers.host))) {
      return reply.code(421).type('text/plain; charset=utf-8').send('this server answers only to localhost names\n');
    }
  });
  await app.register(rateLimit, {
    max: opts.rateLimitPerMinute ?? 600,
    timeWindow: 60_000,
    cache: 10_000,
  });
  if (opts.auth) {
    const auth = opts.auth;
    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (authorized(auth, req.headers.authorization)) return;
      return reply
        .code(401)
        .header('www-authenticate', `Basic realm="clonebox health", charset="UTF-8"`)
        .type('text/plain; charset=utf-8')
        .send(auth.kind === 'bearer' ? 'authorization required: a bearer token, or basic auth with the token as password\n' : 'authorization required\n');
    });
  }
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    const type = String(reply.getHeader('content-type') ?? '');
    if (typeof payload !== 'string' || payload.length < 1024 || !COMPRESSIBLE.test(type) || reply.hasHeader('content-encoding')) return payload;
    reply.header('vary', 'accept-encoding');
    if (!/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return payload;
    reply.header('content-encoding', 'gzip');
    reply.removeHeader('content-length');
    return gzipAsync(payload, { level: 6 });
  });

  app.setNotFoundHandler((req, reply) => {
    if (req.url.startsWith('/api/')) return reply.code(404).send({ error: 'no such endpoint; see docs/api.md' });
    return notFoundPage(reply, html`Nothing at this address.`, ctx.source);
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status < 500) return reply.code(status).type('text/plain; charset=utf-8').send(`${err.message}\n`);
    log(`${req.method} ${req.url.split('?')[0]}: ${err.message}`);
    // The store is the only thing that fails here: say so, never with a stack or a connection string.
    return reply.code(503).header('retry-after', '5').type('text/plain; charset=utf-8').send('the history store did not answer; try again shortly\n');
  });

  registerPages(app, ctx);
  registerApi(app, ctx);
  registerBadges(app, ctx);
  registerMetrics(app, ctx);
  registerEvents(app, ctx);
  return { app, live };
}

export async function startServer(opts: ServeOptions): Promise<StatusServer> {
  const { app, live } = await buildServer(opts);
  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'EADDRINUSE'
        ? 'the port is in use; choose another with --listen'
        : e.code === 'EACCES'
          ? 'permission denied; choose a port above 1023'
          : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND'
            ? `this host has no address ${opts.host}`
            : e.message;
    throw new UsageError(`cannot serve on ${opts.host}:${opts.port}: ${why}`);
  }
  live.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}/`,
    app,
    live,
    close: async () => {
      live.close();
      await app.close();
    },
  };
}
