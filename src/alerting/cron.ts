/**
 * Stateful `health check --store` (cron): deliver the outbox at the end of the run. Whatever a provider did not
 * take stays in the outbox for the next run (or a watch on the same store); concurrent runs deliver each row once.
 */
import { Deliverer } from './delivery.js';
import type { Outbox } from './outbox.js';
import type { AlertingRuntime } from './runtime.js';

export async function deliverAtEnd(
  store: { outbox: Outbox },
  alerting: AlertingRuntime,
  io: { stderr: { write(s: string): unknown } },
  verbose: boolean,
): Promise<void> {
  const say = (msg: string) => io.stderr.write(`clonebox: ${msg}\n`);
  const deliverer = new Deliverer({
    outbox: store.outbox,
    providers: alerting.providers,
    retry: alerting.retry,
    log: say,
    ...(verbose ? { onDelivery: (r) => say(`alert ${r.event} ${r.alert_key} → ${r.provider}: ${r.ok ? 'delivered' : `not delivered (${r.error ?? '?'})`} in ${r.duration_ms}ms`) } : {}),
  });
  // Start no delivery after the longest provider timeout: the run ends within about twice that.
  const budgetMs = Math.max(...alerting.providers.map((p) => p.timeoutMs));
  await deliverer.deliverDue({ budgetMs });
}
