/**
 * Real receivers for the alerting tests, each its own process on 127.0.0.1: an HTTP receiver and an SMTP server
 * (test/support/receiver.mjs), and Debian's Alertmanager (test/lab/alertmanager.sh). What arrived is read back from
 * the receiver's log (HTTP, SMTP) or Alertmanager's own API. A receiver can be stopped and started again on the
 * same port, to play "down for a while".
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../lab/lab.js';

const SCRIPT = path.join(REPO_ROOT, 'test', 'support', 'receiver.mjs');

export interface Received {
  ts: number;
  kind: 'http' | 'smtp';
  // http
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: unknown;
  status?: number;
  // smtp
  from?: string;
  to?: string[];
  user?: string | null;
  secure?: boolean;
  subject?: string;
  messageId?: string;
  text?: string;
}

export interface Receiver {
  port: number;
  url: string;
  /** Everything received so far, oldest first, across restarts. */
  received(): Received[];
  /** Stop the process (connections to the port are then refused). */
  stop(): Promise<void>;
  /** Start it again on the same port. */
  start(): Promise<void>;
  /** Stop it and remove its files. */
  close(): Promise<void>;
}

export interface ReceiverOptions {
  /** http only: answer after this long. */
  delayMs?: number;
  /** http only: the status to answer with. */
  status?: number;
  /** smtp only: require AUTH with these. */
  user?: string;
  pass?: string;
}

export async function startReceiver(kind: 'http' | 'smtp', opts: ReceiverOptions = {}): Promise<Receiver> {
  const dir = mkdtempSync(path.join(tmpdir(), `clonebox-${kind}-receiver-`));
  const log = path.join(dir, 'received.jsonl');
  let child: ChildProcess | undefined;
  let port = 0;

  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const args = [SCRIPT, kind, '--port', String(port), '--log', log];
      if (opts.delayMs) args.push('--delay-ms', String(opts.delayMs));
      if (opts.status) args.push('--status', String(opts.status));
      if (opts.user) args.push('--user', opts.user, '--pass', opts.pass ?? '');
      const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const got = await new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 20_000);
        createInterface({ input: c.stdout! }).once('line', (line) => {
          clearTimeout(timer);
          resolve(Number(/^listening (\d+)/.exec(line)?.[1]) || undefined);
        });
        c.once('exit', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
      if (got) {
        port = got;
        child = c;
        return;
      }
      c.kill('SIGKILL');
      // The same port may be in TIME_WAIT or briefly taken; try again a few times.
      if (attempt >= 5) throw new Error(`the ${kind} receiver did not start on port ${port}: ${stderr.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    port,
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    received: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Received)
        : [],
    stop,
    start: launch,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  } as Receiver;
}

const run = promisify(execFile);
const AM_SCRIPT = path.join(REPO_ROOT, 'test', 'lab', 'alertmanager.sh');

export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  status: { state: string };
}

export interface Alertmanager {
  url: string;
  /** Alertmanager's own view: the alerts it holds as active (resolved ones are not listed). */
  alerts(): Promise<AmAlert[]>;
  close(): Promise<void>;
}

/** Whether the Debian package is installed (the tests say so and skip when not). */
export function alertmanagerInstalled(): boolean {
  return existsSync('/usr/bin/prometheus-alertmanager');
}

/** A fresh Alertmanager of our own (its own dir, so no alert of an earlier test is there). */
export async function startAlertmanager(webhookUrl = ''): Promise<Alertmanager> {
  const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-am-'));
  const { stdout } = await run('bash', [AM_SCRIPT, 'up', dir, webhookUrl], { timeout: 60_000 });
  const url = stdout.trim().split('\n').pop()!;
  return {
    url,
    alerts: async () => {
      const res = await fetch(`${url}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true`);
      return (await res.json()) as AmAlert[];
    },
    close: async () => {
      await run('bash', [AM_SCRIPT, 'down', dir], { timeout: 30_000 }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
