import { describe, expect, it } from 'vitest';
import { overallStatus, worstStatus } from '../../src/engine/aggregate.js';
import type { HealthStatus } from '../../src/report.js';

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
