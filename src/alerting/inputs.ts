/** From a round's reports and the state machine's outcomes to what `decideAlerts` reads. */
import type { CheckOutcome } from '../engine/state.js';
import type { VMHealthReport } from '../report.js';
import { vmReachability, type CheckAlertInput, type VmAlertInput } from './decide.js';

/** What alerting needs of one configured check beyond its result. */
export interface CheckAlertPolicy {
  tags: readonly string[];
  alert_on: 'unhealthy' | 'degraded';
}

export type AlertPolicyLookup = (vm: string, check: string) => CheckAlertPolicy | undefined;

export function alertPolicyFromVms(
  vms: readonly { name: string; checks: readonly { name: string; tags?: readonly string[]; alert_on?: 'unhealthy' | 'degraded' }[] }[],
): AlertPolicyLookup {
  const byVm = new Map<string, Map<string, CheckAlertPolicy>>();
  for (const vm of vms) {
    byVm.set(vm.name, new Map(vm.checks.map((c) => [c.name, { tags: c.tags ?? [], alert_on: c.alert_on ?? 'unhealthy' }])));
  }
  return (vm, check) => byVm.get(vm)?.get(check);
}

export function alertInputs(
  raw: readonly VMHealthReport[],
  checks: readonly CheckOutcome[],
  policy: AlertPolicyLookup = () => undefined,
): { vms: VmAlertInput[]; checks: CheckAlertInput[] } {
  const vms = raw.map((r): VmAlertInput => {
    const tags = new Set<string>();
    for (const c of r.checks) for (const t of policy(r.vm_name, c.name)?.tags ?? []) tags.add(t);
    const reach = vmReachability(r);
    return { vm: r.vm_name, reachable: reach.reachable, ...(reach.reason ? { reason: reach.reason } : {}), at: Date.parse(r.timestamp), tags: [...tags].sort() };
  });
  const inputs = checks.map((c): CheckAlertInput => {
    const p = policy(c.vm, c.check);
    return {
      vm: c.vm,
      check: c.check,
      type: c.result.type,
      tags: p?.tags ?? [],
      critical: c.result.critical,
      alert_on: p?.alert_on ?? 'unhealthy',
      raw: c.result.status,
      state: c.outcome.next,
      message: c.result.message,
      at: Date.parse(c.result.timestamp),
    };
  });
  return { vms, checks: inputs };
}
