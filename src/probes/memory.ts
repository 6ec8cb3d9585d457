import type { MemoryCheck } from '../config/schema.js';
import { judgePercent, outcomeFromError, thresholdNote } from './common.js';
import type { Probe } from './types.js';

/** What `memoryUsage` reads: every one of them comes within the first lines of /proc/meminfo. */
const USAGE_KEYS: readonly string[] = ['MemTotal', 'MemAvailable', 'MemFree', 'Buffers', 'Cached'];

/**
 * kB values of /proc/meminfo by key; with `keys`, only those, and it stops reading once it has them all (the memory
 * probe needs 5 of ~55 lines: a regex match, two strings and a Map entry for every line was 20 KB of garbage per VM
 * per round, the most any probe made).
 */
export function parseMeminfo(text: string, keys?: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const line = /^(\w+(?:\(\w+\))?):[ \t]+(\d+)/gm;
  const left = keys ? new Set(keys) : undefined;
  for (let m = line.exec(text); m; m = line.exec(text)) {
    const key = m[1]!;
    if (left && !left.delete(key)) continue;
    out.set(key, Number(m[2]));
    if (left?.size === 0) break;
  }
  return out;
}

/** Used memory percent: what is not available to new work (MemAvailable, or free+buffers+cache on old kernels). */
export function memoryUsage(info: Map<string, number>): { total_kb: number; available_kb: number; percent: number } | undefined {
  const total = info.get('MemTotal');
  if (!total) return undefined;
  const available = info.get('MemAvailable') ?? (info.get('MemFree') ?? 0) + (info.get('Buffers') ?? 0) + (info.get('Cached') ?? 0);
  return { total_kb: total, available_kb: available, percent: Math.round(((total - available) / total) * 1000) / 10 };
}

export const memoryProbe: Probe<MemoryCheck> = async (check, target, signal) => {
  try {
    const r = await target.exec('cat /proc/meminfo', { signal });
    const usage = r.exitCode === 0 ? memoryUsage(parseMeminfo(r.stdout, USAGE_KEYS)) : undefined;
    if (!usage) return { status: 'UNKNOWN', message: `cannot read /proc/meminfo in the guest (exit ${r.exitCode})` };
    const status = judgePercent(usage.percent, check.warning_percent, check.critical_percent);
    const limit = thresholdNote(status, check);
    return {
      status,
      message: `memory ${usage.percent}% used${limit}`,
      details: { ...usage, warning_percent: check.warning_percent, critical_percent: check.critical_percent },
    };
  } catch (err) {
    return outcomeFromError(err, signal, check.timeout, 'reading /proc/meminfo');
  }
};
