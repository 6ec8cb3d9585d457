/**
 * Alerting under `health watch`: a subscriber. Notifications are decided and queued with their transitions (the
 * store's transaction, or memory); this delivers them in the background, a worker per provider, so a slow provider
 * never delays a check or another provider. Each queued notification (`alert` event) wakes the workers; rows a
 * provider refused are retried on their backoff, and whatever is left when the watch stops stays in the store's
 * outbox for the next run. Failures are said once per streak (a note); each delivery with --verbose.
 */
import { Deliverer } from '../../alerting/delivery.js';
import type { Outbox } from '../../alerting/outbox.js';
import type { AlertingRuntime } from '../../alerting/runtime.js';
import type { WatchEvents, WatchSubscriber } from '../../engine/watch/events.js';

export interface WatchAlerting {
  subscriber: WatchSubscriber;
  /** Start delivering (rows an earlier run left behind go out at once). */
  start(): void;
  /** Stop the workers; a delivery under way is cut short and stays in the outbox. */
  close(): Promise<void>;
}

export function watchAlerting(events: WatchEvents, a: { runtime: AlertingRuntime; outbox: Outbox }): WatchAlerting {
  const deliverer = new Deliverer({
    outbox: a.outbox,
    providers: a.runtime.providers,
    retry: a.runtime.retry,
    log: (msg) => events.note(msg),
    onDelivery: (r) =>
      events.note(`alert ${r.event} ${r.alert_key} → ${r.provider}: ${r.ok ? 'delivered' : `not delivered (${r.error ?? '?'})`} in ${r.duration_ms}ms`, 'debug'),
  });
  return {
    subscriber: function alerting(e) {
      if (e.type === 'alert') deliverer.kick();
    },
    start: () => deliverer.start(),
    close: () => deliverer.stop(),
  };
}
