/**
 * When alerting fires, resolves, repeats, flaps, holds back and stays silent: sequences of results through the real
 * state machine (src/engine/state.ts) and `decideAlerts`, one row per rule with its reason.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ALERT_SETTINGS, decideAlerts, vmReachability, type AlertSettings } from '../../src/alerting/decide.js';
import { flapChange, flapPercent, pushHistory } from '../../src/alerting/flapping.js';
import type { AlertNotification, AlertStateMap, Silence } from '../../src/alerting/types.js';
import { advance, type CheckState } from '../../src/engine/state.js';
import type { HealthStatus, VMHealthReport } from '../../src/report.js';

const T0 = Date.parse('2026-05-01T00:00:00Z');
const MIN = 60_000;

/** A step: a result of the check, or the VM not reachable (no result: its checks were UNKNOWN). */
type Step = HealthStatus | 'unreachable';

interface SimOptions {
  failure_threshold?: number;
  success_threshold?: number;
  alert_on?: 'unhealthy' | 'degraded';
  settings?: Partial<AlertSettings>;
  silences?: Silence[];
  /** ms between steps */
  every?: number;
}

/** Runs the steps; returns each step's notifications as `event:state` strings (VM-level ones prefixed `vm:`). */
function simulate(steps: Step[], o: SimOptions = {}): string[][] {
  const settings = { ...DEFAULT_ALERT_SETTINGS, ...o.settings };
  let state: CheckState | undefined;
  let alerts: AlertStateMap = new Map();
  const out: string[][] = [];
  steps.forEach((step, i) => {
    const now = T0 + i * (o.every ?? MIN);
    const raw: HealthStatus = step === 'unreachable' ? 'UNKNOWN' : step;
    const adv = advance(state, { status: raw, message: `result ${i}`, timestamp: new Date(now).toISOString() }, {
      failure_threshold: o.failure_threshold ?? 3,
      success_threshold: o.success_threshold ?? 1,
    });
    state = adv.next;
    const d = decideAlerts({
      vms: [{ vm: 'web-1', reachable: step === 'unreachable' ? false : true, reason: 'the VM is shut off', at: now, tags: ['web'] }],
      checks: [{ vm: 'web-1', check: 'api', type: 'http', tags: ['web'], critical: true, alert_on: o.alert_on ?? 'unhealthy', raw, state, message: `result ${i}`, at: now }],
      prev: alerts,
      silences: o.silences ?? [],
      settings,
      now,
    });
    alerts = new Map([...alerts, ...d.states]);
    out.push(d.notifications.map((n: AlertNotification) => `${n.scope === 'vm' ? 'vm:' : ''}${n.event}:${n.state}`));
  });
  return out;
}

const flat = (x: string[][]) => x.flatMap((s, i) => s.map((e) => `${i}:${e}`));
const H = 'HEALTHY', U = 'UNHEALTHY', D = 'DEGRADED', X = 'unreachable';

describe('decideAlerts', () => {
  it.each<[string, Step[], SimOptions, string[]]>([
    ['fires on the hard transition only (failure_threshold 3), resolves on the way back', [H, U, U, U, U, H], {}, ['3:firing:UNHEALTHY', '5:resolved:HEALTHY']],
    ['soft failures never alert', [H, U, U, H, U, U, H], {}, []],
    ['success_threshold 2: resolves on the second pass, not the first', [U, H, H], { failure_threshold: 1, success_threshold: 2 }, ['0:firing:UNHEALTHY', '2:resolved:HEALTHY']],
    ['DEGRADED alone does not alert by default', [D, D, D, H], {}, []],
    ['alert_on: degraded fires on a hard DEGRADED and resolves on HEALTHY', [H, D, D, H], { alert_on: 'degraded' }, ['1:firing:DEGRADED', '3:resolved:HEALTHY']],
    ['alert_on: degraded: DEGRADED → UNHEALTHY keeps one open alert', [D, U, U, U, H], { alert_on: 'degraded' }, ['0:firing:DEGRADED', '4:resolved:HEALTHY']],
    ['UNKNOWN alone never fires nor resolves (short outage of the VM)', [U, X, X, U, H], { failure_threshold: 1 }, ['0:firing:UNHEALTHY', '4:resolved:HEALTHY']],
    [
      'repeat_interval re-notifies a still-firing alert',
      [U, U, U, U, U, H],
      { failure_threshold: 1, settings: { repeatIntervalMs: 2 * MIN } },
      ['0:firing:UNHEALTHY', '2:firing:UNHEALTHY', '4:firing:UNHEALTHY', '5:resolved:HEALTHY'],
    ],
  ])('%s', (_why, steps, o, expected) => {
    expect(flat(simulate(steps, o))).toEqual(expected);
  });

  it('one VM-level alert for an unreachable VM after unreachable_after, resolved when it answers again', () => {
    const steps: Step[] = [H, X, X, X, X, X, X, X, H];
    expect(flat(simulate(steps, { settings: { unreachableAfterMs: 5 * MIN, repeatIntervalMs: 0 } }))).toEqual(['6:vm:firing:UNKNOWN', '8:vm:resolved:HEALTHY']);
  });

  it('holds back a check alert while its VM cannot be evaluated, and sends it once the VM answers', () => {
    // The check went UNHEALTHY (hard) at step 0 while the VM-level reachability was already failing.
    const settings = { ...DEFAULT_ALERT_SETTINGS, unreachableAfterMs: 5 * MIN };
    const failed = advance(undefined, { status: 'UNHEALTHY', message: 'down', timestamp: new Date(T0).toISOString() }, { failure_threshold: 1, success_threshold: 1 }).next;
    const base = { vm: 'web-1', check: 'api', type: 'http', tags: [], critical: true, alert_on: 'unhealthy' as const, state: failed, message: 'down' };
    const first = decideAlerts({
      vms: [{ vm: 'web-1', reachable: false, reason: 'SSH refused', at: T0, tags: [] }],
      checks: [{ ...base, raw: 'UNHEALTHY', at: T0 }],
      prev: new Map(),
      silences: [],
      settings,
      now: T0,
    });
    expect(first.notifications).toEqual([]);
    const second = decideAlerts({
      vms: [{ vm: 'web-1', reachable: true, at: T0 + MIN, tags: [] }],
      checks: [{ ...base, raw: 'UNHEALTHY', at: T0 + MIN }],
      prev: first.states,
      silences: [],
      settings,
      now: T0 + MIN,
    });
    expect(second.notifications.map((n) => `${n.scope}:${n.event}`)).toEqual(['check:firing']);
  });

  it('a silence holds everything back; a check still failing when it ends fires then', () => {
    const silence: Silence = { id: 'abc', vm: 'web-*', starts_at: T0, ends_at: T0 + 3 * MIN + 1, reason: 'maintenance', created_at: T0 };
    expect(flat(simulate([U, U, U, U, U, H], { failure_threshold: 1, silences: [silence] }))).toEqual(['4:firing:UNHEALTHY', '5:resolved:HEALTHY']);
  });

  it('a silence of another check does not hold this one back', () => {
    const silence: Silence = { id: 'abc', vm: 'web-1', check: 'other', starts_at: T0, ends_at: T0 + 60 * MIN, reason: 'x', created_at: T0 };
    expect(flat(simulate([U, H], { failure_threshold: 1, silences: [silence] }))).toEqual(['0:firing:UNHEALTHY', '1:resolved:HEALTHY']);
  });

  it('a flapping check: one flapping notice, nothing while it flaps, one "stopped flapping" with its state', () => {
    const flapping: Step[] = Array.from({ length: 16 }, (_, i) => (i % 2 ? H : U));
    const settled: Step[] = Array.from({ length: 16 }, () => H);
    const events = flat(simulate([...flapping, ...settled], { failure_threshold: 1 }));
    const flaps = events.filter((e) => e.includes('flapping:'));
    expect(flaps).toHaveLength(1);
    const startedAt = Number(flaps[0]!.split(':')[0]);
    const stopped = events.filter((e) => e.includes('flapping_stopped'));
    expect(stopped).toHaveLength(1);
    expect(stopped[0]).toMatch(/flapping_stopped:HEALTHY$/);
    const stoppedAt = Number(stopped[0]!.split(':')[0]);
    // Between the two, no firing/resolved at all.
    expect(events.filter((e) => Number(e.split(':')[0]) > startedAt && Number(e.split(':')[0]) < stoppedAt)).toEqual([]);
    expect(stoppedAt).toBeGreaterThan(flapping.length);
  });

  it('ids are stable for the same alert, event and time, and differ otherwise', () => {
    const a = simulate([U], { failure_threshold: 1 });
    const b = simulate([U], { failure_threshold: 1 });
    expect(a).toEqual(b);
  });
});

describe('flapping (Nagios)', () => {
  it.each<[string, string, number]>([
    ['steady', 'HHHHHHHHHHHHHHHHHHHHH', 0],
    ['every result changes (21 results)', 'HUHUHUHUHUHUHUHUHUHUH', 100],
    ['one change, newest', 'HHHHHHHHHHHHHHHHHHHHU', 6.3],
    ['one change, oldest', 'UHHHHHHHHHHHHHHHHHHHH', 3.8],
    ['a short history sits at the recent end', 'HUHU', 18.4],
  ])('%s: %s → %s%%', (_why, history, percent) => {
    expect(flapPercent(history)).toBeCloseTo(percent, 1);
  });

  it('keeps the last 21 evaluated results; UNKNOWN is not a result', () => {
    let h = '';
    for (let i = 0; i < 30; i++) h = pushHistory(h, i % 2 ? 'HEALTHY' : 'UNHEALTHY');
    expect(h).toHaveLength(21);
    expect(pushHistory(h, 'UNKNOWN')).toBe(h);
  });

  it.each([
    [false, 50, 'started'],
    [false, 49.9, undefined],
    [true, 25, undefined],
    [true, 24.9, 'stopped'],
  ] as const)('flapping=%s at %s%% → %s (50/25 hysteresis)', (was, pct, change) => {
    expect(flapChange(was, pct, { enabled: true, high_threshold: 50, low_threshold: 25 })).toBe(change);
  });
});

describe('vmReachability', () => {
  const base = { vm_name: 'web-1', overall_status: 'UNKNOWN', timestamp: new Date(T0).toISOString(), duration_ms: 0, counts: { total: 0, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 }, total_checks: 0, healthy_checks: 0, unhealthy_checks: 0 } as const;
  const c = (status: HealthStatus, transport: 'ssh' | 'host' | 'ssh-tunnel', details: Record<string, unknown> = {}) => ({
    name: `c${Math.random()}`, type: 'x', status, timestamp: base.timestamp, duration_ms: 1, message: 'm', critical: true, transport, details,
  });
  it.each<[string, Partial<VMHealthReport>, boolean | undefined]>([
    ['shut off (VM-level reason)', { reason: 'the VM is shut off', checks: [] }, false],
    ['every guest check failed in transport', { checks: [c('UNKNOWN', 'ssh', { transport_error: 'refused' }), c('UNKNOWN', 'ssh-tunnel', { transport_error: 'refused' })] }, false],
    ['a guest check answered', { checks: [c('UNHEALTHY', 'ssh'), c('UNKNOWN', 'ssh', { transport_error: 'refused' })] }, true],
    ['host checks alone say nothing about SSH', { checks: [c('UNHEALTHY', 'host'), c('UNKNOWN', 'ssh', { transport_error: 'timeout' })] }, false],
    ['UNKNOWN without a transport error says nothing', { checks: [c('UNKNOWN', 'ssh')] }, undefined],
  ])('%s', (_why, r, reachable) => {
    expect(vmReachability({ ...base, checks: [], ...r } as VMHealthReport).reachable).toBe(reachable);
  });
});
