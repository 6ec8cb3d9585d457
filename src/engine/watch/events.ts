/**
 * What the watch loop tells the world. Results, transitions, actions, rounds and VM reachability are events;
 * the live table, JSON lines, /metrics, the store and (later) alerting and the status page are subscribers,
 * each one function `(e: WatchEvent) => void`. A subscriber that throws is reported once and keeps getting
 * events; it never stops the loop or the other subscribers.
 */
import type { AlertNotification } from '../../alerting/types.js';
import type { HealthStatus, StatusCounts } from '../../report.js';
import type { ActionSummary } from '../stateful.js';

/** The thresholded state of a check changed (what `health history` lists as a transition). */
export interface TransitionEvent {
  type: 'transition';
  ts: string;
  vm: string;
  check: string;
  /** null: the check's first evaluated result. */
  from: HealthStatus | null;
  to: HealthStatus;
  hard: boolean;
  /** A soft state's streak: "failing 1/3". */
  streak?: string;
  message: string;
}

/** The reported status changed without a transition: not evaluated (UNKNOWN) or evaluated again, or state from the store. */
export interface StatusEvent {
  type: 'status';
  ts: string;
  vm: string;
  check: string;
  from: HealthStatus | null;
  to: HealthStatus;
  /** The thresholded state kept underneath. */
  state: HealthStatus;
  since: string;
  message: string;
}

/** An action ran (with its result) or was held back by the guard (`status: 'suppressed'`). */
export interface ActionEvent extends ActionSummary {
  type: 'action';
  ts: string;
}

/** A notification was queued for the alerting providers (written to the outbox with its transition). */
export interface AlertEvent {
  type: 'alert';
  ts: string;
  notification: AlertNotification;
}

/** Every check has run once more. */
export interface RoundEvent {
  type: 'round';
  round: number;
  ts: string;
  /** Since the previous round (or the start). */
  duration_ms: number;
  status: HealthStatus;
  exit_code: number;
  vms: StatusCounts;
  checks: StatusCounts;
}

/**
 * A VM could not be reached (domain not running, no address, SSH failing), or can be again. Said once per change,
 * at the level where the chain domain → address → SSH broke; a VM reachable from its first result is not announced.
 */
export interface VmEvent {
  type: 'vm';
  ts: string;
  vm: string;
  reachable: boolean;
  /** Why it cannot be reached (reachable: false). */
  reason?: string;
}

/** Something for the person watching: `info` always shown, `debug` with --verbose. */
export interface NoteEvent {
  type: 'note';
  ts: string;
  level: 'info' | 'debug';
  message: string;
}

/** The watch ended; nothing follows. */
export interface StopEvent {
  type: 'stop';
  ts: string;
  reason: 'interrupted' | 'rounds';
  rounds: number;
  status: HealthStatus;
  exit_code: number;
}

export type WatchEvent = TransitionEvent | StatusEvent | ActionEvent | AlertEvent | RoundEvent | VmEvent | NoteEvent | StopEvent;

export type WatchSubscriber = (e: WatchEvent) => void;

/** The loop's event bus. `now` stamps the notes it makes itself. */
export class WatchEvents {
  readonly #subscribers = new Set<WatchSubscriber>();
  /** Subscribers that have thrown: reported once each. */
  readonly #failed = new WeakSet<WatchSubscriber>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Returns a function that unsubscribes. */
  subscribe(fn: WatchSubscriber): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  emit(e: WatchEvent): void {
    for (const fn of [...this.#subscribers]) {
      try {
        fn(e);
      } catch (err) {
        if (this.#failed.has(fn)) continue;
        this.#failed.add(fn);
        const name = fn.name ? `"${fn.name}"` : '(unnamed)';
        this.note(`a watch subscriber ${name} failed on a ${e.type} event and is not reported again: ${(err as Error)?.message ?? String(err)}`);
      }
    }
  }

  note(message: string, level: NoteEvent['level'] = 'info'): void {
    this.emit({ type: 'note', ts: new Date(this.now()).toISOString(), level, message });
  }
}
