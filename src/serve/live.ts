/**
 * Live updates: one timer polls the store's change marker (one indexed query) and tells every open page, over
 * server-sent events, that something was recorded; pages then fetch their own fragment. Works the same whether the
 * writer is this process (`health watch --serve`) or a watch on another host writing to the same PostgreSQL.
 *
 * Memory stays flat however long pages stay open: clients are a bounded set, a client that does not keep up is
 * dropped (never buffered), and every stream ends after `maxAgeMs` (the browser reconnects by itself).
 */
import type { ServerResponse } from 'node:http';

export interface LiveOptions {
  /** How often the marker is read. Default 1000 ms. */
  pollMs?: number;
  /** Open streams at most; more get 503. Default 100. */
  maxClients?: number;
  /** A comment line keeps proxies from closing an idle stream. Default 25 s. */
  heartbeatMs?: number;
  /** A stream is closed after this long; EventSource reconnects. Default 1 h. */
  maxAgeMs?: number;
  onError?: (err: Error) => void;
}

interface Client {
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

export class LiveHub {
  readonly #clients = new Set<Client>();
  readonly #read: () => Promise<string>;
  readonly #opts: Required<Omit<LiveOptions, 'onError'>> & Pick<LiveOptions, 'onError'>;
  #marker: string | undefined;
  #poll: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #reading = false;
  #failed = false;

  constructor(read: () => Promise<string>, opts: LiveOptions = {}) {
    this.#read = read;
    this.#opts = { pollMs: opts.pollMs ?? 1000, maxClients: opts.maxClients ?? 100, heartbeatMs: opts.heartbeatMs ?? 25_000, maxAgeMs: opts.maxAgeMs ?? 3_600_000, onError: opts.onError };
  }

  get clients(): number {
    return this.#clients.size;
  }

  start(): void {
    this.#poll = setInterval(() => void this.check(), this.#opts.pollMs);
    this.#heartbeat = setInterval(() => this.#send(': keepalive\n\n'), this.#opts.heartbeatMs);
    this.#poll.unref();
    this.#heartbeat.unref();
    void this.check();
  }

  /** Read the marker once; tell the clients when it moved. */
  async check(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      const m = await this.#read();
      if (this.#failed) this.#failed = false;
      if (this.#marker !== undefined && m !== this.#marker) this.#send(`event: change\ndata: ${JSON.stringify(m)}\n\n`);
      this.#marker = m;
    } catch (err) {
      // Said once per outage, not once a second.
      if (!this.#failed) this.#opts.onError?.(err as Error);
      this.#failed = true;
    } finally {
      this.#reading = false;
    }
  }

  /** Take over a response as an event stream; false (and nothing written) when full. */
  add(res: ServerResponse): boolean {
    if (this.#clients.size >= this.#opts.maxClients) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    res.write('retry: 3000\n\n');
    const client: Client = { res, timer: setTimeout(() => this.#drop(client), this.#opts.maxAgeMs) };
    client.timer.unref();
    this.#clients.add(client);
    res.on('close', () => this.#drop(client));
    return true;
  }

  #drop(c: Client): void {
    if (!this.#clients.delete(c)) return;
    clearTimeout(c.timer);
    if (!c.res.writableEnded) c.res.end();
  }

  #send(text: string): void {
    for (const c of this.#clients) {
      // A client whose socket buffer is full is too slow: drop it rather than buffer for it.
      if (c.res.writableNeedDrain || !c.res.write(text)) this.#drop(c);
    }
  }

  close(): void {
    clearInterval(this.#poll);
    clearInterval(this.#heartbeat);
    for (const c of [...this.#clients]) this.#drop(c);
  }
}
