/**
 * Guest commands through the QEMU guest agent (guest-exec / guest-exec-status), for VMs that SSH
 * cannot reach (no address, port closed, no key) but whose agent answers. Off by default: it runs
 * commands as the agent's user (usually root) through libvirt, outside the SSH trust path.
 */
import type { LibvirtBackend } from '../inventory/types.js';
import { printable } from '../util/printable.js';
import { TransportError, type ExecOptions, type ExecResult } from './types.js';

const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 200;

interface AgentReply<T> {
  return?: T;
  error?: { class?: string; desc?: string };
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

function decode(b64: unknown, max: number): { text: string; truncated: boolean } {
  if (typeof b64 !== 'string' || !b64) return { text: '', truncated: false };
  const buf = Buffer.from(b64, 'base64');
  return buf.length > max ? { text: buf.subarray(0, max).toString('utf8'), truncated: true } : { text: buf.toString('utf8'), truncated: false };
}

async function call<T>(backend: LibvirtBackend, vm: string, command: object): Promise<T> {
  let text: string;
  try {
    text = await backend.agentCommand(vm, command, 5);
  } catch (err) {
    throw new TransportError(`VM ${printable(vm)}: the guest agent did not answer: ${(err as Error).message}`, 'unreachable', { cause: err });
  }
  // The reply is the guest's word: parsed defensively, quoted escaped, never trusted for its shape.
  let reply: AgentReply<T>;
  try {
    reply = JSON.parse(text) as AgentReply<T>;
  } catch {
    throw new TransportError(`VM ${printable(vm)}: the guest agent answered something that is not JSON: ${JSON.stringify(printable(text.slice(0, 80)))}`, 'channel');
  }
  if (reply === null || typeof reply !== 'object' || reply.error || reply.return === undefined) {
    const why = typeof reply?.error?.desc === 'string' ? printable(reply.error.desc.slice(0, 200)) : 'no answer';
    throw new TransportError(`VM ${printable(vm)}: the guest agent refused ${(command as { execute?: string }).execute ?? 'a command'}: ${why}`, 'channel');
  }
  return reply.return;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `command` with /bin/sh -c through the agent; honours the signal (the process is killed on abort). */
export async function agentExec(backend: LibvirtBackend, vm: string, command: string, options: ExecOptions): Promise<ExecResult> {
  const max = options.maxOutputBytes ?? 4096;
  const { pid } = await call<{ pid: number }>(backend, vm, {
    execute: 'guest-exec',
    arguments: { path: '/bin/sh', arg: ['-c', command], 'capture-output': true },
  });
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new TransportError(`VM ${printable(vm)}: the guest agent answered guest-exec without a process id`, 'channel');
  let wait = POLL_FIRST_MS;
  for (;;) {
    if (options.signal.aborted) {
      // guest-exec has no kill: ask the agent to run one, best effort.
      await call(backend, vm, { execute: 'guest-exec', arguments: { path: '/bin/kill', arg: ['-9', String(pid)] } }).catch(() => undefined);
      throw options.signal.reason;
    }
    const st = await call<ExecStatus>(backend, vm, { execute: 'guest-exec-status', arguments: { pid } });
    if (st === null || typeof st !== 'object') throw new TransportError(`VM ${printable(vm)}: the guest agent answered guest-exec-status with no status`, 'channel');
    if (st.exited) {
      const out = decode(st['out-data'], max);
      const err = decode(st['err-data'], max);
      return {
        exitCode: Number.isSafeInteger(st.exitcode) ? st.exitcode! : null,
        ...(Number.isSafeInteger(st.signal) && st.signal ? { signal: String(st.signal) } : {}),
        stdout: out.text,
        stderr: err.text,
        stdoutTruncated: out.truncated || Boolean(st['out-truncated']),
        stderrTruncated: err.truncated || Boolean(st['err-truncated']),
      };
    }
    await sleep(wait);
    wait = Math.min(POLL_MAX_MS, wait * 2);
  }
}
