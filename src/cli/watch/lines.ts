/** Not a terminal, not --json: one line per transition, status change and action on stdout; notes on stderr. */
import type { WatchSubscriber } from '../../engine/watch/events.js';
import { eventLine, isChange, noteLine, verboseLine } from './format.js';
import type { SshCounters, WatchIO } from './io.js';

export function plainLines(io: WatchIO, o: { verbose: boolean; ssh: () => SshCounters; startedAt: number }): WatchSubscriber {
  return function plainLines(e) {
    if (e.type === 'note') {
      const line = noteLine(e, o.verbose);
      if (line) io.stderr.write(line);
      return;
    }
    if (isChange(e)) io.stdout.write(`${eventLine(e)}\n`);
    else if (o.verbose) io.stderr.write(`clonebox: ${verboseLine(e, o.ssh(), o.startedAt)}\n`);
  };
}
