/**
 * A FIFO counting semaphore: at most `limit` holders at once, waiters served in arrival order.
 * A waiter whose signal aborts leaves the queue and rejects with the signal's reason.
 */
export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
}

export class Semaphore {
  #free: number;
  readonly #queue: Waiter[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be a whole number ≥ 1, got ${limit}`);
    this.#free = limit;
  }

  /** Slots held right now. */
  get active(): number {
    return this.limit - this.#free;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#free > 0 && this.#queue.length === 0) {
      this.#free--;
      return Promise.resolve(this.#makeRelease());
    }
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#queue.indexOf(waiter);
        if (i !== -1) this.#queue.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      this.#queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #makeRelease(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
      if (next) next.grant(this.#makeRelease());
      else this.#free++;
    };
  }
}
