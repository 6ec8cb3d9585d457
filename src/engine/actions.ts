/**
 * Run on_failure / on_recovery actions. In the guest over the VM's pooled SSH connection by default
 * (the seed's `systemctl restart uvicorn`), or on the hypervisor (`virsh reboot {{vm}}`). Each has a
 * timeout and a capped output; the caller records the outcome.
 */
import { spawn } from 'node:child_process';
import type { Action } from '../config/schema.js';
import { formatDuration } from '../config/duration.js';
import type { ActionResult } from './records.js';
import { TransportError, type GuestSession } from '../transport/types.js';
import { capText } from '../util/cap.js';
import { redactText } from '../util/redact.js';
import { actionEnv, guestActionCommand, templateCommand, type ActionValues } from './action-template.js';

export interface ActionTarget {
  vm: string;
  address?: string;
  /** The VM's SSH session, for guest actions; absent when the VM has no address. */
  session?: GuestSession;
  /** The check whose transition fired the action, and the status it went to. */
  check?: string;
  status?: string;
}

/** The check and the status it went to, for `{{check}}` / `{{status}}`. */
function values(target: ActionTarget): ActionValues {
  return { vm: target.vm, address: target.address, check: target.check, status: target.status };
}

function runOnHost(command: string, timeoutMs: number, signal: AbortSignal, env: NodeJS.ProcessEnv): Promise<ActionResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    // A process group of its own, so a timeout stops the whole command, not just the shell.
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    const keep = (chunk: Buffer) => {
      if (output.length < 8192) output += chunk.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    signal.addEventListener('abort', kill, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ status: 'error', reason: `cannot start /bin/sh: ${err.message}`, duration_ms: performance.now() - t0 });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', kill);
      const duration_ms = Math.round(performance.now() - t0);
      if (timedOut) resolve({ status: 'timeout', output: capText(output), duration_ms, reason: `did not finish within ${formatDuration(timeoutMs)}; stopped` });
      else resolve({ status: code === 0 ? 'ok' : 'failed', ...(code === null ? {} : { exit_code: code }), output: capText(output), duration_ms });
    });
  });
}

async function runInGuest(command: string, timeoutMs: number, signal: AbortSignal, session: GuestSession): Promise<ActionResult> {
  const t0 = performance.now();
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  try {
    const r = await session.exec(command, { signal: deadline, maxOutputBytes: 4096 });
    const output = capText(`${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim());
    return { status: r.exitCode === 0 ? 'ok' : 'failed', ...(r.exitCode === null ? {} : { exit_code: r.exitCode }), output, duration_ms: Math.round(performance.now() - t0) };
  } catch (err) {
    const duration_ms = Math.round(performance.now() - t0);
    if (err instanceof TransportError) return { status: 'error', reason: err.message, duration_ms };
    if (deadline.aborted && !signal.aborted) return { status: 'timeout', reason: `did not finish within ${formatDuration(timeoutMs)}; stopped`, duration_ms };
    return { status: 'error', reason: (err as Error).message, duration_ms };
  }
}

/**
 * Run an action. The placeholders' values reach the command only through its environment
 * (action-template.ts): a domain name or an address is data to the shell, never code.
 */
export async function runAction(action: Action, target: ActionTarget, signal: AbortSignal): Promise<ActionResult> {
  const result = await run(action, target, signal);
  // Action output is recorded and printed: a secret it echoes is masked like any other.
  return {
    ...result,
    ...(result.output !== undefined ? { output: redactText(result.output) } : {}),
    ...(result.reason !== undefined ? { reason: redactText(result.reason) } : {}),
  };
}

function run(action: Action, target: ActionTarget, signal: AbortSignal): Promise<ActionResult> {
  if (action.where === 'host') {
    return runOnHost(templateCommand(action.command), action.timeout, signal, { ...process.env, ...actionEnv(values(target)) });
  }
  if (!target.session) return Promise.resolve({ status: 'error', reason: `VM ${target.vm} has no address, so the guest action cannot run`, duration_ms: 0 });
  return runInGuest(guestActionCommand(action.command, values(target)), action.timeout, signal, target.session);
}
