import { describe, expect, it } from 'vitest';
import {
  ActionGuard,
  advance,
  advanceReports,
  policyFromVms,
  replay,
  type CheckState,
  type ResultInput,
  type StateMap,
  type Thresholds,
} from '../../src/engine/state.js';
import type { CheckResult, HealthStatus, VMHealthReport } from '../../src/report.js';

const CODE: Record<string, HealthStatus> = { H: 'HEALTHY', D: 'DEGRADED', U: 'UNHEALTHY', '?': 'UNKNOWN' };
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (i: number) => new Date(T0 + i * 60_000).toISOString();

/** Results from a compact history: "HUU?" = healthy, unhealthy, unhealthy, unknown, one minute apart. */
function results(history: string, from = 0): ResultInput[] {
  return [...history].map((c, i) => ({ status: CODE[c]!, message: `result ${from + i}`, timestamp: at(from + i) }));
}

const F3S1: Thresholds = { failure_threshold: 3, success_threshold: 1 };
const F3S2: Thresholds = { failure_threshold: 3, success_threshold: 2 };
const F1S1: Thresholds = { failure_threshold: 1, success_threshold: 1 };

interface Row {
  /** Matches the row number in docs/state.md. */
  row: number;
  why: string;
  before: string;
  result: string;
  t: Thresholds;
  state: HealthStatus;
  hard: boolean;
  reported: HealthStatus;
  failures: number;
  successes: number;
  streak?: string;
  transition?: [HealthStatus | null, HealthStatus];
  action?: 'on_failure' | 'on_recovery';
}

// Each row: the history before, one more result, what the state machine must make of it.
const TABLE: Row[] = [
  { row: 1, why: 'a new check that passes is HEALTHY at once', before: '', result: 'H', t: F3S1, state: 'HEALTHY', hard: true, reported: 'HEALTHY', failures: 0, successes: 1, transition: [null, 'HEALTHY'] },
  { row: 2, why: 'a new check that fails is only soft-failing: one failure is not an outage', before: '', result: 'U', t: F3S1, state: 'DEGRADED', hard: false, reported: 'DEGRADED', failures: 1, successes: 0, streak: 'failing 1/3', transition: [null, 'DEGRADED'] },
  { row: 3, why: 'with failure_threshold 1 the first failure is the hard UNHEALTHY state, and acts', before: '', result: 'U', t: F1S1, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 1, successes: 0, transition: [null, 'UNHEALTHY'], action: 'on_failure' },
  { row: 4, why: 'a new check with a warning is DEGRADED, and that needs no threshold', before: '', result: 'D', t: F3S1, state: 'DEGRADED', hard: true, reported: 'DEGRADED', failures: 0, successes: 0, transition: [null, 'DEGRADED'] },
  { row: 5, why: 'a new check that cannot be evaluated has no state yet: UNKNOWN, no transition', before: '', result: '?', t: F3S1, state: 'UNKNOWN', hard: true, reported: 'UNKNOWN', failures: 0, successes: 0 },
  { row: 6, why: 'healthy stays healthy', before: 'H', result: 'H', t: F3S1, state: 'HEALTHY', hard: true, reported: 'HEALTHY', failures: 0, successes: 2 },
  { row: 7, why: 'healthy → one failure: soft DEGRADED, 1/3', before: 'H', result: 'U', t: F3S1, state: 'DEGRADED', hard: false, reported: 'DEGRADED', failures: 1, successes: 0, streak: 'failing 1/3', transition: ['HEALTHY', 'DEGRADED'] },
  { row: 8, why: 'a second failure stays soft: 2/3, no new transition', before: 'HU', result: 'U', t: F3S1, state: 'DEGRADED', hard: false, reported: 'DEGRADED', failures: 2, successes: 0, streak: 'failing 2/3' },
  { row: 9, why: 'the failure_threshold-th failure is the hard UNHEALTHY state and fires on_failure', before: 'HUU', result: 'U', t: F3S1, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 3, successes: 0, transition: ['DEGRADED', 'UNHEALTHY'], action: 'on_failure' },
  { row: 9, why: 'a check failing from its first result reaches UNHEALTHY at the threshold too', before: 'UU', result: 'U', t: F3S1, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 3, successes: 0, transition: ['DEGRADED', 'UNHEALTHY'], action: 'on_failure' },
  { row: 9, why: 'a warning in a failing streak neither breaks nor extends it: U D U U is three failures', before: 'HUDU', result: 'U', t: F3S1, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 3, successes: 0, transition: ['DEGRADED', 'UNHEALTHY'], action: 'on_failure' },
  { row: 9, why: 'from a warning, failure_threshold 1 goes straight to UNHEALTHY', before: 'D', result: 'U', t: F1S1, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 1, successes: 0, transition: ['DEGRADED', 'UNHEALTHY'], action: 'on_failure' },
  { row: 10, why: 'a pass below the threshold ends a soft failure: HEALTHY, no action (there was no outage)', before: 'HUU', result: 'H', t: F3S2, state: 'HEALTHY', hard: true, reported: 'HEALTHY', failures: 0, successes: 1, transition: ['DEGRADED', 'HEALTHY'] },
  { row: 19, why: 'an unknown in a failing streak does not reset it: U ? U U is three failures', before: 'HU?U', result: 'U', t: F3S1, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 3, successes: 0, transition: ['DEGRADED', 'UNHEALTHY'], action: 'on_failure' },
  { row: 11, why: 'healthy → a warning (disk 85%): DEGRADED, hard, no streak', before: 'H', result: 'D', t: F3S1, state: 'DEGRADED', hard: true, reported: 'DEGRADED', failures: 0, successes: 0, transition: ['HEALTHY', 'DEGRADED'] },
  { row: 12, why: 'a warning that clears is HEALTHY again at once (success_threshold is for outages)', before: 'HD', result: 'H', t: F3S2, state: 'HEALTHY', hard: true, reported: 'HEALTHY', failures: 0, successes: 1, transition: ['DEGRADED', 'HEALTHY'] },
  { row: 13, why: 'a warning during a soft failure shows DEGRADED and keeps the failure count', before: 'HU', result: 'D', t: F3S1, state: 'DEGRADED', hard: false, reported: 'DEGRADED', failures: 1, successes: 0, streak: 'failing 1/3' },
  { row: 14, why: 'more failures while UNHEALTHY: no transition, and the action does not fire again', before: 'UUU', result: 'U', t: F3S1, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 4, successes: 0 },
  { row: 15, why: 'unhealthy → a pass below success_threshold: still UNHEALTHY, soft recovery 1/2', before: 'UUU', result: 'H', t: F3S2, state: 'UNHEALTHY', hard: false, reported: 'UNHEALTHY', failures: 0, successes: 1, streak: 'recovering 1/2' },
  { row: 16, why: 'success_threshold passes end the outage: HEALTHY, hard, on_recovery', before: 'UUUH', result: 'H', t: F3S2, state: 'HEALTHY', hard: true, reported: 'HEALTHY', failures: 0, successes: 2, transition: ['UNHEALTHY', 'HEALTHY'], action: 'on_recovery' },
  { row: 16, why: 'with success_threshold 1 the first pass recovers', before: 'UUU', result: 'H', t: F3S1, state: 'HEALTHY', hard: true, reported: 'HEALTHY', failures: 0, successes: 1, transition: ['UNHEALTHY', 'HEALTHY'], action: 'on_recovery' },
  { row: 17, why: 'a failure during recovery is the hard outage again, without a second on_failure', before: 'UUUH', result: 'U', t: F3S2, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 1, successes: 0 },
  { row: 17, why: '…and recovery then starts from zero', before: 'UUUHU', result: 'H', t: F3S2, state: 'UNHEALTHY', hard: false, reported: 'UNHEALTHY', failures: 0, successes: 1, streak: 'recovering 1/2' },
  { row: 18, why: 'a warning does not clear an outage and resets the recovery streak', before: 'UUUH', result: 'D', t: F3S2, state: 'UNHEALTHY', hard: true, reported: 'UNHEALTHY', failures: 0, successes: 0 },
  { row: 18, why: '…so H D H is not two consecutive passes', before: 'UUUHD', result: 'H', t: F3S2, state: 'UNHEALTHY', hard: false, reported: 'UNHEALTHY', failures: 0, successes: 1, streak: 'recovering 1/2' },
  { row: 19, why: 'unknown while healthy: reported UNKNOWN, state and streaks kept', before: 'HH', result: '?', t: F3S1, state: 'HEALTHY', hard: true, reported: 'UNKNOWN', failures: 0, successes: 2 },
  { row: 19, why: 'unknown during a soft failure: the streak is kept, not advanced', before: 'HUU', result: '?', t: F3S1, state: 'DEGRADED', hard: false, reported: 'UNKNOWN', failures: 2, successes: 0, streak: 'failing 2/3' },
  { row: 19, why: 'unknown while unhealthy: no recovery, no action', before: 'UUU', result: '?', t: F3S1, state: 'UNHEALTHY', hard: true, reported: 'UNKNOWN', failures: 3, successes: 0 },
  { row: 19, why: 'unknown during recovery: the recovery streak is kept, not advanced', before: 'UUUH', result: '?', t: F3S2, state: 'UNHEALTHY', hard: false, reported: 'UNKNOWN', failures: 0, successes: 1, streak: 'recovering 1/2' },
  { row: 19, why: 'unknowns between passes do not break the recovery: H ? H is two passes', before: 'UUUH?', result: 'H', t: F3S2, state: 'HEALTHY', hard: true, reported: 'HEALTHY', failures: 0, successes: 2, transition: ['UNHEALTHY', 'HEALTHY'], action: 'on_recovery' },
  { row: 20, why: 'after only unknowns, the first real result starts like a new check (from UNKNOWN)', before: '??', result: 'U', t: F3S1, state: 'DEGRADED', hard: false, reported: 'DEGRADED', failures: 1, successes: 0, streak: 'failing 1/3', transition: ['UNKNOWN', 'DEGRADED'] },
];

describe('the threshold state machine (docs/state.md)', () => {
  it.each(TABLE)('row $row: $why', (row) => {
    const prev = replay(results(row.before), row.t);
    const input = results(row.result, row.before.length)[0]!;
    const o = advance(prev, input, row.t);
    expect({
      state: o.next.state,
      hard: o.next.hard,
      reported: o.status,
      failures: o.next.consecutive_failures,
      successes: o.next.consecutive_successes,
      streak: o.streak,
      transition: o.transition ? [o.transition.from, o.transition.to] : undefined,
      action: o.action,
    }).toEqual({
      state: row.state,
      hard: row.hard,
      reported: row.reported,
      failures: row.failures,
      successes: row.successes,
      streak: row.streak,
      transition: row.transition,
      action: row.action,
    });
    expect(o.next.last_result_status).toBe(input.status);
    expect(o.next.last_message).toBe(input.message);
    if (o.transition) {
      expect(o.transition.hard).toBe(row.hard);
      expect(o.next.last_change).toBe(input.timestamp);
    } else if (prev && prev.state !== 'UNKNOWN') {
      expect(o.next.last_change).toBe(prev.last_change);
    }
  });

  it('does not modify the previous state', () => {
    const prev = replay(results('HU'), F3S1)!;
    const copy: CheckState = { ...prev };
    advance(prev, results('U', 2)[0]!, F3S1);
    expect(prev).toEqual(copy);
  });
});

describe('actions over long runs', () => {
  // Every action fired over a history, as "on_failure@i".
  const actions = (history: string, t: Thresholds) => {
    let s: CheckState | undefined;
    const fired: string[] = [];
    results(history).forEach((r, i) => {
      const o = advance(s, r, t);
      if (o.action) fired.push(`${o.action}@${i}`);
      s = o.next;
    });
    return fired;
  };

  it.each([
    ['one outage: on_failure once at the 3rd failure, on_recovery once', 'HUUUUUUHH', F3S1, ['on_failure@3', 'on_recovery@7']],
    ['flapping below the threshold never acts', 'HUUHUUHUUH', F3S1, []],
    ['unknowns never act, whatever comes around them', 'H????UU??U??', F3S1, ['on_failure@9']],
    ['recovery needs success_threshold passes in a row', 'UUUHUHHH', F3S2, ['on_failure@2', 'on_recovery@6']],
    ['warnings never act', 'HDDDDDH', F3S1, []],
    ['two outages act twice', 'UUUHUUUH', F3S1, ['on_failure@2', 'on_recovery@3', 'on_failure@6', 'on_recovery@7']],
  ] as const)('%s', (_why, history, t, expected) => expect(actions(history, t)).toEqual(expected));

  it('cron every minute: three failing runs reach UNHEALTHY, as watch does', () => {
    let s: CheckState | undefined;
    const seen: string[] = [];
    for (const r of results('UUU')) {
      const o = advance(s, r, F3S1);
      seen.push(`${o.status}${o.streak ? ` ${o.streak}` : ''}`);
      s = o.next;
    }
    expect(seen).toEqual(['DEGRADED failing 1/3', 'DEGRADED failing 2/3', 'UNHEALTHY']);
  });

  it('treats a threshold below 1 as 1', () => {
    expect(advance(undefined, results('U')[0]!, { failure_threshold: 0, success_threshold: 0 }).action).toBe('on_failure');
  });
});

describe('advanceReports: a round of VM reports', () => {
  const check = (name: string, status: HealthStatus, i: number, critical = true): CheckResult => ({
    name,
    type: 'http',
    status,
    timestamp: at(i),
    duration_ms: 5,
    message: status === 'HEALTHY' ? 'HTTP 200' : status === 'UNKNOWN' ? 'ssh: connection refused' : 'connection refused',
    critical,
    transport: 'ssh-tunnel',
    details: {},
  });
  const report = (checks: CheckResult[], i: number): VMHealthReport => ({
    vm_name: 'web-1',
    overall_status: 'HEALTHY',
    timestamp: at(i),
    duration_ms: 10,
    checks,
    counts: { total: 0, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 },
    total_checks: 0,
    healthy_checks: 0,
    unhealthy_checks: 0,
    degraded_checks: 0,
  });
  const policy = policyFromVms([
    { name: 'web-1', checks: [{ name: 'api', failure_threshold: 2, success_threshold: 1, on_failure: 'systemctl restart api' }] },
  ]);

  it('reports the thresholded status, says why, and recomputes the VM status', () => {
    let states: StateMap = new Map();
    const round = (status: HealthStatus, i: number) => {
      const out = advanceReports([report([check('api', status, i), check('disk', 'HEALTHY', i)], i)], states, policy);
      states = out.states;
      return out;
    };
    const r1 = round('UNHEALTHY', 0);
    expect(r1.reports[0]!.checks[0]!.status).toBe('DEGRADED');
    expect(r1.reports[0]!.checks[0]!.message).toBe('connection refused (soft: failing 1/2)');
    expect(r1.reports[0]!.checks[0]!.details.threshold).toMatchObject({ result_status: 'UNHEALTHY', state: 'DEGRADED', hard: false, streak: 'failing 1/2' });
    expect(r1.reports[0]!.overall_status).toBe('DEGRADED');
    expect(r1.checks.find((c) => c.check === 'disk')!.policy).toEqual({ failure_threshold: 3, success_threshold: 1 });

    const r2 = round('UNHEALTHY', 1);
    expect(r2.reports[0]!.overall_status).toBe('UNHEALTHY');
    expect(r2.reports[0]!.counts).toMatchObject({ total: 2, healthy: 1, unhealthy: 1 });
    expect(r2.checks[0]!.outcome.action).toBe('on_failure');
    expect(r2.checks[0]!.policy.on_failure).toBe('systemctl restart api');

    const r3 = round('UNKNOWN', 2);
    expect(r3.reports[0]!.checks[0]!.status).toBe('UNKNOWN');
    expect(r3.reports[0]!.checks[0]!.message).toBe('ssh: connection refused (last known state: UNHEALTHY)');
    expect(states.get('web-1')!.get('api')!.state).toBe('UNHEALTHY');
  });

  it('leaves the previous state map untouched', () => {
    const prev: StateMap = new Map();
    advanceReports([report([check('api', 'HEALTHY', 0)], 0)], prev);
    expect(prev.size).toBe(0);
  });
});

describe('ActionGuard: at most N runs per window', () => {
  const guard = new ActionGuard({ max_runs: 3, window_ms: 600_000 });
  const now = T0 + 3_600_000;
  it.each([
    ['no runs before', [], true],
    ['two runs in the window', [now - 60_000, now - 120_000], true],
    ['three runs in the window: the fourth is suppressed', [now - 60_000, now - 120_000, now - 540_000], false],
    ['runs older than the window do not count', [now - 60_000, now - 120_000, now - 600_000, now - 900_000], true],
  ] as const)('%s', (_why, runs, allowed) => expect(guard.decide('on_failure', runs, now).allowed).toBe(allowed));

  it('says why and when the action may run again', () => {
    const d = guard.decide('on_failure', [now - 60_000, now - 120_000, now - 540_000], now);
    expect(d.reason).toBe(
      `on_failure suppressed: it already ran 3 times in the last 10m (at most 3 per 10m); it may run again after ${new Date(now + 60_000).toISOString()}`,
    );
  });

  it('defaults to 3 per 10 minutes', () => expect(new ActionGuard().policy).toEqual({ max_runs: 3, window_ms: 600_000 }));
});
