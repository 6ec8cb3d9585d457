/** The values the config's schema is made of (schema.ts): durations, percentages, ports, counts, regexes, JSON. */
import { z } from 'zod';
import { MAX_TIMER_TEXT, parseDuration, timerProblem } from './duration.js';

/** A duration (`500ms`, `5s`, `1m`, bare number = seconds) as milliseconds; `waited`: a timer will wait this long. */
function duration(waited: boolean) {
  return z.union([z.string(), z.number()]).transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as 500ms, 5s, 1m or 300s, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    const tooLong = waited ? timerProblem(ms) : undefined;
    if (tooLong) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_TIMER_TEXT}, the longest wait a timer can hold; got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A duration something waits for (a timeout, an interval): at most MAX_TIMER_MS. */
export const Duration = duration(true);
/** A span that is compared, never waited for (a retention window): any length. */
export const Span = duration(false);

export const PositiveDuration = Duration.refine((ms) => ms > 0, { message: 'must be longer than 0' });
export const PositiveSpan = Span.refine((ms) => ms > 0, { message: 'must be longer than 0' });

export const Percent = z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100');
export const Port = z.number().int('must be a whole number').min(1, 'must be a port from 1 to 65535').max(65535, 'must be a port from 1 to 65535');
export const Count = z.number().int('must be a whole number').min(1, 'must be at least 1');

export const JsonValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonValue), z.record(z.string(), JsonValue)]),
);

/** A JavaScript regular expression, as `source` or `/source/flags`; checked when the config loads. */
export const RegexText = z.string().superRefine((text, ctx) => {
  try {
    compileRegex(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `must be a valid regular expression: ${(err as Error).message}` });
  }
});

/** `/source/flags` or a bare source (no flags). */
export function compileRegex(text: string): RegExp {
  const m = /^\/(.*)\/([dimsuv]*)$/s.exec(text);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(text);
}
