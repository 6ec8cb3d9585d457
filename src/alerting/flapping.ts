/**
 * Flapping as Nagios defines it (flapping.c): over the last 21 results, the share of state changes, each change
 * weighted from 0.75 (oldest) to 1.25 (newest), so recent flapping counts more. A check starts flapping at or above
 * the high threshold and stops below the low one (hysteresis, so it does not flap in and out of flapping).
 */
import type { HealthStatus } from '../report.js';

export const FLAP_WINDOW = 21;
const LOW_WEIGHT = 0.75;
const HIGH_WEIGHT = 1.25;

export interface FlapThresholds {
  enabled: boolean;
  /** % */
  high_threshold: number;
  /** % */
  low_threshold: number;
}

const LETTER: Partial<Record<HealthStatus, string>> = { HEALTHY: 'H', DEGRADED: 'D', UNHEALTHY: 'U' };

/** The history with one more evaluated result; UNKNOWN (not evaluated) is not a result and leaves it as it was. */
export function pushHistory(history: string, status: HealthStatus): string {
  const letter = LETTER[status];
  if (!letter) return history;
  const next = history + letter;
  return next.length > FLAP_WINDOW ? next.slice(next.length - FLAP_WINDOW) : next;
}

/**
 * Weighted % of state changes in `history` (oldest first). A shorter history is placed at the recent end of the
 * window, as Nagios' history starts filled with the first state: a new check needs real changes to flap.
 */
export function flapPercent(history: string): number {
  const h = history.slice(-FLAP_WINDOW);
  const offset = FLAP_WINDOW - h.length;
  let weighted = 0;
  for (let i = 1; i < h.length; i++) {
    if (h[i] === h[i - 1]) continue;
    const x = offset + i; // 1..20: the position of this change in a full window
    weighted += ((x - 1) * (HIGH_WEIGHT - LOW_WEIGHT)) / (FLAP_WINDOW - 2) + LOW_WEIGHT;
  }
  return Math.round(((weighted * 100) / (FLAP_WINDOW - 1)) * 10) / 10;
}

export type FlapChange = 'started' | 'stopped' | undefined;

/** Whether a check with this history starts or stops flapping now. */
export function flapChange(wasFlapping: boolean, percent: number, t: FlapThresholds): FlapChange {
  if (!t.enabled) return wasFlapping ? 'stopped' : undefined;
  if (!wasFlapping && percent >= t.high_threshold) return 'started';
  if (wasFlapping && percent < t.low_threshold) return 'stopped';
  return undefined;
}
