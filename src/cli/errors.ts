/** Errors a user can cause become one sentence on stderr and exit 3 (UNKNOWN), never a stack trace. */
import { ConfigError } from '../config/errors.js';
import { UsageError } from '../engine/fleet.js';
import { SelectorError } from '../inventory/discover.js';
import { LibvirtError } from '../inventory/types.js';
import { OutputFileError } from '../outputs/write.js';
import { TransportError } from '../transport/types.js';
import { redactText } from '../util/redact.js';

export const EXIT_UNKNOWN = 3;

export function userMessage(err: unknown): string | undefined {
  if (err instanceof ConfigError) return `invalid config:\n${err.message}`;
  if (err instanceof UsageError || err instanceof LibvirtError || err instanceof TransportError || err instanceof OutputFileError || err instanceof SelectorError) return err.message;
  // oclif's own flag/argument parse errors carry an `oclif` exit field.
  const e = err as { oclif?: { exit?: number }; message?: string };
  if (e?.oclif && typeof e.message === 'string') return e.message.split('\n')[0];
  return undefined;
}

/** The commands' shared `catch`: one sentence on stderr, exit 3; the stack only with --verbose. */
export function reportError(err: Error, argv: readonly string[]): void {
  const message = userMessage(err);
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  // The last door out: whatever the error says, secrets stay masked.
  process.stderr.write(redactText(`clonebox: ${message ?? `unexpected error: ${err.message}${verbose ? '' : ' (run with --verbose for details)'}`}\n`));
  if (verbose) process.stderr.write(redactText(`${err.stack ?? ''}\n`));
  process.exitCode = EXIT_UNKNOWN;
}
