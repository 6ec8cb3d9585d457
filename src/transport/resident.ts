/**
 * The resident guest session: one long-lived exec channel per VM running a small POSIX-sh loop
 * (resident-script.ts), so a steady round opens no channel and starts no login shell; only the commands run.
 *
 * Why: a per-round channel costs the guest's sshd a session (fork, environment, exec of the login shell, its rc files
 * for bash) and our lifeline a fork, every round: 31–40 ms of sshd CPU per VM per round on the bench machine, most of
 * what a steady round costs the guest (bench/README.md). Ansible's Mitogen keeps one interpreter resident for the same
 * reason.
 *
 * The host side here: a VM's commands asked for in one tick (ssh-pool.ts) go to the session as one job when it is
 * idle, and to per-round channels (batch.ts, exec.ts) when it is busy, when the guest's shell cannot run the loop, or
 * when the VM allows a single session. Every command keeps its own deadline and output cap:
 * - the running command's deadline passes: it fails as a timeout (the service's failure, as on its own channel) and
 *   the job is killed in the guest (`k`); the session lives on. No confirmation within KILL_GRACE_MS: the session is
 *   dropped (its EOF kills what runs) and replaced on next use.
 * - a command's deadline passes while it waits behind another: it "did not start" (UNKNOWN, as in a batch); the job is
 *   asked to stop after the running command (`s`), and the commands it then did not start go to channels of their
 *   own (only once the guest said which: a command never runs twice).
 * - nothing from the guest (not even the job's `b` mark) before a deadline: sshd or the guest is wedged; the command
 *   is "guest not reached" (UNKNOWN) and the connection is dropped and redialled on next use, as when sshd does not
 *   answer a channel open.
 * - the channel closes under a job: the connection died (its commands fail as "lost", as on a channel) or the shell
 *   did; a shell that never started a job (not POSIX) marks the VM's connection per-round only, and the job's
 *   commands go to per-round channels.
 */
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { MarkStream } from './batch.js';
import { OutputCap } from './exec.js';
import { commandLines, RESIDENT_SCRIPT } from './resident-script.js';
import { TransportError, type ExecResult } from './types.js';
import { heardFrom, type Live, type OpenedChannel, type OpenTracker, type QueuedExec, type VmConnection } from './vm-connection.js';

/** How long a killed job may take to be confirmed dead before the session is dropped instead. */
export const KILL_GRACE_MS = 2000;

/** What the session needs from its pool. */
export interface ResidentHost {
  /** Open the session's channel with a slot held (open-channel.ts). */
  open(conn: VmConnection, signal: AbortSignal, script: string, tracker: OpenTracker): Promise<OpenedChannel>;
  /** Run commands on per-round channels. */
  fallback(conn: VmConnection, queued: QueuedExec[]): void;
  log(msg: string): void;
  counters: { residentSessions: number; residentJobs: number; residentCommands: number; residentKills: number };
}

interface Item {
  q: QueuedExec;
  out: OutputCap;
  err: OutputCap;
  /** End marks seen (one per stream): the result is in at 2. */
  ends: number;
  status?: number;
  settled: boolean;
  off: () => void;
}

interface Job {
  /** The first command's number; command i of the job is g + i. */
  g: number;
  items: Item[];
  /** The loop received the job (its `b` mark). */
  begun: boolean;
  /** Per stream, the item whose output the stream carries now (the number of its end marks seen on that stream). */
  outAt: number;
  errAt: number;
  /** `x` marks seen (one per stream): the job ended early. */
  xs: number;
  stopAsked: boolean;
  killTimer?: NodeJS.Timeout;
}

const isTimeout = (reason: unknown): boolean => (reason as { name?: string } | undefined)?.name === 'TimeoutError';

export class ResidentSession {
  #state: 'opening' | 'ready' | 'dead' = 'opening';
  readonly #nonce = randomBytes(12).toString('hex');
  #channel: ClientChannel | undefined;
  #live: Live | undefined;
  #release: (() => void) | undefined;
  #job: Job | undefined;
  #next = 1;
  /** The loop ran at least one job: the guest's shell can run it. */
  #proven = false;
  readonly #out: MarkStream;
  readonly #err: MarkStream;

  constructor(
    private readonly conn: VmConnection,
    private readonly host: ResidentHost,
  ) {
    this.#out = new MarkStream(this.#nonce, (b) => this.#data('out', b), (k, a, b) => this.#mark('out', k, a, b));
    this.#err = new MarkStream(this.#nonce, (b) => this.#data('err', b), (k, a, b) => this.#mark('err', k, a, b));
  }

  /** Ready for a job now: open, on the connection that is current, and no job in flight. */
  get idle(): boolean {
    return this.#state === 'ready' && !this.#job && !this.#live?.lost;
  }

  get dead(): boolean {
    return this.#state === 'dead' || Boolean(this.#live?.lost);
  }

  /** The first job: opens the channel and sends the job right behind the script (no round trip in between). */
  start(queued: QueuedExec[]): void {
    const job = this.#newJob(queued);
    const opening = new AbortController();
    const tracker: OpenTracker = { step: 'slot' };
    this.#watch(job, tracker, opening);
    this.host.counters.residentSessions++;
    void this.host.open(this.conn, opening.signal, RESIDENT_SCRIPT, tracker).then(
      (opened) => {
        if ('refused' in opened) {
          this.#die();
          this.#handOver(job.items);
          return;
        }
        const { live, channel, release } = opened;
        this.#channel = channel;
        this.#live = live;
        this.#release = release;
        channel.on('data', (b: Buffer) => this.#out.push(b));
        channel.stderr.on('data', (b: Buffer) => this.#err.push(b));
        channel.on('error', () => {});
        channel.on('close', (code?: number | null) => this.#closed(code));
        if (this.#state === 'dead') {
          channel.destroy();
          return;
        }
        this.#state = 'ready';
        channel.write(`${this.#nonce}\n`);
        if (job.items.every((i) => i.settled)) {
          // Everyone gave up while the channel opened: keep it for the next round, send nothing.
          this.#job = undefined;
          return;
        }
        this.#send(job);
      },
      (err: unknown) => {
        this.#die();
        for (const item of job.items) this.#settle(item, () => item.q.reject(err));
      },
    );
  }

  /** A later job on the open session (only when `idle`). */
  run(queued: QueuedExec[]): void {
    const job = this.#newJob(queued);
    this.#watch(job);
    this.#send(job);
  }

  /** Close the channel: the loop sees EOF, kills what runs and exits. */
  close(): void {
    this.#die();
  }

  #newJob(queued: QueuedExec[]): Job {
    const job: Job = {
      g: this.#next,
      items: queued.map((q) => {
        const max = q.options.maxOutputBytes ?? 4096;
        return { q, out: new OutputCap(max), err: new OutputCap(max), ends: 0, settled: false, off: () => {} };
      }),
      begun: false,
      outAt: 0,
      errAt: 0,
      xs: 0,
      stopAsked: false,
    };
    this.#next += queued.length;
    this.#job = job;
    return job;
  }

  #send(job: Job): void {
    let text = '';
    for (const item of job.items) text += commandLines(item.q.command, this.#nonce);
    this.#channel!.write(`${text}g ${job.g}\n`);
    this.host.counters.residentJobs++;
    this.host.counters.residentCommands += job.items.length;
  }

  /** Each command's deadline, from now on. */
  #watch(job: Job, tracker?: OpenTracker, opening?: AbortController): void {
    for (const item of job.items) {
      const { signal } = item.q.options;
      const onAbort = (): void => this.#aborted(job, item, tracker, opening);
      signal.addEventListener('abort', onAbort, { once: true });
      item.off = () => signal.removeEventListener('abort', onAbort);
    }
  }

  #aborted(job: Job, item: Item, tracker: OpenTracker | undefined, opening: AbortController | undefined): void {
    if (item.settled) return;
    const reason: unknown = item.q.options.signal.reason;
    if (!job.begun) {
      if (!isTimeout(reason)) this.#settle(item, () => item.q.reject(reason));
      else if (this.#state === 'opening') this.#settle(item, () => item.q.reject(this.conn.notReached(tracker?.step ?? 'open')));
      else
        this.#settle(item, () =>
          item.q.reject(TransportError.notReached(this.conn.target.vm, 'channel', `sshd at ${this.conn.where} did not answer on the command channel`)),
        );
      if (job.items.every((i) => i.settled)) {
        if (this.#state === 'opening') opening?.abort(new Error('nobody waits'));
        // Only a loop that already ran is wedged: a login shell still starting (a slow rc file) just runs late.
        else if (isTimeout(reason) && this.#proven) this.#wedged();
      }
      return;
    }
    const index = job.items.indexOf(item);
    if (index === job.outAt) {
      // It ran out of time itself: the service's failure, as on a channel of its own. Kill it in the guest.
      this.#settle(item, () => item.q.reject(reason));
      this.#kill(job);
      return;
    }
    if (index > job.outAt && isTimeout(reason)) {
      this.#settle(item, () =>
        item.q.reject(
          new TransportError(
            `VM ${this.conn.target.vm}: the command did not start within its timeout: it waited behind another check's command on the same channel, still running`,
            'channel',
          ),
        ),
      );
    } else this.#settle(item, () => item.q.reject(reason));
    // The others behind the slow one go to channels of their own once the job says which it did not start.
    if (!job.stopAsked && job.items.some((i, n) => n > job.outAt && !i.settled)) {
      job.stopAsked = true;
      this.#channel?.write('s\n');
    }
  }

  #kill(job: Job): void {
    if (job.killTimer || this.#job !== job) return;
    this.host.counters.residentKills++;
    job.stopAsked = true;
    this.#channel?.write('k\n');
    job.killTimer = setTimeout(() => {
      if (this.#job !== job) return;
      this.host.log(`VM ${this.conn.target.vm}: the guest did not confirm a killed command within ${KILL_GRACE_MS} ms; the command session is replaced`);
      this.#die();
      this.#ended(job);
    }, KILL_GRACE_MS);
    job.killTimer.unref();
  }

  /** Nothing came back from the guest before a deadline: drop the connection, as for a channel open sshd ignores. */
  #wedged(): void {
    const live = this.#live;
    if (live && !live.lost) {
      live.lost = new TransportError(
        `VM ${this.conn.target.vm}: sshd at ${this.conn.where} did not answer on the command channel in time; the connection was dropped and will be redialled on next use`,
        'timeout',
      );
      this.host.log(live.lost.message);
      live.client.destroy();
    }
    this.#die();
  }

  #data(stream: 'out' | 'err', chunk: Buffer): void {
    const job = this.#job;
    if (!job) return;
    const item = job.items[stream === 'out' ? job.outAt : job.errAt];
    if (item) (stream === 'out' ? item.out : item.err).push(chunk);
  }

  #mark(stream: 'out' | 'err', kind: string, a: number, b: number): void {
    const job = this.#job;
    if (!job) return;
    if (kind === 'h') {
      // The loop runs (the login shell could parse it); the reader half needs the runner's pid to signal it.
      this.#proven = true;
      if (Number.isInteger(a)) this.#channel?.write(`p ${a}\n`);
      return;
    }
    if (kind === 'b') {
      if (a === job.g) job.begun = true;
      return;
    }
    if (kind === 'x') {
      if (a === job.g && ++job.xs === 2) {
        this.#answered();
        this.#ended(job);
      }
      return;
    }
    if (kind !== 'e') return;
    const index = a - job.g;
    const item = job.items[index];
    if (!item) return;
    if (stream === 'out') job.outAt = index + 1;
    else job.errAt = index + 1;
    item.status = b;
    if (++item.ends < 2) return;
    if (job.killTimer && !item.settled && item.status === 137) {
      // Killed by our kill (it had just started when the kill came): it did not run to its end; it goes elsewhere.
      this.#handOver([item]);
      if (job.items.every((i) => i.ends === 2)) {
        this.#answered();
        this.#finish(job);
      }
      return;
    }
    this.#settle(item, () =>
      item.q.resolve({
        exitCode: Number.isInteger(item.status) ? item.status! : null,
        stdout: item.out.text(),
        stderr: item.err.text(),
        stdoutTruncated: item.out.truncated,
        stderrTruncated: item.err.truncated,
      } satisfies ExecResult),
    );
    if (job.items.every((i) => i.ends === 2)) {
      this.#answered();
      this.#finish(job);
    }
  }

  /** The job ended before its last command (stopped or killed): what it did not finish goes to channels of its own. */
  #ended(job: Job): void {
    this.#finish(job);
    this.#handOver(job.items.filter((i) => !i.settled && i.ends < 2));
  }

  #finish(job: Job): void {
    clearTimeout(job.killTimer);
    if (this.#job === job) this.#job = undefined;
  }

  /** The guest ended a job (its last end mark, or its stop marks): no keepalive probe is needed for another interval. */
  #answered(): void {
    if (this.#live && !this.#live.lost) heardFrom(this.#live.client);
  }

  #handOver(items: Item[]): void {
    const open = items.filter((i) => !i.settled);
    for (const item of open) item.off();
    const live = open.filter((i) => !i.q.options.signal.aborted);
    for (const item of open) {
      item.settled = true;
      if (item.q.options.signal.aborted) item.q.reject(item.q.options.signal.reason);
    }
    if (live.length) this.host.fallback(this.conn, live.map((i) => i.q));
  }

  #settle(item: Item, how: () => void): void {
    if (item.settled) return;
    item.settled = true;
    item.off();
    how();
  }

  #die(): void {
    if (this.#state === 'dead') return;
    this.#state = 'dead';
    this.#channel?.destroy();
  }

  #closed(code: number | null | undefined): void {
    this.#release?.();
    this.#release = undefined;
    const wasDead = this.#state === 'dead';
    this.#state = 'dead';
    const job = this.#job;
    this.#job = undefined;
    if (!job) return;
    clearTimeout(job.killTimer);
    const open = job.items.filter((i) => !i.settled);
    if (!open.length) return;
    if (!this.#proven && !this.#live?.lost && !wasDead) {
      // The login shell could not run the loop (zsh, csh, fish…): per-round channels for this VM from now on.
      this.conn.residentUnsupported = true;
      this.host.log(
        `VM ${this.conn.target.vm}: the guest's login shell did not run the resident command session (exit ${code ?? 'unknown'}); using a channel per round`,
      );
      this.#handOver(open);
      return;
    }
    if (wasDead && !this.#live?.lost) {
      // We closed it (a kill not confirmed in time, or the pool closing): commands that never started go elsewhere.
      this.#handOver(open.filter((i) => job.items.indexOf(i) > job.outAt || !job.begun));
    }
    const lost = this.#live?.lost;
    const err = lost
      ? new TransportError(`VM ${this.conn.target.vm}: the SSH connection to ${this.conn.where} was lost while a command ran; it will be redialled on next use`, 'closed', {
          cause: lost,
        })
      : new TransportError(`VM ${this.conn.target.vm}: the command session on ${this.conn.where} closed before this command's result arrived`, 'channel');
    for (const item of open) this.#settle(item, () => item.q.reject(err));
  }
}
