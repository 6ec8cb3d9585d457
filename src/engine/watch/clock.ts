/**
 * Time for the watch loop: the system's, or a fake one that tests move by hand (with the scheduler's seeded
 * random source, a whole watch then runs the same way every time, in no wall time).
 */

/** An opaque timer handle. */
export type TimerHandle = unknown;

export interface Clock {
  /** ms since the epoch. */
  now(): number;
  /** Call `fn` once after `ms` (a pending timer keeps the process alive, as the loop's sleep must). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Lets every pending promise callback run (a macrotask turn runs after all microtasks). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock that only moves when told to: `advance(ms)` fires the timers that fall due, in order. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Move time forward by `ms`, firing each timer at its own time (earliest first, in the order they were set),
   * and letting the promise callbacks it starts run before the next one.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}
