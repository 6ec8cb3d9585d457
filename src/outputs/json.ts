import type { OutputFormat } from './types.js';

/** The stable machine shape: `{ summary, reports }` (docs/json-output.md). */
export const jsonOutput: OutputFormat = {
  name: 'json',
  render: (report) => `${JSON.stringify(report, null, 2)}\n`,
};
