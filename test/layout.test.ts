/**
 * The folders of src/ are layers, and imports run one way (README, "Layout"): a command's logic may use the
 * engine, the engine never the store or the CLI. Folders not named here (new ones) are not checked until they
 * are given their place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');
/** Lower layers have higher numbers; a file may import from its own layer or a higher number. */
const LAYER: Record<string, number> = {
  commands: 0,
  cli: 1,
  outputs: 2,
  store: 3,
  engine: 4,
  alerting: 4,
  probes: 5,
  config: 6,
  transport: 6,
  inventory: 7,
  util: 8,
  'report.ts': 8,
};

/** Imports that run up on purpose, each with its reason. */
const ALLOWED: Record<string, string> = {
  // A config may name probe types that plugins register at load time; that registry belongs to the probes.
  'config → ../probes/plugins.js': 'plugin probe registry',
};

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) yield* sources(join(dir, e.name));
    else if (e.name.endsWith('.ts')) yield join(dir, e.name);
  }
}

const top = (file: string) => relative(SRC, file).split('/')[0]!;

describe('src/ layering', () => {
  it('has no import that runs back up', () => {
    const upward: string[] = [];
    for (const file of sources(SRC)) {
      const from = top(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
        const to = top(normalize(join(dirname(file), m[1]!)));
        const a = LAYER[from];
        const b = LAYER[to.replace(/\.js$/, '.ts')];
        if (a !== undefined && b !== undefined && b < a && !ALLOWED[`${from} → ${m[1]}`]) upward.push(`${relative(SRC, file)} → ${m[1]}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
