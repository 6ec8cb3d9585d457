import type { FleetReport } from '../report.js';

export interface RenderOptions {
  color: boolean;
  verbose?: boolean;
}

/** One output format: a pure function of the report (cf. goss `outputs/`). */
export interface OutputFormat {
  readonly name: string;
  render(report: FleetReport, options: RenderOptions): string;
}

/** Colour only for a terminal, never when NO_COLOR is set (https://no-color.org); FORCE_COLOR wins. */
export function wantColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}
