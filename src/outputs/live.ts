/**
 * The live table of `health watch` on a terminal: one row per VM and check, redrawn in place.
 *
 * No flicker: a frame is built whole and written in one `write`: cursor home, each line followed by
 * "clear to end of line", then "clear to end of screen", on the alternate screen (as top and less do), so the
 * operator's scrollback is left as it was and the final table is printed there once the watch stops.
 * Width-aware: every line fits the terminal's columns (the message column takes what is left and is cut with
 * "…"); when the rows do not fit its height, the problems are shown first and the rest summarised.
 */
import { printable } from '../util/printable.js';
import { Chalk, type ChalkInstance } from 'chalk';
import type { HealthStatus } from '../report.js';
import { paintStatus } from './colour.js';
import { oneLine } from './table.js';

export interface LiveRow {
  vm: string;
  check: string;
  /** The status reported for the latest result (thresholded; UNKNOWN when it could not be evaluated). */
  status: HealthStatus;
  /** A soft state's streak: "failing 2/3", "recovering 1/2". */
  streak?: string;
  message: string;
  /** ms since the epoch: when the reported status last changed. */
  since: number;
  critical: boolean;
}

export interface LiveFrame {
  /** First line: what is watched, round, fleet status. */
  title: string;
  /** Fleet status, to colour the title's status word. */
  status: HealthStatus;
  rows: readonly LiveRow[];
  /** Latest transitions and actions, newest last (already bounded by the caller). */
  events: readonly string[];
}

export interface LiveRenderOptions {
  columns: number;
  rows: number;
  color: boolean;
  /** ms since the epoch. */
  now: number;
}

const SEVERITY: Record<HealthStatus, number> = { UNHEALTHY: 0, DEGRADED: 1, UNKNOWN: 2, HEALTHY: 3 };

/** "12s ago", "3m ago", "5h ago", "2d ago". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** Cut plain text to `width` characters, with "…" when it was longer. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

const pad = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - text.length));

/** The lines of one frame, none wider than `columns` visible characters, at most `rows` of them. */
export function renderLiveFrame(frame: LiveFrame, opts: LiveRenderOptions): string[] {
  const c = new Chalk({ level: opts.color ? 1 : 0 });
  const columns = Math.max(20, Math.floor(opts.columns) || 80);
  const height = Math.max(4, Math.floor(opts.rows) || 24);
  const events = frame.events.slice(-Math.min(5, Math.max(0, height - 8)));
  const out: string[] = [];

  const title = fit(oneLine(frame.title), columns);
  const statusAt = title.indexOf(frame.status);
  out.push(
    statusAt >= 0
      ? c.bold(title.slice(0, statusAt)) + paintStatus(c, frame.status, c.bold(frame.status)) + c.bold(title.slice(statusAt + frame.status.length))
      : c.bold(title),
  );

  const cells = frame.rows.map((r) => ({
    row: r,
    vm: oneLine(printable(r.vm)),
    check: oneLine(r.check) + (r.critical ? '' : '*'),
    streak: r.streak ?? '',
    changed: ago(opts.now - r.since),
    message: oneLine(r.message),
  }));
  const head = { vm: 'VM', check: 'CHECK', status: 'STATUS', streak: 'STREAK', changed: 'CHANGED', message: 'MESSAGE' };
  const w = {
    vm: Math.min(24, Math.max(head.vm.length, ...cells.map((x) => x.vm.length))),
    check: Math.min(24, Math.max(head.check.length, ...cells.map((x) => x.check.length))),
    status: 9,
    streak: Math.min(16, Math.max(head.streak.length, ...cells.map((x) => x.streak.length))),
    changed: Math.max(head.changed.length, ...cells.map((x) => x.changed.length)),
  };
  const fixed = w.vm + w.check + w.status + w.streak + w.changed + 5 * 2;
  const messageWidth = Math.max(0, columns - fixed);
  // A terminal too narrow for every column: the line is cut at its right edge.
  const line = (vm: string, check: string, status: string, statusPainted: string, streak: string, changed: string, message: string): string => {
    const plain = [pad(fit(vm, w.vm), w.vm), pad(fit(check, w.check), w.check), pad(status, w.status), pad(fit(streak, w.streak), w.streak), pad(changed, w.changed)];
    let text = plain.join('  ');
    const left = columns - text.length - 2;
    if (left > 0 && message) text += `  ${fit(message, Math.min(left, messageWidth || left))}`;
    text = fit(text.trimEnd(), columns);
    // Colour the status cell only where it survived the cut.
    const at = plain[0]!.length + 2 + plain[1]!.length + 2;
    return at + status.length <= text.length ? text.slice(0, at) + statusPainted + text.slice(at + status.length) : text;
  };
  out.push(c.dim(line(head.vm, head.check, head.status, head.status, head.streak, head.changed, head.message)));

  const room = height - out.length - (events.length ? events.length + 1 : 0);
  let shown = cells;
  let hidden = 0;
  if (cells.length > room) {
    // Problems first when they cannot all be shown; keep the config order within a status.
    shown = [...cells].sort((a, b) => SEVERITY[a.row.status] - SEVERITY[b.row.status]).slice(0, Math.max(0, room - 1));
    hidden = cells.length - shown.length;
  }
  for (const x of shown) out.push(line(x.vm, x.check, x.row.status, paintStatus(c, x.row.status, x.row.status), x.streak, x.changed, x.message));
  if (hidden > 0) {
    const healthy = cells.filter((x) => !shown.includes(x) && x.row.status === 'HEALTHY').length;
    out.push(c.dim(fit(`… ${hidden} more row${hidden === 1 ? '' : 's'} (${healthy} healthy); enlarge the terminal to see them`, columns)));
  }
  if (events.length) {
    out.push('');
    for (const e of events) out.push(c.dim(fit(oneLine(e), columns)));
  }
  return out.slice(0, height);
}

const ESC = '\x1b[';

/** Draws frames in place on a terminal; `stop` restores the screen and leaves the last frame in the scrollback. */
export class LiveScreen {
  #active = false;
  #last: string[] = [];
  readonly #restore = () => this.stream.write(`${ESC}?25h${ESC}?1049l`);

  constructor(private readonly stream: { write(s: string): unknown }) {}

  start(): void {
    if (this.#active) return;
    this.#active = true;
    // Alternate screen, cursor hidden; restored even if the process exits without stop().
    this.stream.write(`${ESC}?1049h${ESC}?25l${ESC}H${ESC}2J`);
    process.once('exit', this.#restore);
  }

  draw(lines: string[]): void {
    if (!this.#active) return;
    this.#last = lines;
    this.stream.write(`${ESC}H${lines.map((l) => `${l}${ESC}K`).join('\n')}${ESC}J`);
  }

  /**
   * Back to the normal screen, where `final` (else the last frame) is printed once, so the final state stays in
   * the scrollback.
   */
  stop(final?: string[]): void {
    if (!this.#active) return;
    this.#active = false;
    process.off('exit', this.#restore);
    this.#restore();
    const lines = final ?? this.#last;
    if (lines.length) this.stream.write(`${lines.join('\n')}\n`);
  }
}
