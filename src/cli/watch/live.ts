/**
 * On a terminal: the live table (src/outputs/live.ts) redrawn in place, at most 20 times a second on changes and
 * once a second regardless (so "3m ago" stays true), with the latest events and notes under it. On `stop` the
 * final table is left on the normal screen.
 */
import { formatDuration } from '../../config/duration.js';
import type { WatchSubscriber } from '../../engine/watch/events.js';
import type { WatchLoop } from '../../engine/watch/loop.js';
import { LiveScreen, renderLiveFrame, type LiveRow } from '../../outputs/live.js';
import { eventLine, isChange, verboseLine } from './format.js';
import type { SshCounters, WatchIO } from './io.js';

export interface LiveTable {
  subscriber: WatchSubscriber;
  /** Take over the terminal (after the first discovery, so start-up errors print normally). */
  start(): void;
  /** Give the terminal back, leaving the final table; safe to call twice. */
  close(): void;
}

/** The footer keeps this many lines. */
const RECENT = 8;

export function liveTable(io: WatchIO, loop: WatchLoop, o: { verbose: boolean; color: boolean; intervalMs?: number; ssh: () => SshCounters }): LiveTable {
  const recent: string[] = [];
  const note = (line: string) => {
    recent.push(line);
    if (recent.length > RECENT) recent.shift();
  };
  let screen: LiveScreen | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let redrawTimer: NodeJS.Timeout | undefined;
  let onResize: (() => void) | undefined;

  const frame = (height: number): string[] => {
    const report = loop.snapshot();
    const rows: LiveRow[] = [];
    for (const vm of [...loop.watched.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      for (const c of vm.resolved.checks) {
        const v = vm.checks.get(c.name);
        rows.push(
          v
            ? { vm: vm.name, check: c.name, status: v.result.status, ...(v.streak ? { streak: v.streak } : {}), message: v.result.message, since: v.since, critical: c.critical }
            : { vm: vm.name, check: c.name, status: 'UNKNOWN', message: 'waiting for the first result', since: loop.startedAt, critical: c.critical },
        );
      }
    }
    const n = loop.watched.size;
    const every = o.intervalMs !== undefined ? `every ${formatDuration(o.intervalMs)}` : 'per-check intervals';
    const time = new Date().toTimeString().slice(0, 8);
    const title = `clonebox health watch · ${n} VM${n === 1 ? '' : 's'}, ${rows.length} checks, ${every} · round ${loop.rounds} · fleet ${report.summary.overall_status} · ${time} · Ctrl-C stops`;
    return renderLiveFrame(
      { title, status: report.summary.overall_status, rows, events: recent },
      { columns: io.stdout.columns ?? 80, rows: height, color: o.color, now: Date.now() },
    );
  };
  const redraw = () => screen?.draw(frame(io.stdout.rows ?? 24));
  const scheduleRedraw = () => {
    if (!screen || redrawTimer) return;
    redrawTimer = setTimeout(() => {
      redrawTimer = undefined;
      redraw();
    }, 50);
  };

  const close = () => {
    if (ticker) clearInterval(ticker);
    if (redrawTimer) clearTimeout(redrawTimer);
    if (onResize) io.stdout.off?.('resize', onResize);
    ticker = redrawTimer = onResize = undefined;
    // The final table goes to the normal screen whole, whatever the terminal's height.
    screen?.stop(frame(1_000_000));
    screen = undefined;
  };

  return {
    subscriber: function liveTable(e) {
      if (e.type === 'note') {
        if (e.level === 'info' || o.verbose) note(e.message);
        return;
      }
      if (e.type === 'stop') return close();
      if (isChange(e)) note(eventLine(e));
      else if (o.verbose) note(verboseLine(e, o.ssh(), loop.startedAt));
      scheduleRedraw();
    },
    start() {
      screen = new LiveScreen(io.stdout);
      screen.start();
      ticker = setInterval(redraw, 1000);
      onResize = () => redraw();
      io.stdout.on?.('resize', onResize);
      redraw();
    },
    close,
  };
}
