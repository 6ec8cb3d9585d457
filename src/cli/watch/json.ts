/** --json: one object per line on stdout, `type` first (docs/watch.md); notes stay on stderr. */
import type { WatchSubscriber } from '../../engine/watch/events.js';
import { noteLine, verboseLine } from './format.js';
import type { SshCounters, WatchIO } from './io.js';

export function jsonLines(io: WatchIO, o: { verbose: boolean; ssh: () => SshCounters; startedAt: number }): WatchSubscriber {
  return function jsonLines(e) {
    switch (e.type) {
      case 'note': {
        const line = noteLine(e, o.verbose);
        if (line) io.stderr.write(line);
        return;
      }
      case 'vm':
        // Not (yet) a line type of its own: the checks' status lines already say it, once per check.
        if (o.verbose) io.stderr.write(`clonebox: ${verboseLine(e, o.ssh(), o.startedAt)}\n`);
        return;
      case 'round': {
        const ssh = o.ssh();
        io.stdout.write(
          `${JSON.stringify({
            ...e,
            ssh_connections_opened: ssh.connectionsOpened,
            ssh_connections_open: ssh.open,
            ssh_connect_attempts: ssh.connectAttempts,
            rss_bytes: process.memoryUsage.rss(),
          })}\n`,
        );
        return;
      }
      default:
        io.stdout.write(`${JSON.stringify(e)}\n`);
    }
  };
}
