import type { ChalkInstance } from 'chalk';
import type { HealthStatus } from '../report.js';

/** One colour per status in every human output: green, yellow, red, magenta; grey for "no data". */
export function paintStatus(c: ChalkInstance, status: HealthStatus | null, text: string): string {
  switch (status) {
    case 'HEALTHY':
      return c.green(text);
    case 'DEGRADED':
      return c.yellow(text);
    case 'UNHEALTHY':
      return c.red(text);
    case 'UNKNOWN':
      return c.magenta(text);
    default:
      return c.gray(text);
  }
}
