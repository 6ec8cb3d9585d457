/**
 * docs/clonebox.schema.json, docs/config-reference.md and docs/outputs.md are generated
 * (scripts/gen-docs.mjs). This test runs the generator on the sources and fails when a committed file
 * differs, so the docs cannot drift from the code. After a deliberate change, regenerate them with
 *   CLONEBOX_UPDATE_DOCS=1 npx vitest run test/outputs/generated-docs.test.ts
 * (or `npm run build && node scripts/gen-docs.mjs`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import HealthSchemaCommand from '../../src/commands/health/schema.js';
import { generateDocs, loadInputs, ROOT } from '../../scripts/gen-docs.mjs';
import { configJsonSchema, configJsonSchemaText } from '../../src/config/json-schema.js';
import { OUTPUTS } from '../../src/outputs/index.js';

const files = generateDocs({ schema: configJsonSchema(), schemaText: configJsonSchemaText(), outputs: OUTPUTS, ...(await loadInputs()) });
const update = process.env.CLONEBOX_UPDATE_DOCS === '1';

describe('generated docs', () => {
  it.each(Object.keys(files))('%s is what scripts/gen-docs.mjs generates now', (path) => {
    const file = join(ROOT, path);
    if (update) writeFileSync(file, files[path]!);
    const committed = readFileSync(file, 'utf8');
    expect(committed, `${path} is stale: run CLONEBOX_UPDATE_DOCS=1 npx vitest run test/outputs/generated-docs.test.ts`).toBe(files[path]);
  });

  it('docs/outputs.md has a real sample of every format but json (which has its own page)', () => {
    const doc = files['docs/outputs.md']!;
    for (const name of Object.keys(OUTPUTS)) expect(doc).toContain(`## \`${name}\``);
    expect(doc).toContain('CLONEBOX CRITICAL - 5 VMs');
    expect(doc).toContain('<testsuite name="web-3"');
    expect(doc).toContain('clonebox_check_status{vm="web-3",check="api-health",type="http",status="UNHEALTHY"} 1');
    expect(doc).toContain('not ok 7 - web-3 api-health: HTTP 503 (expected 200)');
  });

  it('docs/config-reference.md lists every check type and shows every fixture', () => {
    const doc = files['docs/config-reference.md']!;
    for (const type of ['http', 'tcp', 'command', 'script', 'disk', 'memory']) expect(doc).toContain(`## \`type: ${type}\``);
    expect(doc).toContain('| `timeout` | duration | `"5s"` |');
    expect(doc).toContain('| `port` | integer 1–65535 | required |');
    expect(doc).toContain('### [fixtures/minimal.yaml](../fixtures/minimal.yaml)');
  });

  it('`clonebox health schema` prints exactly docs/clonebox.schema.json', async () => {
    const chunks: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      chunks.push(String(chunk));
      return true;
    });
    try {
      await HealthSchemaCommand.run([], ROOT);
    } finally {
      write.mockRestore();
    }
    expect(chunks.join('')).toBe(readFileSync(join(ROOT, 'docs/clonebox.schema.json'), 'utf8'));
  });
});
