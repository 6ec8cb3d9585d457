/** What every route reads from: the store, what the config says about checks, the live hub, the clock. */
import type { HealthStore } from '../store/types.js';
import type { LiveHub } from './live.js';
import type { MetaLookup } from './queries.js';

export interface ServeContext {
  store: HealthStore;
  meta: MetaLookup;
  /** The store's location, safe to show. */
  source: string;
  live: LiveHub;
  now: () => number;
}

/** `Server-Timing: app;dur=…`: the server's own time for a response (store reads + rendering), for the bench. */
export function serverTiming(t0: number): string {
  return `app;dur=${(performance.now() - t0).toFixed(1)}`;
}
