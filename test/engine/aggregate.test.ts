import { describe, expect, it } from 'vitest';
import { buildVmReport, overallStatus, worstStatus } from '../../src/engine/aggregate.js';
import type { CheckResult, HealthStatus } from '../../src/report.js';
import { clearSecrets, registerSecret } from '../../src/util/redact.js';

const c = (status: HealthStatus, critical = true) => ({ status, critical });

describe('overallStatus of a VM', () => {
  it.each([
    ['all healthy', [c('HEALTHY'), c('HEALTHY')], 'HEALTHY'],
    ['a critical check unhealthy', [c('HEALTHY'), c('UNHEALTHY')], 'UNHEALTHY'],
    ['a non-critical check unhealthy only degrades', [c('HEALTHY'), c('UNHEALTHY', false)], 'DEGRADED'],
    ['a degraded check (disk warning)', [c('HEALTHY'), c('DEGRADED')], 'DEGRADED'],
    ['unhealthy critical outranks degraded', [c('DEGRADED'), c('UNHEALTHY')], 'UNHEALTHY'],
    ['an unknown check means we cannot claim healthy', [c('HEALTHY'), c('UNKNOWN')], 'UNKNOWN'],
    ['a known failure outranks unknown', [c('UNKNOWN'), c('UNHEALTHY')], 'UNHEALTHY'],
    ['degraded outranks unknown', [c('UNKNOWN'), c('DEGRADED')], 'DEGRADED'],
    ['no checks at all', [], 'UNKNOWN'],
  ] as const)('%s → %s', (_why, checks, expected) => expect(overallStatus(checks)).toBe(expected));
});

describe('worstStatus of a fleet', () => {
  it.each([
    [['HEALTHY', 'HEALTHY'], 'HEALTHY'],
    [['HEALTHY', 'UNKNOWN'], 'UNKNOWN'],
    [['UNKNOWN', 'DEGRADED'], 'DEGRADED'],
    [['DEGRADED', 'UNHEALTHY', 'UNKNOWN'], 'UNHEALTHY'],
    [[], 'UNKNOWN'],
  ] as const)('%j → %s', (statuses, expected) => expect(worstStatus(statuses)).toBe(expected));
});

describe('buildVmReport with a reason', () => {
  const result = (name: string, status: HealthStatus, transport: CheckResult['transport']): CheckResult => ({
    name,
    type: 'tcp',
    status,
    timestamp: '2026-01-01T00:00:00.000Z',
    duration_ms: 1,
    message: status,
    critical: false,
    transport,
    details: {},
  });
  const base = { vm_name: 'web-1', timestamp: '2026-01-01T00:00:00.000Z', duration_ms: 1 };

  it('nothing ran (shut off, no address): UNKNOWN whatever the checks say', () => {
    const r = buildVmReport({ ...base, reason: 'the VM is shut off' }, [result('a', 'UNKNOWN', 'none'), result('b', 'UNKNOWN', 'none')]);
    expect(r.overall_status).toBe('UNKNOWN');
  });

  it('the guest not reached: the checks that ran from the host are judged, also when the report is built again', () => {
    const checks = [result('guest', 'UNKNOWN', 'ssh'), result('host', 'UNHEALTHY', 'host')];
    const first = buildVmReport({ ...base, reason: 'guest not reached within 2s: no TCP connection to 10.0.0.5:22' }, checks);
    expect(first.overall_status).toBe('DEGRADED');
    // As the thresholds and the watch rebuild it: the same verdict, without being told.
    expect(buildVmReport({ ...base, reason: first.reason! }, first.checks).overall_status).toBe('DEGRADED');
  });

  it('masks secrets in what a check captured, once: a rebuilt report keeps the masked results, raw ones are masked again', () => {
    registerSecret('AGG-SECRET-42');
    try {
      const raw: CheckResult = { ...result('api', 'UNHEALTHY', 'host'), message: 'got AGG-SECRET-42', details: { body: 'AGG-SECRET-42', n: 1 } };
      const first = buildVmReport(base, [raw]);
      expect(first.checks[0]).toMatchObject({ message: 'got ***', details: { body: '***', n: 1 } });
      expect(raw.message).toBe('got AGG-SECRET-42');
      const again = buildVmReport(base, first.checks);
      expect(again.checks[0]).toBe(first.checks[0]);
      expect(buildVmReport(base, [{ ...raw }]).checks[0]).toMatchObject({ message: 'got ***', details: { body: '***' } });
    } finally {
      clearSecrets();
    }
  });
});
