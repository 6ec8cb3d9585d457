/**
 * `health check`'s progress line (src/cli/progress.ts) on a fake clock: when it appears, what it says, how
 * often it is redrawn, that nothing else on stderr lands inside it, and that it is gone before the report.
 * The engine's side (the events a real round emits) is tested at the end against a loopback TCP server.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRound, elapsed, interactive, StatusLine, type ProgressClock } from '../../src/cli/progress.js';
import { parseConfig } from '../../src/config/load.js';
import { runFleetRound, type FleetProgress } from '../../src/engine/fleet.js';
import { SshPool } from '../../src/transport/ssh-pool.js';

const ERASE = '\r\x1b[2K';

/** Timers that fire only when the test moves time on. */
class FakeClock implements ProgressClock {
  t = 0;
  private timers: { every: number; next: number; fn: () => void }[] = [];
  now = () => this.t;
  every = (ms: number, fn: () => void) => {
    const timer = { every: ms, next: this.t + ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  };
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      this.t = due.next;
      due.next += due.every;
      due.fn();
    }
    this.t = end;
  }
  get pending(): number {
    return this.timers.length;
  }
}

/** A terminal that records each write. */
function terminal(columns = 100) {
  const writes: string[] = [];
  return { writes, stream: { isTTY: true, columns, write: (s: string) => writes.push(s) }, text: () => writes.join('') };
}

function setup(opts: { live?: boolean; columns?: number } = {}) {
  const clock = new FakeClock();
  const term = terminal(opts.columns);
  const line = new StatusLine(term.stream, { live: opts.live ?? true, clock });
  return { clock, term, line };
}

describe('the progress line', () => {
  it('a round that ends within a second writes nothing at all', () => {
    const { clock, term, line } = setup();
    line.beginRound();
    line.onProgress({ kind: 'targets', total: 2 });
    line.onProgress({ kind: 'vm-started', vm: 'web-1' });
    clock.advance(900);
    line.onProgress({ kind: 'vm-finished', vm: 'web-1' });
    line.endRound();
    line.close();
    expect(term.writes).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('a slow round: VMs done / total and the slowest still running, from one second on, then erased', () => {
    const { clock, term, line } = setup();
    line.beginRound();
    line.onProgress({ kind: 'targets', total: 3 });
    line.onProgress({ kind: 'vm-started', vm: 'db-1' });
    clock.advance(200);
    line.onProgress({ kind: 'vm-started', vm: 'web-1' });
    clock.advance(700);
    expect(term.writes).toEqual([]);
    clock.advance(300); // t = 1.2 s
    expect(term.writes).toEqual([`${ERASE}clonebox: 0/3 VMs checked · slowest still running: db-1 (1.0s)`]);
    line.onProgress({ kind: 'vm-finished', vm: 'db-1' });
    line.onProgress({ kind: 'vm-started', vm: 'web-2' });
    clock.advance(300); // t = 1.5 s, a tick: web-1 has run 1.3 s
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: 1/3 VMs checked · slowest still running: web-1 (1.3s)`);
    line.onProgress({ kind: 'vm-finished', vm: 'web-1' });
    line.onProgress({ kind: 'vm-finished', vm: 'web-2' });
    clock.advance(250);
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: 3/3 VMs checked`);
    line.endRound();
    expect(term.writes.at(-1)).toBe(ERASE);
    const before = term.writes.length;
    line.close(); // nothing left to erase
    expect(term.writes.length).toBe(before);
    expect(clock.pending).toBe(0);
  });

  it('is redrawn at most four times a second, and not at all when nothing changed', () => {
    const { clock, term, line } = setup();
    line.beginRound();
    line.onProgress({ kind: 'targets', total: 1 });
    line.onProgress({ kind: 'vm-started', vm: 'slow' });
    clock.advance(11_000);
    // From 1 s to 11 s: one draw per 250 ms tick at most.
    expect(term.writes.length).toBeLessThanOrEqual(41);
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: 0/1 VMs checked · slowest still running: slow (11.0s)`);
    line.onProgress({ kind: 'vm-finished', vm: 'slow' });
    clock.advance(250);
    const n = term.writes.length;
    clock.advance(5000); // "1/1 VMs checked" does not change: no redraw
    expect(term.writes.length).toBe(n);
    line.close();
    expect(term.writes.at(-1)).toBe(ERASE);
  });

  it('says it is finding VMs while discovery runs', () => {
    const { clock, term, line } = setup();
    line.beginRound();
    clock.advance(1500);
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: finding VMs (1.5s)`);
    line.close();
  });

  it('another stderr line never lands inside it: erased, the line written, then drawn again, in one write', () => {
    const { clock, term, line } = setup();
    line.stderr.write('clonebox: before the round\n'); // nothing drawn: passed through as is
    line.beginRound();
    line.onProgress({ kind: 'targets', total: 1 });
    line.onProgress({ kind: 'vm-started', vm: 'web-1' });
    clock.advance(1000);
    line.stderr.write('clonebox: action restart web-1\n');
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: action restart web-1\nclonebox: 0/1 VMs checked · slowest still running: web-1 (1.0s)`);
    line.close();
    const lines = term.text().split('\n');
    // Every finished line is exactly what was written (the last one holds only the erased progress).
    expect(lines.slice(0, -1).map((l) => l.split(ERASE).at(-1))).toEqual(['clonebox: before the round', 'clonebox: action restart web-1']);
    expect(lines.at(-1)!.endsWith(ERASE)).toBe(true);
  });

  it('fits one terminal row, so "\\r" can erase it', () => {
    const { clock, term, line } = setup({ columns: 40 });
    line.beginRound();
    line.onProgress({ kind: 'targets', total: 120 });
    line.onProgress({ kind: 'vm-started', vm: 'a-very-long-domain-name-from-libvirt' });
    clock.advance(1000);
    const drawn = term.writes.at(-1)!.slice(ERASE.length);
    expect([...drawn].length).toBeLessThanOrEqual(39);
    expect(drawn).toMatch(/^clonebox: 0\/120 VMs checked · .*…$/);
    line.close();
  });

  it('when not live (not a terminal) it writes nothing of its own; other lines pass through unchanged', () => {
    const { clock, term, line } = setup({ live: false });
    line.beginRound();
    line.onProgress({ kind: 'targets', total: 1 });
    line.onProgress({ kind: 'vm-started', vm: 'web-1' });
    clock.advance(5000);
    line.hold('clonebox: waiting');
    line.stderr.write('clonebox: a log line\n');
    line.endRound();
    line.close();
    expect(term.writes).toEqual(['clonebox: a log line\n']);
    expect(clock.pending).toBe(0);
  });
});

describe('with --wait: one owner of the line at a time', () => {
  it("the wait's line between rounds, a slow round's progress while it runs, the wait's line again after", () => {
    const { clock, term, line } = setup();
    line.hold('clonebox: 0/1 VMs ready, 4m left; waiting for web-2 (no address yet)');
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: 0/1 VMs ready, 4m left; waiting for web-2 (no address yet)`);
    line.beginRound();
    line.onProgress({ kind: 'targets', total: 1 });
    line.onProgress({ kind: 'vm-started', vm: 'web-2' });
    clock.advance(500);
    expect(term.writes.length).toBe(1); // a round under a second leaves the wait's line alone
    clock.advance(1000);
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: 0/1 VMs checked · slowest still running: web-2 (1.5s)`);
    line.onProgress({ kind: 'vm-finished', vm: 'web-2' });
    line.endRound();
    expect(term.writes.at(-1)).toBe(`${ERASE}clonebox: 0/1 VMs ready, 4m left; waiting for web-2 (no address yet)`);
    line.hold(undefined); // the final line is printed as a line of its own
    line.stderr.write('clonebox: gate passed after 3s (2 rounds)\n');
    expect(term.writes.slice(-2)).toEqual([ERASE, 'clonebox: gate passed after 3s (2 rounds)\n']);
    line.close();
    expect(term.writes.at(-1)).toBe('clonebox: gate passed after 3s (2 rounds)\n');
  });
});

describe('its text', () => {
  it.each([
    ['under a minute, tenths', 4200, '4.2s'],
    ['zero', 0, '0.0s'],
    ['minutes and seconds', 65_400, '1m05s'],
    ['never negative', -5, '0.0s'],
  ])('elapsed: %s', (_why, ms, text) => expect(elapsed(ms)).toBe(text));

  it('the slowest is the VM running longest; a name with control characters is shown escaped', () => {
    const running = new Map([
      ['web-1', 3000],
      ['evil\x1b[2J', 1000],
      ['web-2', 2000],
    ]);
    expect(describeRound({ startedAt: 0, total: 5, done: 2, running }, 5200)).toBe('clonebox: 2/5 VMs checked · slowest still running: evil\\x1b[2J (4.2s)');
  });

  it.each([
    ['a terminal', { isTTY: true }, { TERM: 'xterm-256color' }, true],
    ['a pipe, a file, cron', { isTTY: false }, { TERM: 'xterm' }, false],
    ['TERM=dumb cannot redraw in place: nothing', { isTTY: true }, { TERM: 'dumb' }, false],
    ['CI with a TTY keeps a log: nothing', { isTTY: true }, { TERM: 'xterm', CI: 'true' }, false],
    ['CI=false is not CI', { isTTY: true }, { TERM: 'xterm', CI: 'false' }, true],
    ['NO_COLOR is about colour: the line has none anyway', { isTTY: true }, { TERM: 'xterm', NO_COLOR: '1' }, true],
  ])('interactive: %s', (_why, stream, env, expected) => expect(interactive(stream, env)).toBe(expected));
});

// 127.0.0.2, not 127.0.0.1: "127.0.0.1" in a check means the guest (through SSH); any other loopback address is the host's.
describe('the engine tells each VM start and end (a real round, host-side TCP checks on loopback)', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const config = () =>
    parseConfig(
      [
        'health_checks:',
        `  - {name: port, type: tcp, host: "{{address}}", port: ${port}}`,
        'vms:',
        '  a: {address: 127.0.0.2}',
        '  b: {address: 127.0.0.2}',
        '  c: {address: 127.0.0.2}',
      ].join('\n'),
      'test.yaml',
    );

  it('the total first, then a start and an end per VM, never more running than --concurrency', async () => {
    const events: FleetProgress[] = [];
    let running = 0;
    let most = 0;
    const pool = new SshPool();
    try {
      const r = await runFleetRound({
        config: config(),
        selectors: [],
        all: false,
        concurrency: 2,
        backend: () => Promise.reject(new Error('libvirt is not needed: every VM has an address')),
        pool,
        onProgress: (e) => {
          events.push(e);
          if (e.kind === 'vm-started') most = Math.max(most, ++running);
          if (e.kind === 'vm-finished') running--;
        },
      });
      expect(r.report.summary.overall_status).toBe('HEALTHY');
    } finally {
      await pool.close();
    }
    expect(events[0]).toEqual({ kind: 'targets', total: 3 });
    for (const vm of ['a', 'b', 'c']) {
      const started = events.findIndex((e) => e.kind === 'vm-started' && e.vm === vm);
      const finished = events.findIndex((e) => e.kind === 'vm-finished' && e.vm === vm);
      expect(started).toBeGreaterThan(0);
      expect(finished).toBeGreaterThan(started);
    }
    expect(events).toHaveLength(7);
    expect(most).toBeLessThanOrEqual(2);
  });

  it('a listener that throws changes no verdict', async () => {
    const pool = new SshPool();
    try {
      const r = await runFleetRound({
        config: config(),
        selectors: [],
        all: false,
        concurrency: 8,
        backend: () => Promise.reject(new Error('libvirt is not needed')),
        pool,
        onProgress: () => {
          throw new Error('a broken terminal');
        },
      });
      expect(r.report.summary.vms).toMatchObject({ total: 3, healthy: 3 });
    } finally {
      await pool.close();
    }
  });
});
