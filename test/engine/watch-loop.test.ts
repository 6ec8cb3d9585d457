/**
 * The watch loop on a fake clock against fake VMs: rounds, thresholds and actions, VM reachability said once each
 * way, a throwing subscriber contained, discovery failures said once, Ctrl-C. The schedule is seeded, time only
 * moves when the test moves it, so every run is the same; nothing here depends on wall time.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { resolveVm, type ResolvedVm } from '../../src/config/resolve.js';
import type { HealthCheck } from '../../src/config/schema.js';
import { buildVmReport } from '../../src/engine/aggregate.js';
import { MemoryState, type ActionRunner } from '../../src/engine/watch/advance.js';
import { FakeClock } from '../../src/engine/watch/clock.js';
import { WatchEvents, type WatchEvent } from '../../src/engine/watch/events.js';
import { WatchLoop, type WatchOutcome, type WatchSources } from '../../src/engine/watch/loop.js';
import { reachability, snapshot, summarize, type WatchedVm } from '../../src/engine/watch/watched.js';
import type { VmTarget } from '../../src/inventory/discover.js';
import type { CheckResult, HealthStatus, VMHealthReport } from '../../src/report.js';

const CONFIG = parseConfig(
  `
ssh: { user: root, identity_file: /dev/null, known_hosts: /dev/null }
health_checks:
  - { name: api, type: http, url: "http://localhost:8080/health", failure_threshold: 2, success_threshold: 2,
      on_failure: "systemctl restart api", on_recovery: "logger api back" }
  - { name: ping, type: command, exec: "redis-cli ping", expected_output: PONG }
  - { name: site, type: http, url: "http://{{address}}/" }
`,
  'watch-loop.yaml',
);

/** The fleet as the fake sources see it; tests change it between steps. */
class World {
  readonly vms = new Map<string, { address?: string; unavailable?: string }>();
  /** Guest (SSH) reachable per VM; default true. */
  readonly ssh = new Map<string, boolean>();
  /** Status per "vm/check"; default HEALTHY. */
  readonly status = new Map<string, HealthStatus>();
  discoverError: string | undefined;
  discoveries = 0;
  runs = new Map<string, number>();
  /** Checks cancelled while running. */
  cancelled = 0;
  actions: string[] = [];
  forgotten: string[] = [];
  /** How long each check takes, on the fake clock. */
  checkMs = 40;
  /** Alternate how a lost connection is worded, as real SSH failures are worded by timing. */
  #flip = 0;

  constructor(readonly clock: FakeClock) {}

  add(name: string, n: number): void {
    this.vms.set(name, { address: `10.0.0.${n}` });
  }

  sources(): WatchSources {
    const memory = new MemoryState(this.act, () => this.clock.now());
    return {
      discover: async () => {
        this.discoveries++;
        if (this.discoverError) throw new Error(this.discoverError);
        return [...this.vms].map(([name, v]) => {
          const target: VmTarget = { name, state: v.unavailable ? 'shutoff' : 'running', ...(v.address && !v.unavailable ? { address: v.address } : {}), ...(v.unavailable ? { unavailable: v.unavailable } : {}) };
          return { target, resolved: resolveVm(CONFIG, name) };
        });
      },
      runChecks: async (vm, target, signal, onReport) => {
        await Promise.all(vm.checks.map(async (check) => onReport(await this.#run(vm, check, target, signal))));
      },
      advance: memory.advance,
      forget: (vm) => {
        this.forgotten.push(vm);
        memory.forget(vm);
      },
    };
  }

  readonly act: ActionRunner = async (vm, _target, _check, kind, spec) => {
    this.actions.push(`${vm.name}/${kind}: ${spec.command}`);
    return { status: 'ok', exit_code: 0, duration_ms: 5 };
  };

  #run(vm: ResolvedVm, check: HealthCheck, target: VmTarget, signal: AbortSignal): Promise<VMHealthReport> {
    const key = `${vm.name}/${check.name}`;
    this.runs.set(key, (this.runs.get(key) ?? 0) + 1);
    const startedAt = new Date(this.clock.now()).toISOString();
    const base = { vm_name: vm.name, timestamp: startedAt, ...(target.address ? { address: target.address } : {}) };
    const result = (status: HealthStatus, message: string, extra: Partial<CheckResult> = {}): CheckResult => ({
      name: check.name,
      type: check.type,
      status,
      timestamp: startedAt,
      duration_ms: this.checkMs,
      message,
      critical: check.critical,
      transport: check.type === 'command' ? 'ssh' : check.type === 'http' && check.url.includes('localhost') ? 'ssh-tunnel' : 'host',
      details: {},
      ...extra,
    });
    if (target.unavailable || !target.address) {
      const reason = target.unavailable ?? 'no address';
      return Promise.resolve(buildVmReport({ ...base, reason, duration_ms: 0 }, [result('UNKNOWN', `not run: ${reason}`, { transport: 'none' })]));
    }
    return new Promise((resolve) => {
      const done = () => {
        const guest = check.type === 'command' || (check.type === 'http' && check.url.includes('localhost'));
        if (guest && this.ssh.get(vm.name) === false) {
          // As real SSH failures go by timing: a connection lost mid-run (no verdict on the VM yet), or a dial
          // refused, where check-vm.ts says on the report that the guest was not reached.
          if (this.#flip++ % 3 === 0) {
            const r = result('UNKNOWN', `VM ${vm.name}: the SSH connection was lost`, { details: { transport_error: 'closed' } });
            return resolve(buildVmReport({ ...base, duration_ms: this.checkMs }, [r]));
          }
          const r = result('UNKNOWN', `VM ${vm.name}: connection refused`, { details: { transport_error: 'refused' } });
          return resolve(buildVmReport({ ...base, reason: 'guest not reached: connection refused', duration_ms: this.checkMs }, [r]));
        }
        const status = this.status.get(key) ?? 'HEALTHY';
        const r = result(status, status === 'HEALTHY' ? 'fine' : 'HTTP 503');
        resolve(buildVmReport({ ...base, duration_ms: this.checkMs }, [r]));
      };
      const timer = this.clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        done();
      }, this.checkMs);
      const onAbort = () => {
        this.clock.clearTimeout(timer);
        this.cancelled++;
        resolve(buildVmReport({ ...base, duration_ms: 1 }, [result('UNKNOWN', 'cancelled before it finished')]));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

interface Rig {
  clock: FakeClock;
  world: World;
  loop: WatchLoop;
  events: WatchEvent[];
}

function rig(options: { rounds?: number; intervalMs?: number; vms?: number } = {}): Rig {
  const clock = new FakeClock();
  const world = new World(clock);
  for (let i = 1; i <= (options.vms ?? 2); i++) world.add(`vm-${i}`, i);
  const bus = new WatchEvents(() => clock.now());
  const events: WatchEvent[] = [];
  bus.subscribe((e) => void events.push(e));
  const loop = new WatchLoop(world.sources(), {
    intervalMs: options.intervalMs ?? 1000,
    discoveryEveryMs: 1000,
    concurrency: 8,
    seed: 7,
    clock,
    events: bus,
    ...(options.rounds !== undefined ? { rounds: options.rounds } : {}),
  });
  return { clock, world, loop, events };
}

/** Move the fake clock in small steps until `done()` (bounded: fails after `maxMs` of fake time). */
async function until(r: Rig, what: string, done: () => boolean, maxMs = 120_000): Promise<void> {
  for (let t = 0; t <= maxMs; t += 50) {
    if (done()) return;
    await r.clock.advance(50);
  }
  throw new Error(`${what}: not within ${maxMs} ms of fake time; events: ${JSON.stringify(r.events.slice(-10))}`);
}

function started(r: Rig, signal = new AbortController().signal): { outcome: () => WatchOutcome | undefined; settled: Promise<WatchOutcome> } {
  let outcome: WatchOutcome | undefined;
  const settled = r.loop.run(signal).then((o) => (outcome = o));
  return { outcome: () => outcome, settled };
}

const ofType = <T extends WatchEvent['type']>(events: WatchEvent[], type: T) => events.filter((e): e is Extract<WatchEvent, { type: T }> => e.type === type);
const lastRound = (r: Rig) => ofType(r.events, 'round').at(-1)?.round ?? 0;

describe('WatchLoop on a fake clock', () => {
  it('runs every check each interval, announces rounds in order and stops after --rounds with the fleet status', async () => {
    const r = rig({ rounds: 4 });
    const run = started(r);
    await until(r, 'the watch to stop', () => run.outcome() !== undefined);
    const out = run.outcome()!;
    expect(out).toMatchObject({ reason: 'rounds', rounds: 4, exitCode: 0 });
    expect(ofType(r.events, 'round').map((e) => e.round)).toEqual([1, 2, 3, 4]);
    expect(ofType(r.events, 'round').every((e) => e.status === 'HEALTHY' && e.checks.total === 6 && e.vms.total === 2)).toBe(true);
    // Each of the 6 checks ran at least once per round; none ran more than one round ahead.
    for (const n of r.world.runs.values()) expect(n).toBeGreaterThanOrEqual(4);
    for (const n of r.world.runs.values()) expect(n).toBeLessThanOrEqual(5);
    // First results say where each check stands, once; nothing changed after.
    const changes = r.events.filter((e) => e.type === 'transition' || e.type === 'status');
    expect(changes).toHaveLength(6);
    expect(r.events.at(-1)).toMatchObject({ type: 'stop', reason: 'rounds', rounds: 4, status: 'HEALTHY', exit_code: 0 });
    // A steady fleet is not announced as reachable: there was no outage.
    expect(ofType(r.events, 'vm')).toEqual([]);
  });

  it('counts a failing check to UNHEALTHY, acts once on the way down and once on the way back', async () => {
    const r = rig();
    const ac = new AbortController();
    const run = started(r, ac.signal);
    await until(r, 'round 2', () => lastRound(r) >= 2);
    r.world.status.set('vm-1/api', 'UNHEALTHY');
    await until(r, 'hard UNHEALTHY', () => ofType(r.events, 'transition').some((e) => e.check === 'api' && e.to === 'UNHEALTHY'));
    const downAt = lastRound(r);
    await until(r, 'three more rounds failing', () => lastRound(r) >= downAt + 3);
    r.world.status.set('vm-1/api', 'HEALTHY');
    await until(r, 'hard HEALTHY', () => ofType(r.events, 'transition').some((e) => e.check === 'api' && e.to === 'HEALTHY' && e.from === 'UNHEALTHY'));
    await until(r, 'the recovery action', () => ofType(r.events, 'action').length >= 2);
    ac.abort();
    await until(r, 'the watch to stop', () => run.outcome() !== undefined);

    const api = ofType(r.events, 'transition').filter((e) => e.vm === 'vm-1' && e.check === 'api');
    expect(api.map((e) => [e.from, e.to, e.hard, e.streak ?? null])).toEqual([
      [null, 'HEALTHY', true, null],
      ['HEALTHY', 'DEGRADED', false, 'failing 1/2'],
      ['DEGRADED', 'UNHEALTHY', true, null],
      ['UNHEALTHY', 'HEALTHY', true, null],
    ]);
    expect(ofType(r.events, 'action').map((e) => [e.vm, e.check, e.kind, e.status])).toEqual([
      ['vm-1', 'api', 'on_failure', 'ok'],
      ['vm-1', 'api', 'on_recovery', 'ok'],
    ]);
    expect(r.world.actions).toEqual(['vm-1/on_failure: systemctl restart api', 'vm-1/on_recovery: logger api back']);
    expect(run.outcome()).toMatchObject({ reason: 'interrupted', exitCode: 0 });
    // Only vm-1/api ever changed.
    expect(r.events.filter((e) => (e.type === 'transition' || e.type === 'status') && !(e.vm === 'vm-1' && e.check === 'api'))).toHaveLength(5);
  });

  it('says once that a VM cannot be reached over SSH, and once that it is back; its checks go UNKNOWN, never UNHEALTHY', async () => {
    const r = rig();
    const ac = new AbortController();
    const run = started(r, ac.signal);
    await until(r, 'round 2', () => lastRound(r) >= 2);
    r.world.ssh.set('vm-2', false);
    await until(r, 'vm-2 unreachable', () => ofType(r.events, 'vm').length >= 1);
    const down = lastRound(r);
    // Several rounds while it stays down (its failures are worded differently from round to round).
    await until(r, 'rounds while down', () => lastRound(r) >= down + 4);
    r.world.ssh.set('vm-2', true);
    await until(r, 'vm-2 back', () => ofType(r.events, 'vm').length >= 2);
    await until(r, 'rounds after', () => lastRound(r) >= down + 7);
    ac.abort();
    await until(r, 'the watch to stop', () => run.outcome() !== undefined);

    const vm = ofType(r.events, 'vm');
    expect(vm.map((e) => [e.vm, e.reachable])).toEqual([
      ['vm-2', false],
      ['vm-2', true],
    ]);
    expect(vm[0]!.reason).toBeTruthy(); // its wording depends on how the connection failed
    expect(vm[1]!.reason).toBeUndefined();
    // The guest checks went UNKNOWN (never UNHEALTHY), the host check stayed as it was.
    const vm2 = r.events.filter((e) => (e.type === 'transition' || e.type === 'status') && e.vm === 'vm-2');
    expect(vm2.map((e) => (e.type === 'status' || e.type === 'transition' ? e.to : '')).filter((s) => s === 'UNHEALTHY' || s === 'DEGRADED')).toEqual([]);
    expect(new Set(ofType(r.events, 'status').filter((e) => e.vm === 'vm-2' && e.to === 'UNKNOWN').map((e) => e.check))).toEqual(new Set(['api', 'ping']));
    expect(ofType(r.events, 'action')).toEqual([]);
  });

  it('says once that a VM stopped running, once that it runs again, and follows its checks back', async () => {
    const r = rig();
    const ac = new AbortController();
    const run = started(r, ac.signal);
    await until(r, 'round 1', () => lastRound(r) >= 1);
    r.world.vms.set('vm-1', { unavailable: 'the VM is shut off' });
    await until(r, 'vm-1 unreachable', () => ofType(r.events, 'vm').length >= 1);
    const down = lastRound(r);
    await until(r, 'rounds while off', () => lastRound(r) >= down + 3);
    r.world.vms.set('vm-1', { address: '10.0.0.1' });
    await until(r, 'vm-1 back', () => ofType(r.events, 'vm').length >= 2);
    ac.abort();
    await until(r, 'the watch to stop', () => run.outcome() !== undefined);
    expect(ofType(r.events, 'vm').map((e) => [e.vm, e.reachable, e.reason])).toEqual([
      ['vm-1', false, 'the VM is shut off'],
      ['vm-1', true, undefined],
    ]);
  });

  it("thresholds a VM's results as soon as the last of its checks is in, without waiting out the coalescing window", async () => {
    const r = rig({ vms: 1 });
    const ac = new AbortController();
    const run = started(r, ac.signal);
    let startedAt: number | undefined;
    const published = () => r.events.filter((e) => e.type === 'transition' || e.type === 'status');
    for (let t = 0; t < 10_000 && published().length === 0; t++) {
      if (startedAt === undefined && r.world.runs.size > 0) startedAt = r.clock.now();
      await r.clock.advance(1);
    }
    // Its three checks take 40 ms each, side by side: their results are published then, not COALESCE_MS (20 ms) later.
    expect(startedAt).toBeDefined();
    expect(r.clock.now() - startedAt!).toBeLessThanOrEqual(r.world.checkMs + 1);
    expect(published()).toHaveLength(3);
    ac.abort();
    await until(r, 'the watch to stop', () => run.outcome() !== undefined);
    expect(r.clock.pending).toBe(0);
  });

  it('keeps going when a subscriber throws: said once, the other subscribers hear everything', async () => {
    const r = rig({ rounds: 3 });
    let calls = 0;
    r.loop.events.subscribe(function brokenDashboard() {
      calls++;
      throw new Error('dashboard is down');
    });
    const run = started(r);
    await until(r, 'the watch to stop', () => run.outcome() !== undefined);
    expect(run.outcome()).toMatchObject({ reason: 'rounds', rounds: 3 });
    const said = ofType(r.events, 'note').filter((e) => e.message.includes('brokenDashboard'));
    expect(said).toHaveLength(1);
    expect(said[0]!.message).toContain('dashboard is down');
    // It was still called for every event (it may recover), and the others got them all.
    expect(calls).toBe(r.events.length);
    expect(ofType(r.events, 'round').map((e) => e.round)).toEqual([1, 2, 3]);
  });

  it('says a failing discovery once, keeps the last known VMs, says when libvirt answers again, and drops a VM that left', async () => {
    const r = rig();
    const ac = new AbortController();
    const run = started(r, ac.signal);
    await until(r, 'round 1', () => lastRound(r) >= 1);
    r.world.discoverError = 'libvirt: connection refused';
    const before = r.world.discoveries;
    await until(r, 'three failed discoveries', () => r.world.discoveries >= before + 3);
    const during = lastRound(r);
    await until(r, 'rounds go on meanwhile', () => lastRound(r) >= during + 2);
    r.world.discoverError = undefined;
    r.world.vms.delete('vm-2');
    await until(r, 'vm-2 dropped', () => r.world.forgotten.includes('vm-2'));
    const dropped = r.world.runs.get('vm-1/api')!;
    await until(r, 'two more rounds', () => (r.world.runs.get('vm-1/api') ?? 0) >= dropped + 2);
    const vm2Runs = r.world.runs.get('vm-2/api');
    await r.clock.advance(3000);
    ac.abort();
    await until(r, 'the watch to stop', () => run.outcome() !== undefined);

    const notes = ofType(r.events, 'note').map((e) => e.message);
    expect(notes.filter((m) => m.startsWith('cannot refresh the VM list'))).toHaveLength(1);
    expect(notes.filter((m) => m === 'libvirt answers again')).toHaveLength(1);
    expect(r.world.runs.get('vm-2/api')).toBe(vm2Runs); // no longer scheduled
    expect(r.loop.snapshot().reports.map((v) => v.vm_name)).toEqual(['vm-1']);
  });

  it('on Ctrl-C: in-flight checks are cancelled, their cut-short results never published, one stop event last', async () => {
    const r = rig();
    r.world.checkMs = 5000; // in flight for a long time
    const ac = new AbortController();
    const run = started(r, ac.signal);
    await until(r, 'checks in flight', () => r.world.runs.size === 6);
    ac.abort();
    await until(r, 'the watch to stop', () => run.outcome() !== undefined, 5000);
    expect(r.world.cancelled).toBe(6);
    expect(r.events.filter((e) => e.type !== 'note')).toEqual([
      { type: 'stop', ts: expect.any(String), reason: 'interrupted', rounds: 0, status: 'UNKNOWN', exit_code: 3 },
    ]);
    expect(r.clock.pending).toBe(0); // no timer left behind
  });
});

describe("reachability: what a VM's results say about reaching it", () => {
  const check = (transport: CheckResult['transport'], status: HealthStatus = 'HEALTHY', transportError?: string): CheckResult => ({
    name: `c-${transport}`,
    type: transport === 'host' ? 'http' : 'command',
    status,
    timestamp: '2026-01-01T00:00:00.000Z',
    duration_ms: 1,
    message: transportError ? 'VM v: connection refused' : 'ok',
    critical: true,
    transport,
    details: transportError ? { transport_error: transportError } : {},
  });
  const run = (checks: CheckResult[], reason?: string) =>
    buildVmReport({ vm_name: 'v', timestamp: '2026-01-01T00:00:00.000Z', duration_ms: 1, ...(reason ? { reason } : {}) }, checks);
  const ssh = { level: 'ssh', reason: 'guest not reached: connection refused' } as const;
  const domain = { level: 'domain', reason: 'the VM is shut off' } as const;

  it.each([
    ['a check not run breaks it at the domain', [run([check('none', 'UNKNOWN')], 'the VM is shut off')], undefined, domain],
    ['a guest check whose guest was not reached breaks it at SSH', [run([check('ssh', 'UNKNOWN', 'refused')], ssh.reason), run([check('host')])], 'reachable', ssh],
    ['a connection lost mid-run is no evidence either way', [run([check('ssh', 'UNKNOWN', 'closed')])], 'reachable', undefined],
    ['a tunnel the guest refused is no evidence either way', [run([check('ssh-tunnel', 'UNKNOWN', 'refused')])], ssh, undefined],
    ['a guest check that came back mends an SSH break', [run([check('ssh-tunnel', 'UNHEALTHY')])], ssh, 'reachable'],
    ['a guest check that came back mends a domain break', [run([check('ssh')])], domain, 'reachable'],
    ['a check through the guest agent counts as reaching the guest', [run([check('agent')])], ssh, 'reachable'],
    ['host checks alone say nothing about SSH', [run([check('host')])], ssh, undefined],
    ['host checks alone mend a domain break', [run([check('host')])], domain, 'reachable'],
    ['host checks alone are enough for a VM not yet seen', [run([check('host')])], undefined, 'reachable'],
  ] as const)('%s', (_why, raw, current, expected) => {
    expect(reachability(raw, current)).toEqual(expected);
  });
});

describe('summarize: the round line\'s statuses without building the fleet report', () => {
  const res = (name: string, status: HealthStatus, critical: boolean, transport: CheckResult['transport'] = 'ssh'): CheckResult => ({
    name,
    type: 'command',
    status,
    timestamp: '2026-01-01T00:00:00.000Z',
    duration_ms: 1,
    message: status,
    critical,
    transport,
    details: {},
  });
  const vm = (name: string, results: CheckResult[], reason?: string, configured = results.map((r) => r.name)): WatchedVm => ({
    name,
    target: { name, address: '10.0.0.1' },
    resolved: { checks: configured.map((n) => ({ name: n })) } as unknown as ResolvedVm,
    checks: new Map(results.map((r) => [r.name, { result: r, since: 0 }])),
    ...(reason ? { reason } : {}),
  });
  const pick = (vms: readonly WatchedVm[]) => {
    const s = snapshot(vms, 0, 0).summary;
    return { overall_status: s.overall_status, vms: s.vms, checks: s.checks };
  };

  it.each([
    ['all healthy', [vm('a', [res('x', 'HEALTHY', true), res('y', 'HEALTHY', false)])]],
    ['a critical check down', [vm('a', [res('x', 'UNHEALTHY', true)]), vm('b', [res('x', 'HEALTHY', true)])]],
    ['a non-critical check down, another unknown', [vm('a', [res('x', 'UNHEALTHY', false), res('y', 'UNKNOWN', true)]), vm('b', [res('x', 'UNKNOWN', true)])]],
    ['a VM not run (reason, transport none)', [vm('a', [res('x', 'UNKNOWN', true, 'none')], 'the VM is shut off'), vm('b', [res('x', 'DEGRADED', true)])]],
    ['a reason beside checks that ran', [vm('a', [res('x', 'UNKNOWN', true), res('site', 'UNHEALTHY', true, 'host')], 'guest not reached: refused')]],
    ['a VM without results yet, a check no longer configured', [vm('a', []), vm('b', [res('x', 'HEALTHY', true), res('gone', 'UNHEALTHY', true)], undefined, ['x'])]],
    ['no VMs', []],
  ] as const)('%s: as the snapshot says', (_why, vms) => {
    expect(summarize(vms)).toEqual(pick(vms));
  });
});
