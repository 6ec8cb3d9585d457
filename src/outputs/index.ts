import { jsonOutput } from './json.js';
import { junitOutput } from './junit.js';
import { nagiosOutput } from './nagios.js';
import { prometheusOutput } from './prometheus.js';
import { tableOutput } from './table.js';
import { tapOutput } from './tap.js';
import type { OutputFormat } from './types.js';

/** Every output format by the name `--output` takes (docs/outputs.md). */
export const OUTPUTS = {
  table: tableOutput,
  json: jsonOutput,
  junit: junitOutput,
  prometheus: prometheusOutput,
  nagios: nagiosOutput,
  tap: tapOutput,
} as const satisfies Record<string, OutputFormat>;

export type OutputName = keyof typeof OUTPUTS;
export const OUTPUT_NAMES = Object.keys(OUTPUTS) as OutputName[];

export type { OutputFormat, RenderOptions } from './types.js';
export { wantColor } from './types.js';
export { writeOutputFile, OutputFileError } from './write.js';
