/** Durations as people write them: `500ms`, `5s`, `1m`, `300s`, `1h30m`, `7d`; a bare number means seconds. */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? Math.round(text * 1000) : undefined;
  const s = text.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = PART.exec(s); m; m = PART.exec(s)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed = PART.lastIndex;
  }
  return consumed === s.length ? Math.round(total) : undefined;
}

/**
 * The longest wait a timer can hold: Node's setTimeout keeps 32-bit signed milliseconds and turns
 * anything longer into 1 ms (with only a warning), so a `timeout: 30d` would fail at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `24.8 days`: how MAX_TIMER_MS is said to people. */
export const MAX_TIMER_TEXT = '24.8 days (2147483647ms)';

/** Why `ms` cannot be waited for, or undefined when it can. */
export function timerProblem(ms: number): string | undefined {
  return ms > MAX_TIMER_MS ? `is longer than the longest wait a timer can hold, ${MAX_TIMER_TEXT}` : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)}m`;
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  return `${+(ms / 3_600_000).toFixed(1)}h`;
}
