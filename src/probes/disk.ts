import type { DiskCheck } from '../config/schema.js';
import { shellQuote } from '../util/cap.js';
import { firstLine, judgePercent, outcomeFromError, thresholdNote } from './common.js';
import type { Probe } from './types.js';

export interface DfUsage {
  filesystem: string;
  size_kb: number;
  used_kb: number;
  available_kb: number;
  mount: string;
  /** Used share of what non-root users can have, as df computes it (rounded up). */
  percent: number;
}

/** Parse the last line of POSIX `df -P -k PATH` (GNU and busybox print the same columns). */
export function parseDf(text: string): DfUsage | undefined {
  const lines = text.trim().split('\n');
  const last = lines.at(-1);
  if (lines.length < 2 || !last) return undefined;
  const m = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(.+)$/.exec(last.trim());
  if (!m) return undefined;
  const used = Number(m[3]);
  const available = Number(m[4]);
  const denom = used + available;
  return {
    filesystem: m[1]!,
    size_kb: Number(m[2]),
    used_kb: used,
    available_kb: available,
    mount: m[6]!,
    percent: denom === 0 ? 0 : Math.ceil((used * 1000) / denom) / 10,
  };
}

export const diskProbe: Probe<DiskCheck> = async (check, target, signal) => {
  try {
    const r = await target.exec(`df -P -k -- ${shellQuote(check.path)}`, { signal });
    if (r.exitCode !== 0) {
      return { status: 'UNHEALTHY', message: `df ${check.path} failed: ${firstLine(r.stderr) || `exit ${r.exitCode}`}`, details: { exit_code: r.exitCode } };
    }
    const usage = parseDf(r.stdout);
    if (!usage) return { status: 'UNKNOWN', message: `cannot read df output for ${check.path}: ${JSON.stringify(firstLine(r.stdout))}` };
    const status = judgePercent(usage.percent, check.warning_percent, check.critical_percent);
    const limit = thresholdNote(status, check);
    return {
      status,
      message: `${usage.mount} is ${usage.percent}% full${limit}`,
      details: { ...usage, path: check.path, warning_percent: check.warning_percent, critical_percent: check.critical_percent },
    };
  } catch (err) {
    return outcomeFromError(err, signal, check.timeout, `df ${check.path}`);
  }
};
