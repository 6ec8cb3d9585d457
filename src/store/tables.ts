/** The store's tables as the core names their columns (dialect.ts maps a name where a schema differs). */
import type { Columns } from './dialect.js';

export const STATE = {
  vm: 'text',
  check_name: 'text',
  state: 'text',
  hard: 'bool',
  consecutive_failures: 'int',
  consecutive_successes: 'int',
  last_result_status: 'text',
  last_result_at: 'ms',
  last_change: 'ms',
  last_message: 'text',
  updated_at: 'ms',
} as const satisfies Columns;

export const RESULT = {
  ts: 'ms',
  vm: 'text',
  check_name: 'text',
  type: 'text',
  status: 'text',
  state: 'text',
  duration_ms: 'real',
  message: 'text',
  details: 'json',
} as const satisfies Columns;

export const TRANSITION = {
  ts: 'ms',
  vm: 'text',
  check_name: 'text',
  from_state: 'text',
  to_state: 'text',
  hard: 'bool',
  message: 'text',
} as const satisfies Columns;

export const ACTION = {
  ts: 'ms',
  vm: 'text',
  check_name: 'text',
  action: 'text',
  command: 'text',
  status: 'text',
  reason: 'text',
  exit_code: 'int',
  output: 'text',
  duration_ms: 'real',
  finished_ts: 'ms',
} as const satisfies Columns;

export const ACTION_READ = { id: 'id', ...ACTION } as const satisfies Columns;
