import type { CommandIO } from '../check.js';

/** Where a watch writes: stdout may be a terminal that can tell its size and resizes. */
export interface WatchIO extends CommandIO {
  stdout: CommandIO['stdout'] & { columns?: number; rows?: number; on?(event: 'resize', fn: () => void): unknown; off?(event: 'resize', fn: () => void): unknown };
}

/** The SSH pool's counters that the outputs show. */
export interface SshCounters {
  connectionsOpened: number;
  open: number;
  connectAttempts: number;
}
