import type { CommandCheck } from '../config/schema.js';
import { judgeCommand, outcomeFromError } from './common.js';
import type { Probe } from './types.js';

/** Run a command in the guest; healthy when it exits as expected and prints what is expected. */
export const commandProbe: Probe<CommandCheck> = async (check, target, signal) => {
  try {
    const result = await target.exec(check.exec, { signal });
    return judgeCommand(result, check, 'command');
  } catch (err) {
    return outcomeFromError(err, signal, check.timeout, 'command');
  }
};
