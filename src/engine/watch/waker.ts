import type { Clock } from './clock.js';

/** The loop's sleep: resolves after `ms`, on `wake()`, or when the signal aborts, whichever comes first. */
export class Waker {
  #wake: (() => void) | undefined;
  #pending = false;
  /** When the current wait ends (ms), if one is under way. */
  #until: number | undefined;
  /** The signal whose abort wakes the loop (listened to once). */
  #listening: AbortSignal | undefined;

  constructor(private readonly clock: Clock) {}

  wake(): void {
    if (this.#wake) this.#wake();
    else this.#pending = true;
  }

  /**
   * Wake if the current wait would end after `at`: a rescheduled check due later than the loop's next wake-up
   * needs no extra turn of the loop (at 600 checks that was 600 full scans of the schedule per round).
   */
  wakeBy(at: number): void {
    if (this.#wake === undefined || this.#until === undefined || at < this.#until) this.wake();
  }

  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#listening !== signal) {
      // One listener per signal, not one per wait: the loop waits ~once per VM per round.
      this.#listening = signal;
      signal.addEventListener('abort', () => this.wake(), { once: true });
    }
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      // Even "now" goes through the timer queue: the loop must never spin on microtasks and starve I/O.
      const done = () => {
        this.clock.clearTimeout(timer);
        this.#wake = undefined;
        this.#until = undefined;
        resolve();
      };
      const wait = Math.max(1, Math.min(ms, 60_000));
      this.#until = this.clock.now() + wait;
      const timer = this.clock.setTimeout(done, wait);
      this.#wake = done;
    });
  }
}
