/**
 * Real consumers that are optional dev dependencies: a test that needs one runs when it is installed
 * and says why it was skipped when it is not (never a silent pass).
 */
import { execFileSync } from 'node:child_process';

export async function optionalImport<T>(name: string): Promise<T | undefined> {
  try {
    // A variable specifier: the package need not be installed for the type-check to pass.
    return (await import(/* @vite-ignore */ name)) as T;
  } catch (err) {
    console.warn(`skipping checks with ${name}: not installed (${(err as Error).message.split('\n')[0]}); add it as a dev dependency`);
    return undefined;
  }
}

/** The path of a command on $PATH, or undefined (with the reason printed). */
export function optionalCommand(name: string, installHint: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    console.warn(`skipping checks with ${name}: not on PATH (${installHint})`);
    return undefined;
  }
}
