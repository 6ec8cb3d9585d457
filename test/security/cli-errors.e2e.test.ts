/**
 * Items 4, 5 and 8 of issue 16 through the real CLI: a duration a timer cannot hold, a glob that is
 * not one, and a YAML alias bomb each end in one sentence (exit 3), never "unexpected error", a
 * stack, or Node's TimeoutOverflowWarning turning 30 days into 1 ms.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureLab, isRoot, type Lab } from '../lab/lab.js';
import { clonebox, tempDir } from './support.js';

const lab = isRoot() ? await ensureLab() : undefined;
(lab ? describe : describe.skip)('mistakes are one sentence', () => {
  const L = lab as Lab;
  const dir = tempDir('cli-errors');
  const oneSentence = (stderr: string) => {
    expect(stderr).not.toMatch(/unexpected error|TimeoutOverflowWarning|\n\s+at /);
    expect(stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
  };

  it('timeout: 30d is refused at its line instead of failing after 1 ms', async () => {
    const config = path.join(dir, 'long.yaml');
    writeFileSync(config, `libvirt: {uri: "${L.uri}"}\nhealth_checks:\n  - name: slow\n    type: tcp\n    port: 80\n    timeout: 30d\n`);
    const r = await clonebox(['health', 'check', 'web-1', '--config', config]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/long\.yaml:6:\d+: health_checks\[0\]\.timeout: must be at most 24\.8 days/);
    oneSentence(r.stderr.replace(/^clonebox: invalid config:\n/, ''));
  });

  it('--wait 30d is refused in one sentence', async () => {
    const r = await clonebox(['health', 'check', 'web-1', '--config', L.configPath, '--wait', '30d']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--wait "30d" is longer than the longest wait a timer can hold, 24\.8 days/);
    oneSentence(r.stderr);
  });

  it("health check '[z-a]' says what is wrong with the pattern", async () => {
    const r = await clonebox(['health', 'check', '[z-a]', '--config', L.configPath]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('clonebox: invalid VM pattern "[z-a]": the range z-a runs backwards; write it low to high, e.g. [a-z]\n');
  });

  it('a YAML alias bomb names the file', async () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const config = path.join(dir, 'bomb.yaml');
    writeFileSync(config, `${lines.join('\n')}\nhealth_checks: []\n`);
    const r = await clonebox(['health', 'check', 'web-1', '--config', config]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/bomb\.yaml: too many YAML aliases/);
    oneSentence(r.stderr.replace(/^clonebox: invalid config:\n/, ''));
  });
});
