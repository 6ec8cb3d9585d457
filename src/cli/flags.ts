/** Flag values that need more than oclif's parsing: durations, said wrong in one sentence naming the flag. */
import { formatDuration, parseDuration, timerProblem } from '../config/duration.js';
import { UsageError } from '../engine/fleet.js';

/** A duration flag in ms (undefined when not given). `examples` shows the person what fits this flag. */
export function durationFlag(flag: string, value: string | undefined, examples: string, minMs?: number): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new UsageError(`--${flag} expects a duration such as ${examples}, got "${value}"`);
  if (minMs !== undefined && ms < minMs) throw new UsageError(`--${flag} must be at least ${formatDuration(minMs)}, got "${value}"`);
  const tooLong = timerProblem(ms);
  if (tooLong) throw new UsageError(`--${flag} "${value}" ${tooLong}; give a shorter one`);
  return ms;
}
