/** A real `health watch` child process for end-to-end tests, read line by line; every wait is bounded. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../lab/lab.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');

/** Long enough for a round on a machine with a load of 20; every wait below ends by itself. */
export const WAIT_MS = 45_000;

export interface WatchEvent {
  type: 'transition' | 'status' | 'action' | 'round' | 'vm' | 'note' | 'stop';
  vm?: string;
  check?: string;
  from?: string | null;
  to?: string;
  hard?: boolean;
  streak?: string;
  kind?: string;
  status?: string;
  round?: number;
  reason?: string;
  exit_code?: number;
  ssh_connections_opened?: number;
  message?: string;
}

/** A `health watch` child process whose stdout is read line by line (JSON lines with --json). */
export class Watch {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly events: WatchEvent[] = [];
  stderr = '';
  readonly exited: Promise<number>;
  #waiters: (() => void)[] = [];

  constructor(args: string[], options: { json?: boolean } = {}) {
    this.child = spawn('node', [BIN, 'health', 'watch', ...args, ...(options.json === false ? [] : ['--json'])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      if (options.json !== false) this.events.push(JSON.parse(line) as WatchEvent);
      this.#notify();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.#notify();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    // Never outlives the test file.
    const guard = setTimeout(() => this.child.kill('SIGKILL'), 240_000);
    guard.unref();
    void this.exited.then(() => {
      clearTimeout(guard);
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves with the first event from index `from` on that matches; fails after `timeoutMs` saying what it saw. */
  async next(what: string, match: (e: WatchEvent) => boolean, from = 0, timeoutMs = WAIT_MS): Promise<{ event: WatchEvent; index: number }> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const index = this.events.findIndex((e, i) => i >= from && match(e));
      if (index >= 0) return { event: this.events[index]!, index };
      if (exited || Date.now() > deadline) {
        throw new Error(`no ${what} within ${timeoutMs} ms${exited ? ' (the watch exited)' : ''}; events:\n${this.lines.slice(-30).join('\n')}\nstderr:\n${this.stderr.slice(-2000)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 250);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The first round line with a number ≥ n. */
  round(n: number, from = 0): Promise<{ event: WatchEvent; index: number }> {
    return this.next(`round ${n}`, (e) => e.type === 'round' && (e.round ?? 0) >= n, from);
  }

  /** Waits until stderr matches. */
  async stderrMatch(re: RegExp, timeoutMs = WAIT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stderr.match(re);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`stderr never matched ${re} within ${timeoutMs} ms:\n${this.stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Ctrl-C; resolves with the exit code and how long the watch took to stop. */
  async interrupt(): Promise<{ code: number; ms: number }> {
    const t0 = Date.now();
    this.child.kill('SIGINT');
    const code = await Promise.race([this.exited, new Promise<number>((r) => setTimeout(() => r(-1), 20_000))]);
    return { code, ms: Date.now() - t0 };
  }
}

const watches: Watch[] = [];
export function watch(args: string[], options: { json?: boolean } = {}): Watch {
  const w = new Watch(args, options);
  watches.push(w);
  return w;
}


/** Kills every watch this file started that is still running (call from afterEach). */
export function killWatches(): void {
  for (const w of watches.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
}
