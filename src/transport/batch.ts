/**
 * Several guest commands on ONE exec channel, each with its own result.
 *
 * Why: every session channel costs sshd a fork of its session process, an exec of the login shell
 * and our lifeline's fork. Measured on the bench machine (bench/README.md, N=50, 3 commands per VM,
 * warm connections): 3 channels cost sshd 3.9 s of CPU, the same 3 commands framed in one channel
 * 2.5 s. A VM's guest probes of one round arrive together; on a busy hypervisor sshd's CPU is the
 * floor every client shares, so they go in one channel.
 *
 * How: one shell (under the lifeline of exec.ts) runs the commands one after the other, each in its
 * own subshell with stdin /dev/null, so a command's `exit` or `trap` stays its own. After each it
 * prints, on stdout AND stderr, `\n@NONCE e I STATUS`; the nonce is random per batch and reaches the
 * shell on its stdin, never on a command line (see batchScript), so output can end a frame neither
 * by accident nor on purpose. Each command's output is streamed into its own cap; a command
 * has its result as soon as both its end marks arrived. (Output that a background process of one
 * command writes after that command ended is counted to the next one.)
 *
 * Forks are what cost here (5–30 ms each on these machines), so the script forks nothing of its
 * own: no temp files, no mktemp, no cat. (A version that ran the commands side by side through
 * temp files and a FIFO cost sshd MORE than separate channels: 5.4 s against 3.9 s.)
 *
 * Deadlines: each command keeps its caller's signal. When the running command's deadline passes,
 * its promise rejects at once; the channel is then closed (the lifeline kills it) and the commands
 * after it go on channels of their own with what is left of their own deadlines (ssh-pool.ts).
 * A command whose deadline passes before it even started (it waited behind a slow one) fails as a
 * transport error, so its check is UNKNOWN ("did not start"), never a false UNHEALTHY timeout.
 * Differences from a channel of its own: a command killed by a signal reports the shell's 128+N
 * status, not the signal's name.
 */
import { randomBytes } from 'node:crypto';
import { OutputCap, withLifeline } from './exec.js';
import type { ExecResult } from './types.js';

export interface BatchItem {
  command: string;
  maxOutputBytes: number;
}

export interface BatchFraming {
  /** The command line of the channel: holds no nonce. */
  script: string;
  /** The nonce the frames carry. */
  nonce: string;
  /** Write this on the channel's stdin right after it opens: the script reads the nonce from there. */
  stdin: string;
}

/**
 * The script for `items` (lifeline included). The nonce is not in the script: a command line is
 * readable by every process of the guest (/proc/PID/cmdline), so a command that read it there could
 * print another command's end mark and forge its result (a failing `redis-cli ping` coming back as
 * exit 0 with PONG). The shell reads it as the first line of its stdin instead, keeps it in an
 * unexported variable that each command's subshell unsets first, and prints the marks with the
 * printf builtin, so it never reaches a command line, an environment or a command's view. (Root in
 * the guest can still read the shell's memory; a guest that lies about itself is out of scope.)
 */
export function batchScript(items: readonly BatchItem[], nonce: string = randomBytes(12).toString('hex')): BatchFraming {
  // No begin marks: every packet sshd sends costs both sides, and the commands run in order.
  const parts = items.map(
    (item, i) =>
      `(\nunset __clonebox_n\n${item.command}\n) </dev/null\n__clonebox_rc=$?; printf '\\n@%s e ${i} %s\\n' "$__clonebox_n" $__clonebox_rc; printf '\\n@%s e ${i} %s\\n' "$__clonebox_n" $__clonebox_rc >&2`,
  );
  // `read` takes the first line only (it reads a pipe byte by byte); the lifeline then watches the rest of stdin.
  return { script: `IFS= read -r __clonebox_n || exit 125\n${withLifeline(parts.join('\n'))}`, nonce, stdin: `${nonce}\n` };
}

/**
 * Splits one framed stream into output and `\n@NONCE KIND A B\n` marks (batch channels use `e`, the resident session
 * resident.ts `h b e x`). Streaming: only what could be the start of a mark is held back.
 */
export class MarkStream {
  readonly #mark: Buffer;
  #buf: Buffer = Buffer.alloc(0);

  constructor(
    nonce: string,
    private readonly onData: (chunk: Buffer) => void,
    private readonly onMark: (kind: string, a: number, b: number) => void,
  ) {
    this.#mark = Buffer.from(`\n@${nonce} `);
  }

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    for (;;) {
      const at = this.#buf.indexOf(this.#mark);
      if (at === -1) {
        const keep = Math.min(this.#buf.length, this.#mark.length - 1);
        if (this.#buf.length > keep) this.onData(this.#buf.subarray(0, this.#buf.length - keep));
        this.#buf = this.#buf.subarray(this.#buf.length - keep);
        return;
      }
      if (at > 0) {
        this.onData(this.#buf.subarray(0, at));
        this.#buf = this.#buf.subarray(at);
      }
      const nl = this.#buf.indexOf(10, this.#mark.length);
      if (nl === -1) return;
      const [kind = '', a = 'x', b = 'x'] = this.#buf.subarray(this.#mark.length, nl).toString('latin1').split(' ');
      this.#buf = this.#buf.subarray(nl + 1);
      this.onMark(kind, Number(a), Number(b));
    }
  }
}

/** One stream (stdout or stderr) of a batch channel, cut into the commands' parts: `OUTPUT\n@NONCE e I STATUS\n` each. */
class FramedStream {
  readonly #marks: MarkStream;
  /** The command whose output is being read: they run in order. */
  #current = 0;

  get current(): number {
    return this.#current;
  }

  constructor(nonce: string, onData: (index: number, chunk: Buffer) => void, onEnd: (index: number, status: number) => void) {
    this.#marks = new MarkStream(
      nonce,
      (chunk) => onData(this.#current, chunk),
      (kind, index, status) => {
        if (kind !== 'e' || !Number.isInteger(index)) return;
        this.#current = index + 1;
        onEnd(index, status);
      },
    );
  }

  push(chunk: Buffer): void {
    this.#marks.push(chunk);
  }
}

/**
 * Reads a batch channel's stdout and stderr and hands each command its result as soon as both of
 * its end marks arrived. Streaming: output beyond a command's cap is counted and dropped, never held.
 */
export class BatchParser {
  readonly #out: FramedStream;
  readonly #err: FramedStream;
  readonly #caps: { out: OutputCap; err: OutputCap; status?: number; ends: number }[];
  /** Commands whose result was handed over. */
  readonly done = new Set<number>();

  /** The index of the command running now (they run in order): the number of commands whose stdout end mark came. */
  get running(): number {
    return this.#out.current;
  }

  constructor(
    nonce: string,
    items: readonly BatchItem[],
    private readonly onResult: (index: number, result: ExecResult) => void,
  ) {
    this.#caps = items.map((it) => ({ out: new OutputCap(it.maxOutputBytes), err: new OutputCap(it.maxOutputBytes), ends: 0 }));
    const end = (i: number, status: number): void => {
      const c = this.#caps[i];
      if (!c || this.done.has(i)) return;
      c.status = status;
      if (++c.ends < 2) return;
      this.done.add(i);
      this.onResult(i, {
        exitCode: Number.isInteger(c.status) ? c.status : null,
        stdout: c.out.text(),
        stderr: c.err.text(),
        stdoutTruncated: c.out.truncated,
        stderrTruncated: c.err.truncated,
      });
    };
    this.#out = new FramedStream(nonce, (i, b) => this.#caps[i]?.out.push(b), end);
    this.#err = new FramedStream(nonce, (i, b) => this.#caps[i]?.err.push(b), end);
  }

  stdout(chunk: Buffer): void {
    this.#out.push(chunk);
  }

  stderr(chunk: Buffer): void {
    this.#err.push(chunk);
  }
}
