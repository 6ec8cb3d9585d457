/** Types of scripts/gen-docs.mjs, for the test that keeps the generated docs in step. */
import type { OutputFormat } from '../src/outputs/types.js';
import type { FleetReport } from '../src/report.js';

export interface Fixture {
  path: string;
  text: string;
}
export interface DocInputs {
  schema: Record<string, unknown>;
  schemaText: string;
  outputs: Record<string, OutputFormat>;
  report: FleetReport;
  fixtures: Fixture[];
}
export declare const ROOT: string;
export declare const SAMPLE_REPORT: string;
export declare const FIXTURES_DIR: string;
export declare function loadInputs(root?: string): Promise<{ report: FleetReport; fixtures: Fixture[] }>;
export declare function typeName(schema: unknown): string;
export declare function renderConfigReference(schema: Record<string, unknown>, fixtures: Fixture[]): string;
export declare function renderOutputsDoc(outputs: Record<string, OutputFormat>, report: FleetReport): string;
export declare function generateDocs(inputs: DocInputs): Record<string, string>;
