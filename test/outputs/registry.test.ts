import { describe, expect, it } from 'vitest';
import { buildFleetReport, buildVmReport } from '../../src/engine/aggregate.js';
import { OUTPUT_NAMES, OUTPUTS } from '../../src/outputs/index.js';
import { emptyReport, nastyReport, sampleReport } from './sample.js';

describe('the output registry', () => {
  it('has every format under the name --output takes, each naming itself', () => {
    expect(OUTPUT_NAMES).toEqual(['table', 'json', 'junit', 'prometheus', 'nagios', 'tap']);
    for (const name of OUTPUT_NAMES) expect(OUTPUTS[name].name).toBe(name);
  });

  it.each(OUTPUT_NAMES)('%s is a pure function of the report: same input, same text, ending in a newline', (name) => {
    for (const make of [sampleReport, nastyReport, emptyReport]) {
      const a = OUTPUTS[name].render(make(), { color: false });
      expect(a).toBe(OUTPUTS[name].render(make(), { color: false }));
      expect(a.endsWith('\n')).toBe(true);
    }
  });

  it('the sample report is what the engine would build from its checks (so the docs show real shapes)', () => {
    const sample = sampleReport();
    const rebuilt = buildFleetReport(
      sample.reports.map((r) =>
        buildVmReport(
          {
            vm_name: r.vm_name,
            timestamp: r.timestamp,
            duration_ms: r.duration_ms,
            ...(r.address ? { address: r.address } : {}),
            ...(r.domain_state ? { domain_state: r.domain_state } : {}),
            ...(r.reason ? { reason: r.reason } : {}),
          },
          r.checks,
        ),
      ),
      new Date(sample.summary.timestamp),
      sample.summary.duration_ms,
    );
    expect(rebuilt).toEqual(sample);
  });
});
