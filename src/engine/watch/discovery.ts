/**
 * When the watch asks for its VM list again: every `everyMs` (min(interval, 30 s)), and sooner (≤ 2 s) after a
 * check failed on its transport, since the VM may have a new address. One refresh at a time; a failing one keeps
 * the last known VMs and is said once per distinct failure.
 */
import type { Clock } from './clock.js';
import type { WatchEvents } from './events.js';
import { URGENT_DISCOVERY_MS } from './policy.js';

export class Discovery {
  #last = 0;
  #next = 0;
  #wanted = false;
  #lastError: string | undefined;
  #running: Promise<void> | undefined;
  readonly #urgentGap: number;

  constructor(
    private readonly everyMs: number,
    private readonly clock: Clock,
    private readonly events: WatchEvents,
    /** Fetch the list and apply it; throws when it cannot say. */
    private readonly refresh: () => Promise<void>,
  ) {
    this.#urgentGap = Math.min(everyMs, URGENT_DISCOVERY_MS);
  }

  /** The refresh in flight, if any. */
  get running(): Promise<void> | undefined {
    return this.#running;
  }

  /** Ask again soon. */
  want(): void {
    this.#wanted = true;
  }

  #mark(): void {
    this.#last = this.clock.now();
    this.#next = this.#last + this.everyMs;
    this.#wanted = false;
  }

  /** The first discovery: its errors are the caller's (they end the watch). */
  async first(): Promise<void> {
    this.#mark();
    await this.refresh();
  }

  /** Start a refresh if one is due and none runs; `done` is called when it ends. */
  startIfDue(now: number, stopped: () => boolean, done: () => void): void {
    if (this.#running || !(now >= this.#next || (this.#wanted && now >= this.#last + this.#urgentGap))) return;
    this.#mark();
    const run = this.refresh().then(
      () => {
        if (this.#lastError) this.events.note('libvirt answers again');
        this.#lastError = undefined;
      },
      (err: unknown) => {
        if (stopped()) return;
        const msg = (err as Error).message;
        // Said once per distinct failure, not every refresh.
        if (msg !== this.#lastError) this.events.note(`cannot refresh the VM list (${msg}); keeping the last known addresses`);
        this.#lastError = msg;
      },
    );
    this.#running = run.finally(() => {
      this.#running = undefined;
      done();
    });
  }

  /** When the loop must wake for the next refresh; a refresh in flight wakes it itself when it ends. */
  wakeAt(): number {
    if (this.#running) return Infinity;
    return this.#wanted ? Math.min(this.#next, this.#last + this.#urgentGap) : this.#next;
  }
}
