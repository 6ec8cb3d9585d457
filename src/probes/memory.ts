import type { MemoryCheck } from '../config/schema.js';
import { judgePercent, outcomeFromError, thresholdNote } from './common.js';
import type { Probe } from './types.js';

/** kB values of /proc/meminfo by key. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
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
    // MemTotal, MemFree, MemAvailable, Buffers, Cached are the first five lines on every kernel (MemAvailable is
    // absent before 3.14); the resident session reads them without starting a process (transport/resident-script.ts).
    const r = await target.exec('head -n 5 /proc/meminfo', { signal });
    const usage = r.exitCode === 0 ? memoryUsage(parseMeminfo(r.stdout)) : undefined;
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
