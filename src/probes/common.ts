import { formatDuration } from '../config/duration.js';
import { TransportError, type ExecResult } from '../transport/types.js';
import { capText } from '../util/cap.js';
import type { ProbeOutcome } from './types.js';

/** True when the probe's signal fired because its deadline passed (not because the run was cancelled). */
export function timedOut(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError';
}

/**
 * The outcome for an error a probe could not get past: a transport failure says nothing about the
 * service (UNKNOWN); a deadline is the service's failure (UNHEALTHY); a cancelled run is UNKNOWN.
 */
export function outcomeFromError(err: unknown, signal: AbortSignal, timeoutMs: number, what: string): ProbeOutcome {
  if (err instanceof TransportError) return transportOutcome(err, timeoutMs);
  if (timedOut(signal)) {
    return { status: 'UNHEALTHY', message: `${what} did not finish within ${formatDuration(timeoutMs)}`, details: { timed_out: true } };
  }
  if (signal.aborted) return { status: 'UNKNOWN', message: `${what} was cancelled` };
  const code = (err as NodeJS.ErrnoException).code;
  return { status: 'UNHEALTHY', message: `${what} failed: ${(err as Error).message}`, details: code ? { error_code: code } : {} };
}

/**
 * UNKNOWN for a transport failure. A deadline that passed before the transport was established says so with the
 * check's timeout and the phase: `VM web-1: guest not reached within 2s: no SSH banner from 10.0.0.5:22`.
 */
export function transportOutcome(err: TransportError, timeoutMs: number): ProbeOutcome {
  if (err.phase) {
    return {
      status: 'UNKNOWN',
      message: err.message.replace('guest not reached:', `guest not reached within ${formatDuration(timeoutMs)}:`),
      details: { transport_error: err.kind, transport_phase: err.phase },
    };
  }
  return { status: 'UNKNOWN', message: err.message, details: { transport_error: err.kind } };
}

/** Details every exec-based probe keeps: exit status and capped output. */
export function execDetails(r: ExecResult): Record<string, unknown> {
  return {
    exit_code: r.exitCode,
    ...(r.signal ? { signal: r.signal } : {}),
    stdout: capText(r.stdout),
    stderr: capText(r.stderr),
    ...(r.stdoutTruncated ? { stdout_truncated: true } : {}),
    ...(r.stderrTruncated ? { stderr_truncated: true } : {}),
  };
}

/** Compare a command's exit code and output with what a check expects. */
export function judgeCommand(r: ExecResult, expected: { exit_code: number; expected_output?: string | undefined }, what: string): ProbeOutcome {
  const details = execDetails(r);
  if (r.exitCode === null) {
    return { status: 'UNHEALTHY', message: `${what} was killed${r.signal ? ` by SIG${r.signal}` : ''} before it exited`, details };
  }
  if (r.exitCode !== expected.exit_code) {
    const hint = firstLine(r.stderr) || firstLine(r.stdout);
    return {
      status: 'UNHEALTHY',
      message: `${what} exited with ${r.exitCode} (expected ${expected.exit_code})${hint ? `: ${hint}` : ''}`,
      details,
    };
  }
  if (expected.expected_output !== undefined && !r.stdout.includes(expected.expected_output)) {
    return {
      status: 'UNHEALTHY',
      message: `${what} output does not contain ${JSON.stringify(expected.expected_output)}${r.stdout ? ` (got ${JSON.stringify(firstLine(r.stdout))})` : ' (no output)'}`,
      details,
    };
  }
  return {
    status: 'HEALTHY',
    message: expected.expected_output !== undefined ? `output contains ${JSON.stringify(expected.expected_output)}` : `exited with ${r.exitCode}`,
    details,
  };
}

export function firstLine(text: string, max = 120): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** DEGRADED/UNHEALTHY from a percentage against warning/critical thresholds. */
export function judgePercent(percent: number, warning: number, critical: number): ProbeOutcome['status'] {
  if (percent >= critical) return 'UNHEALTHY';
  if (percent >= warning) return 'DEGRADED';
  return 'HEALTHY';
}

/** ` (critical at 90%)` / ` (warning at 80%)` / `` for a status from judgePercent. */
export function thresholdNote(status: ProbeOutcome['status'], t: { warning_percent: number; critical_percent: number }): string {
  if (status === 'UNHEALTHY') return ` (critical at ${t.critical_percent}%)`;
  if (status === 'DEGRADED') return ` (warning at ${t.warning_percent}%)`;
  return '';
}
