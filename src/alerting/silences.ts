/** Which silence, if any, covers a VM's check (or its VM-level alert) at a given time. */
import { globToRegExp, isGlob } from '../inventory/discover.js';
import type { Silence } from './types.js';

function vmMatches(pattern: string, vm: string): boolean {
  return isGlob(pattern) ? globToRegExp(pattern).test(vm) : pattern === vm;
}

/**
 * The silence covering `vm`/`check` at `now` (the one ending last, when several do). A silence without a check
 * covers every check of its VMs and their VM-level alerts; one with a check covers only that check.
 */
export function activeSilence(silences: readonly Silence[], vm: string, check: string | undefined, now: number): Silence | undefined {
  let found: Silence | undefined;
  for (const s of silences) {
    if (s.starts_at > now || s.ends_at <= now) continue;
    if (!vmMatches(s.vm, vm)) continue;
    if (s.check !== undefined && s.check !== check) continue;
    if (!found || s.ends_at > found.ends_at) found = s;
  }
  return found;
}

/** For results and the history view: which silence held a check's alerts and actions back. */
export function silenceNote(s: Silence): { id: string; until: string; reason: string } {
  return { id: s.id, until: new Date(s.ends_at).toISOString(), reason: s.reason };
}
