/**
 * Child processes in the concurrency tests run plain Node, which cannot load TypeScript. Rather than a full
 * `tsc` build of the project (slow, and it fails on any half-written file elsewhere), transpile just the store
 * and what it imports, file by file (`ts.transpileModule`, no type checking), into a folder inside node_modules/
 * so that `better-sqlite3` and `pg` resolve from there as they do for the real build.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '../..');

/** Transpile `entry` (a path under src/) and every relative import it reaches; returns the output root. */
export function transpileClosure(entries: string[], outName = `store-test-${process.pid}`): string {
  const out = join(ROOT, 'node_modules', '.cache', 'clonebox', outName);
  const seen = new Set<string>();
  const queue = entries.map((e) => resolve(ROOT, e));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    const js = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
    }).outputText;
    const target = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
    // Follow relative imports of values (type-only imports are gone from `js`).
    for (const m of js.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
      queue.push(resolve(dirname(file), `${m[1]}.ts`));
    }
  }
  return out;
}
