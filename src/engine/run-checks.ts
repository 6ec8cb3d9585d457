/**
 * Running checks within their deadlines: whatever a probe does, its check has a result within its timeout plus a
 * margin, and a cancelled run says so instead of blaming the service.
 */
import { setMaxListeners } from 'node:events';
import { formatDuration } from '../config/duration.js';
import type { HealthCheck } from '../config/schema.js';
import { transportOutcome } from '../probes/common.js';
import { probeFor, transportOf } from '../probes/registry.js';
import type { ProbeOutcome, ProbeTarget } from '../probes/types.js';
import type { CheckResult } from '../report.js';
import { TransportError } from '../transport/types.js';

/** How long past its own timeout a probe may take before the engine gives up on it. */
export const DEADLINE_MARGIN_MS = 1000;

/** A check's result from what its probe said. */
export function result(check: HealthCheck, startedAt: Date, durationMs: number, outcome: ProbeOutcome): CheckResult {
  return {
    name: check.name,
    type: check.type,
    status: outcome.status,
    timestamp: startedAt.toISOString(),
    duration_ms: Math.round(durationMs * 10) / 10,
    message: outcome.message,
    critical: check.critical,
    transport: outcome.transport ?? transportOf(check),
    details: outcome.details ?? {},
  };
}

/** Checks running under each parent signal: ONE abort listener per parent, however many checks run at once. */
const followers = new WeakMap<AbortSignal, Set<AbortController>>();

/** Abort `child` when `parent` aborts, until the returned function is called. */
function follow(parent: AbortSignal, child: AbortController): () => void {
  if (parent.aborted) {
    child.abort(parent.reason);
    return () => {};
  }
  let set = followers.get(parent);
  if (!set) {
    const created = new Set<AbortController>();
    set = created;
    followers.set(parent, created);
    parent.addEventListener(
      'abort',
      () => {
        for (const c of created) c.abort(parent.reason);
        created.clear();
      },
      { once: true },
    );
  }
  const mine = set;
  mine.add(child);
  return () => {
    mine.delete(child);
  };
}

/**
 * The deadline of checks started together with the same timeout: one controller, one deadline timer and one backstop
 * timer for all of them (a VM's checks of one round usually share one), gone when the last of them is. A check that
 * finished early keeps an unaborted signal until then; the others' deadlines are exactly what they were alone.
 * (Per check, a controller with its AbortSignal, two timers and a backstop promise were a sixth of what a watch round
 * allocated at N=200, and a watch round's CPU after a 30 s idle follows what it allocates: bench/README.md.)
 */
class Deadline {
  readonly controller = new AbortController();
  /** The checks still running: their backstops. */
  readonly #running = new Set<(outcome: ProbeOutcome) => void>();
  readonly #deadline: NodeJS.Timeout;
  readonly #backstop: NodeJS.Timeout;
  readonly #unfollow: () => void;

  constructor(parent: AbortSignal, timeoutMs: number) {
    const controller = this.controller;
    // Each check's probe listens on the shared signal: a VM with a dozen checks is not a leak (Node warns past 10).
    setMaxListeners(0, controller.signal);
    this.#unfollow = follow(parent, controller);
    this.#deadline = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs);
    this.#backstop = setTimeout(() => {
      const outcome: ProbeOutcome = {
        status: 'UNHEALTHY',
        message: `no result within ${formatDuration(timeoutMs)} (probe did not stop in time)`,
        details: { timed_out: true },
      };
      for (const settle of this.#running) settle(outcome);
    }, timeoutMs + DEADLINE_MARGIN_MS);
  }

  /** The probe's outcome, or the backstop's if the probe ignores its signal past the margin. */
  run(probe: () => Promise<ProbeOutcome>): Promise<ProbeOutcome> {
    let settle!: (outcome: ProbeOutcome) => void;
    const outcome = new Promise<ProbeOutcome>((resolve, reject) => {
      settle = resolve;
      probe().then(resolve, reject);
    });
    this.#running.add(settle);
    return outcome.finally(() => {
      this.#running.delete(settle);
      if (this.#running.size === 0) this.#close();
    });
  }

  #close(): void {
    clearTimeout(this.#deadline);
    clearTimeout(this.#backstop);
    this.#unfollow();
  }
}

/** Run checks started together, each within its own timeout (+ margin), whatever the probe does. */
export function runChecks(
  checks: readonly HealthCheck[],
  target: (i: number) => ProbeTarget,
  parent: AbortSignal,
  /** Each result as it comes, as it is to be returned. */
  finish: (r: CheckResult, i: number) => CheckResult,
): Promise<CheckResult>[] {
  const startedAt = new Date();
  const t0 = performance.now();
  const deadlines = new Map<number, Deadline>();
  // Every check joins its deadline before any can finish, so a deadline closes only when all of its checks are done.
  const started = checks.map((check, i) => {
    let d = deadlines.get(check.timeout);
    if (!d) deadlines.set(check.timeout, (d = new Deadline(parent, check.timeout)));
    const deadline = d;
    const { signal } = deadline.controller;
    return { check, outcome: deadline.run(() => probeFor(check)(check, target(i), signal)) };
  });
  return started.map(async ({ check, outcome: pending }, i) => {
    let outcome: ProbeOutcome;
    try {
      outcome = await pending;
    } catch (err) {
      outcome =
        err instanceof TransportError
          ? transportOutcome(err, check.timeout)
          : { status: 'UNKNOWN', message: `probe failed unexpectedly: ${(err as Error).message}` };
    }
    if (parent.aborted && outcome.status !== 'HEALTHY') outcome = { status: 'UNKNOWN', message: 'cancelled before it finished' };
    return finish(result(check, startedAt, performance.now() - t0, outcome), i);
  });
}

/** Run one check with its own deadline; whatever the probe does, this returns within timeout + margin. */
export function runCheck(check: HealthCheck, target: ProbeTarget, parent: AbortSignal): Promise<CheckResult> {
  return runChecks([check], () => target, parent, (r) => r)[0]!;
}
