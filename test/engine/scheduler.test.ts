/**
 * The watch scheduler, on a fake clock: first runs spread, per-check intervals, ±10 % jitter without drift,
 * no catch-up bursts, rounds paced by the slowest check, and the same schedule for the same seed.
 */
import { describe, expect, it } from 'vitest';
import { CheckScheduler, seededRandom, type ScheduleItem } from '../../src/engine/scheduler.js';

const item = (key: string, intervalMs: number): ScheduleItem<string> => ({ key, intervalMs, data: key });

/** Run the schedule on a fake clock from 0 to `untilMs`, each run taking no time; the start times per key. */
function simulate(s: CheckScheduler<string>, untilMs: number): Map<string, number[]> {
  const starts = new Map<string, number[]>();
  for (let guard = 0; guard < 1_000_000; guard++) {
    const now = s.nextWake();
    if (now === undefined || now > untilMs) return starts;
    for (const e of s.takeDue(now)) {
      (starts.get(e.key) ?? starts.set(e.key, []).get(e.key)!).push(now);
      s.complete(e.key, now);
    }
  }
  throw new Error('simulation did not end');
}

describe('seededRandom', () => {
  it('is deterministic per seed, in [0, 1), and differs between seeds', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    // Roughly uniform: each tenth gets 100 ± 40 of 1000 draws.
    for (let d = 0; d < 10; d++) expect(xs.filter((x) => Math.floor(x * 10) === d).length).toBeGreaterThan(60);
  });
});

describe('CheckScheduler', () => {
  it('spreads the first runs of 100 VMs over min(interval, 5 s), not in the same millisecond', () => {
    const s = new CheckScheduler<string>({ random: seededRandom(1) });
    s.sync(Array.from({ length: 100 }, (_, i) => item(`vm-${i}`, 30_000)), 1000);
    const firsts = [...s.entries()].map((e) => e.nextDue);
    expect(Math.min(...firsts)).toBeGreaterThanOrEqual(1000);
    expect(Math.max(...firsts)).toBeLessThan(1000 + 5000);
    expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(4000);
    // At most a handful start within any 100 ms (uniform: 2 expected).
    const buckets = new Map<number, number>();
    for (const t of firsts) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
    expect(Math.max(...buckets.values())).toBeLessThanOrEqual(7);
    expect(new Set(firsts.map((t) => Math.floor(t))).size).toBeGreaterThan(95);
  });

  it('spreads a short interval over the interval itself', () => {
    const s = new CheckScheduler<string>({ random: seededRandom(2) });
    s.sync(Array.from({ length: 50 }, (_, i) => item(`vm-${i}`, 300)), 0);
    const firsts = [...s.entries()].map((e) => e.nextDue);
    expect(Math.max(...firsts)).toBeLessThan(300);
    expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(200);
  });

  it('runs each check on its own interval, within ±10 % between runs', () => {
    const s = new CheckScheduler<string>({ random: seededRandom(3) });
    s.sync([item('fast', 1000), item('slow', 5000), item('mid', 2500)], 0);
    const starts = simulate(s, 100_000);
    // Over 100 s: about 100, 20 and 40 runs.
    expect(starts.get('fast')!.length).toBeGreaterThanOrEqual(98);
    expect(starts.get('fast')!.length).toBeLessThanOrEqual(101);
    expect(starts.get('slow')!.length).toBeGreaterThanOrEqual(19);
    expect(starts.get('slow')!.length).toBeLessThanOrEqual(21);
    expect(starts.get('mid')!.length).toBeGreaterThanOrEqual(39);
    expect(starts.get('mid')!.length).toBeLessThanOrEqual(41);
    for (const [key, interval] of [['fast', 1000], ['slow', 5000], ['mid', 2500]] as const) {
      const t = starts.get(key)!;
      const gaps = t.slice(1).map((x, i) => x - t[i]!);
      // Consecutive jittered periods: each ±10 % around its anchor, so gaps stay within 0.8–1.2 intervals…
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(0.8 * interval - 1e-6);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(1.2 * interval + 1e-6);
      // …and they really vary (jitter), rather than all firing in lockstep.
      expect(new Set(gaps.map((g) => Math.round(g))).size).toBeGreaterThan(5);
    }
  });

  it('does not drift: run n stays within ±10 % of an interval of anchor + n·interval, however long it runs', () => {
    const s = new CheckScheduler<string>({ random: seededRandom(4) });
    s.sync([item('a', 200)], 0);
    const anchor = s.get('a')!.anchor;
    const starts = simulate(s, 200 * 5000).get('a')!;
    expect(starts.length).toBeGreaterThanOrEqual(4999);
    starts.forEach((t, n) => expect(Math.abs(t - (anchor + n * 200))).toBeLessThanOrEqual(20 + 1e-6));
  });

  it('is deterministic with a seed: the same seed gives the same schedule, another seed another', () => {
    const schedule = (seed: number) => {
      const s = new CheckScheduler<string>({ random: seededRandom(seed) });
      s.sync(Array.from({ length: 10 }, (_, i) => item(`vm-${i}`, 1000 + i * 100)), 0);
      return [...simulate(s, 20_000)].map(([k, t]) => [k, t.map((x) => x.toFixed(3))]);
    };
    expect(schedule(7)).toEqual(schedule(7));
    expect(schedule(7)).not.toEqual(schedule(8));
  });

  it('never hands out a check that is still running, and skips the periods an overrun missed (no catch-up burst)', () => {
    const s = new CheckScheduler<string>({ random: () => 0.5 }); // jitter offset 0
    s.sync([item('slow-probe', 1000)], 0);
    const first = s.nextWake()!;
    expect(s.takeDue(first).map((e) => e.key)).toEqual(['slow-probe']);
    expect(s.takeDue(first + 10_000)).toEqual([]); // still running
    expect(s.nextWake()).toBeUndefined();
    // It took 3.5 intervals: the next run is one, not three back-to-back.
    s.complete('slow-probe', first + 3500);
    const next = s.nextWake()!;
    expect(next).toBeGreaterThanOrEqual(first + 3500);
    expect(next).toBeLessThanOrEqual(first + 4000);
    s.takeDue(next);
    s.complete('slow-probe', next + 1);
    expect(s.nextWake()! - next).toBeGreaterThanOrEqual(500);
  });

  it('counts a round when every check has run once more: the slowest sets the pace', () => {
    const s = new CheckScheduler<string>({ random: seededRandom(5) });
    s.sync([item('fast', 100), item('slow', 1000)], 0);
    simulate(s, 3500);
    expect(s.rounds).toBe(3);
    expect(s.get('fast')!.runs).toBeGreaterThanOrEqual(30);
  });

  it('keeps the round count when a VM joins mid-watch, and drops entries that left (bounded)', () => {
    const s = new CheckScheduler<string>({ random: seededRandom(6) });
    s.sync([item('a', 100), item('b', 100)], 0);
    simulate(s, 1000);
    const before = s.rounds;
    expect(before).toBeGreaterThanOrEqual(9);
    s.sync([item('a', 100), item('b', 100), item('new-vm', 100)], 1000);
    expect(s.rounds).toBe(before);
    expect(s.get('new-vm')!.runs).toBe(before);
    expect(s.get('new-vm')!.nextDue).toBeLessThan(1100);
    s.sync([item('a', 100)], 1000);
    expect(s.size).toBe(1);
    expect(s.complete('b', 1001)).toBe(false); // a run that was in flight when its VM left
    expect(s.size).toBe(1);
  });

  it('a changed interval applies from the next run', () => {
    const s = new CheckScheduler<string>({ random: () => 0.5 });
    s.sync([item('a', 1000)], 0);
    simulate(s, 5000);
    s.sync([item('a', 200)], 5000);
    const starts = simulate(s, 7000).get('a')!;
    const gaps = starts.slice(1).map((x, i) => x - starts[i]!);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(240);
  });

  it("fires a VM's checks of one interval together, period after period (a group shares phase and jitter)", () => {
    const s = new CheckScheduler<string>({ random: seededRandom(9) });
    s.sync(
      [
        { ...item('web-1/api', 1000), group: 'web-1' },
        { ...item('web-1/disk', 1000), group: 'web-1' },
        { ...item('web-1/hourly', 5000), group: 'web-1' },
        { ...item('web-2/api', 1000), group: 'web-2' },
      ],
      0,
    );
    const starts = simulate(s, 20_000);
    expect(starts.get('web-1/disk')).toEqual(starts.get('web-1/api'));
    expect(starts.get('web-1/api')!.length).toBeGreaterThanOrEqual(19);
    // Another interval, or another VM: its own phase.
    expect(starts.get('web-1/hourly')![0]).not.toBe(starts.get('web-1/api')![0]);
    expect(starts.get('web-2/api')![0]).not.toBe(starts.get('web-1/api')![0]);
  });

  it('a slow check does not hold back the fast checks of its group', () => {
    const s = new CheckScheduler<string>({ random: () => 0.5 });
    s.sync([{ ...item('api', 1000), group: 'vm' }, { ...item('sleepy', 1000), group: 'vm' }], 0);
    const first = s.nextWake()!;
    expect(s.takeDue(first).map((e) => e.key).sort()).toEqual(['api', 'sleepy']);
    let now = first;
    for (let i = 1; i <= 5; i++) {
      s.complete('api', now + 10);
      now = s.nextWake()!;
      expect(now).toBe(first + i * 1000);
      expect(s.takeDue(now).map((e) => e.key)).toEqual(['api']);
    }
    expect(s.rounds).toBe(0); // sleepy has not finished its first run
    s.complete('sleepy', now + 500);
    expect(s.rounds).toBe(1);
    // It overran: it runs again at once (the periods it missed are not made up for)…
    expect(s.get('sleepy')!.nextDue).toBe(now + 500);
    s.takeDue(now + 500);
    // …and, quick this time, is back in step with its group.
    s.complete('sleepy', now + 510);
    expect(s.get('sleepy')!.nextDue).toBe(first + 6000);
    s.complete('api', now + 10);
    expect(s.get('api')!.nextDue).toBe(first + 6000);
  });

  it('sends runs due within 2 % of their interval (at most 1 s) out together, never earlier, still spread out', () => {
    /** Wake-ups per round over 10 rounds of `n` VMs, and how early the earliest run went. */
    const run = (n: number, intervalMs: number, options: ConstructorParameters<typeof CheckScheduler>[0] = {}) => {
      const s = new CheckScheduler<string>({ random: seededRandom(11), ...options });
      s.sync(Array.from({ length: n }, (_, i) => item(`vm-${i}`, intervalMs)), 0);
      let wakes = 0;
      let early = 0;
      const runs = new Map<string, number>();
      for (let now = s.nextWake()!; now < 10 * intervalMs; now = s.nextWake()!) {
        wakes++;
        for (const e of s.takeDue(now)) {
          early = Math.max(early, e.nextDue - now);
          runs.set(e.key, (runs.get(e.key) ?? 0) + 1);
          s.complete(e.key, now + 5);
        }
      }
      return { wakesPerRound: wakes / 10, early, runs: [...runs.values()] };
    };
    const alone = run(200, 30_000, { gather: 0 });
    expect(alone.early).toBe(0);
    expect(alone.wakesPerRound).toBeGreaterThan(190); // every VM on its own
    const together = run(200, 30_000);
    expect(together.early).toBeGreaterThan(300);
    expect(together.early).toBeLessThanOrEqual(600); // 2 % of 30 s
    expect(together.wakesPerRound).toBeLessThan(40);
    expect(together.wakesPerRound).toBeGreaterThan(10); // not one burst: the jitter still spreads them
    // Gathering never adds or drops a run: each VM ran once per period, as alone.
    expect(Math.min(...together.runs)).toBe(Math.min(...alone.runs));
    expect(Math.max(...together.runs)).toBe(Math.max(...alone.runs));
    // A long interval gathers at most 1 s ahead.
    expect(run(50, 600_000).early).toBeLessThanOrEqual(1000);
  });

  it('refuses an interval that is not positive', () => {
    expect(() => new CheckScheduler<string>().sync([item('a', 0)], 0)).toThrow(/interval of a must be > 0/);
  });

  it("takes a group's due checks in the config's order, however they completed; an entry synced again keeps its place", () => {
    const s = new CheckScheduler<string>({ random: seededRandom(5) });
    const group = (vm: string) => ['ping', 'disk', 'memory'].map((c) => ({ ...item(`${vm}/${c}`, 10_000), group: vm }));
    s.sync([...group('a'), ...group('b')], 0);
    let now = s.nextWake()!;
    const first = s.takeDue(now + 5000).map((e) => e.key);
    expect(first).toHaveLength(6);
    // Completed in reverse order: the next period still takes them in config order, VM by VM.
    for (const key of [...first].reverse()) s.complete(key, now + 5000);
    s.sync([...group('a'), ...group('b')], now + 5000);
    now = s.nextWake()!;
    const second = s.takeDue(now + 2000).map((e) => e.key);
    expect(second.filter((k) => k.startsWith('a/'))).toEqual(['a/ping', 'a/disk', 'a/memory']);
    expect(second.filter((k) => k.startsWith('b/'))).toEqual(['b/ping', 'b/disk', 'b/memory']);
    // Nothing is due twice, and nothing while running.
    expect(s.takeDue(now + 60_000)).toEqual([]);
    expect(s.nextWake()).toBeUndefined();
  });
});
