import type { ScriptCheck } from '../config/schema.js';
import { shellQuote } from '../util/cap.js';
import { judgeCommand, outcomeFromError } from './common.js';
import type { Probe } from './types.js';

/** Run a script that lives in the guest. A missing script is reported as such, not as a bare 127. */
export const scriptProbe: Probe<ScriptCheck> = async (check, target, signal) => {
  const quoted = [check.path, ...check.args].map(shellQuote).join(' ');
  // `test -e` first so "no such script" is told apart from a script that fails.
  const command = `if [ ! -e ${shellQuote(check.path)} ]; then echo "clonebox: no such script" >&2; exit 127; fi; exec ${quoted}`;
  try {
    const result = await target.exec(command, { signal });
    if (result.exitCode === 127 && result.stderr.includes('clonebox: no such script')) {
      return { status: 'UNHEALTHY', message: `script ${check.path} does not exist in the guest`, details: { exit_code: 127 } };
    }
    return judgeCommand(result, check, `script ${check.path}`);
  } catch (err) {
    return outcomeFromError(err, signal, check.timeout, `script ${check.path}`);
  }
};
