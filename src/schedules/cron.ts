import { Cron } from 'croner';

// When a schedule fires. croner parses the expression (5 fields, or 6 with seconds first, and the
// @hourly-style nicknames) and walks IANA time zones through their daylight-saving changes: a
// local time that a spring-forward skips fires once, at the first instant after the gap, and one
// that a fall-back repeats fires once, at its first occurrence.

/** Longer expressions are refused before croner reads them: none of the valid ones comes close. */
const MAX_EXPRESSION_LENGTH = 200;

export interface CronTimes {
  /** The next `count` fire times strictly after `after`. */
  nextRuns(count: number, after: Date): Date[];
}

export type ParsedCron = { ok: true; times: CronTimes } | { ok: false; field: 'cron' | 'timezone'; message: string };

function isTimeZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/** `expression` in `timezone` (IANA, e.g. Europe/Berlin), or why not, naming the field at fault. */
export function parseCron(expression: string, timezone: string): ParsedCron {
  if (!isTimeZone(timezone)) {
    return { ok: false, field: 'timezone', message: `${JSON.stringify(timezone.slice(0, 100))} is not an IANA time zone (e.g. UTC, Europe/Berlin)` };
  }
  const trimmed = expression.trim();
  if (trimmed === '' || trimmed.length > MAX_EXPRESSION_LENGTH) {
    return { ok: false, field: 'cron', message: `a cron expression has 5 or 6 fields, or is a nickname like @hourly, within ${MAX_EXPRESSION_LENGTH} characters` };
  }
  let cron: Cron;
  try {
    cron = new Cron(trimmed, { timezone, paused: true });
  } catch (error) {
    return { ok: false, field: 'cron', message: `not a cron expression: ${error instanceof Error ? error.message : String(error)}` };
  }
  // An expression that can never fire (February 31st) parses: it is refused as one that cannot.
  if (cron.nextRun(new Date()) === null) return { ok: false, field: 'cron', message: 'the expression never fires' };
  return {
    ok: true,
    times: { nextRuns: (count, after) => cron.nextRuns(count, after) },
  };
}
