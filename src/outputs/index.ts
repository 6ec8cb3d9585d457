import { jsonOutput } from './json.js';
import { tableOutput } from './table.js';
import type { OutputFormat } from './types.js';

export const OUTPUTS: Record<string, OutputFormat> = {
  table: tableOutput,
  json: jsonOutput,
};
export type { OutputFormat, RenderOptions } from './types.js';
export { wantColor } from './types.js';
