/**
 * `health check`'s progress on a terminal: one line on stderr, redrawn in place, owned by one writer.
 *
 *   clonebox: 37/120 VMs checked · slowest still running: db-7 (4.2s)
 *
 * Shown only when stderr is an interactive terminal (a TTY, TERM is not `dumb`, not under CI) and only once a
 * round has run for `delayMs`: a quick check, a pipe, a CI log or cron see nothing of it. Every other stderr
 * write goes through `stderr` here, which erases the line first and draws it again after, so a log line never
 * lands in the middle of it; `close()` erases it before the report is printed. stdout is never touched.
 * `--wait` hands its own line to `hold()`: a slow round's progress takes the line while it runs, the wait's
 * line is shown otherwise.
 */
import { printable } from '../util/printable.js';
import type { FleetProgress } from '../engine/fleet.js';

/** The clock and timer the line runs on (a fake one in tests). */
export interface ProgressClock {
  /** ms, monotonic. */
  now(): number;
  /** Call `fn` every `ms` until the returned function is called; must not keep the process alive. */
  every(ms: number, fn: () => void): () => void;
}

export const systemClock: ProgressClock = {
  now: () => performance.now(),
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  /** The terminal's width (Node's tty.WriteStream has it). */
  columns?: number;
}

/**
 * May a line be redrawn in place here? A TTY whose TERM can move the cursor, outside CI (a CI runner that
 * allocates a TTY still keeps a log, where every redraw would be a line of its own).
 */
export function interactive(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI !== undefined && !['', '0', 'false'].includes(env.CI.toLowerCase());
  return Boolean(stream.isTTY) && env.TERM !== 'dumb' && !ci;
}

/** What a round has done so far. `running`: VM → when its checks started (ms on the progress clock). */
export interface RoundState {
  startedAt: number;
  /** Unknown until discovery has found the VMs. */
  total?: number;
  done: number;
  running: Map<string, number>;
}

/** "4.2s", "1m05s". */
export function elapsed(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const whole = Math.floor(s);
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
}

/** The progress line's text (without the line control), e.g. `clonebox: 3/6 VMs checked · slowest still running: db-1 (2.1s)`. */
export function describeRound(round: RoundState, now: number): string {
  if (round.total === undefined) return `clonebox: finding VMs (${elapsed(now - round.startedAt)})`;
  let slowest: [string, number] | undefined;
  for (const entry of round.running) if (!slowest || entry[1] < slowest[1]) slowest = entry;
  const head = `clonebox: ${round.done}/${round.total} VMs checked`;
  return slowest ? `${head} · slowest still running: ${printable(slowest[0])} (${elapsed(now - slowest[1])})` : head;
}

/** Cut to fit one terminal row: a line that wraps could no longer be erased with one "\r". */
function fitRow(text: string, columns: number | undefined): string {
  const width = (columns && columns > 0 ? columns : 80) - 1;
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

const ERASE = '\r\x1b[2K';

export interface StatusLineOptions {
  /** Draw at all (see `interactive`); when false every method but `stderr.write` does nothing. */
  live: boolean;
  clock?: ProgressClock;
  /** A round's progress appears only after it has run this long. */
  delayMs?: number;
  /** Redraws at most this often. */
  intervalMs?: number;
}

/** The one owner of stderr's last line during `health check`. */
export class StatusLine {
  readonly live: boolean;
  /** Write here instead of the raw stream: the line is erased first and redrawn after. */
  readonly stderr: ProgressStream;
  private readonly out: ProgressStream;
  private readonly clock: ProgressClock;
  private readonly delayMs: number;
  private readonly intervalMs: number;
  private round: RoundState | undefined;
  private held: string | undefined;
  /** The text on the terminal now (undefined: the line is empty). */
  private drawn: string | undefined;
  private stopTicking: (() => void) | undefined;

  constructor(out: ProgressStream, opts: StatusLineOptions) {
    this.out = out;
    this.live = opts.live;
    this.clock = opts.clock ?? systemClock;
    this.delayMs = opts.delayMs ?? 1000;
    this.intervalMs = opts.intervalMs ?? 250;
    this.stderr = { write: (s: string) => this.passThrough(s), isTTY: out.isTTY ?? false };
  }

  /** A round starts: its progress shows once it has run `delayMs`. */
  beginRound(): void {
    if (!this.live) return;
    this.round = { startedAt: this.clock.now(), done: 0, running: new Map() };
    this.stopTicking ??= this.clock.every(this.intervalMs, () => this.draw());
  }

  /** The engine's events for the current round (see `FleetProgress`). */
  readonly onProgress = (e: FleetProgress): void => {
    const r = this.round;
    if (!r) return;
    if (e.kind === 'targets') r.total = e.total;
    else if (e.kind === 'vm-started') r.running.set(e.vm, this.clock.now());
    else if (r.running.delete(e.vm)) r.done++;
  };

  /** The round is over: its progress leaves the line (a held line comes back). */
  endRound(): void {
    if (!this.live) return;
    this.round = undefined;
    this.stopTicking?.();
    this.stopTicking = undefined;
    this.draw();
  }

  /** A standing line of the caller's own (`--wait`'s), shown whenever no round progress is; undefined clears it. */
  hold(text: string | undefined): void {
    if (!this.live) return;
    this.held = text === undefined ? undefined : printable(text);
    this.draw();
  }

  /** Erase the line and stop: after this the stream is the caller's alone. */
  close(): void {
    this.round = undefined;
    this.held = undefined;
    this.stopTicking?.();
    this.stopTicking = undefined;
    if (this.drawn !== undefined) this.out.write(ERASE);
    this.drawn = undefined;
  }

  private text(): string | undefined {
    const now = this.clock.now();
    const r = this.round;
    const text = r && now - r.startedAt >= this.delayMs ? describeRound(r, now) : this.held;
    return text === undefined ? undefined : fitRow(text, this.out.columns);
  }

  private draw(): void {
    const text = this.text();
    if (text === this.drawn) return;
    this.out.write(ERASE + (text ?? ''));
    this.drawn = text;
  }

  private passThrough(s: string): void {
    if (this.drawn === undefined) {
      this.out.write(s);
      return;
    }
    // One write: erase, the caller's text, the line again (only after a whole line, never mid-line).
    const again = s.endsWith('\n') ? this.text() : undefined;
    this.out.write(ERASE + s + (again ?? ''));
    this.drawn = again;
  }
}
