// When a message is tried again. The default is the Standard Webhooks schedule (Svix's), which
// spreads ten attempts over about three days so that a receiver down for a night still gets its
// messages; TASKPORT_WEBHOOK_RETRY_SCHEDULE replaces it (short ones for tests and impatient operators).

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Delays before each attempt: the first at once, then one retry after each later delay (10 attempts). */
export const DEFAULT_WEBHOOK_RETRY_SCHEDULE: readonly number[] = Object.freeze([
  0,
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  14 * HOUR,
  20 * HOUR,
  24 * HOUR,
]);

export const RETRY_SCHEDULE_LIMITS = Object.freeze({
  entries: 50,
  delayMs: 7 * 24 * HOUR,
  /** A receiver's Retry-After is honoured up to this long, so that it cannot park a message for ever. */
  retryAfterMs: 24 * HOUR,
  /** Delays from this long up are spread by ±jitter, so that retries after an outage do not arrive in one burst. */
  jitterFromMs: SECOND,
  jitter: 0.1,
});

const UNIT_MS = Object.freeze({ ms: 1, s: SECOND, m: MINUTE, h: HOUR });

export type ParsedRetrySchedule = { ok: true; delaysMs: number[] } | { ok: false; message: string };

/** "0s,5s,5m,30m,2h" (units ms, s, m, h; fractions allowed): the delay before each attempt, or the problem with the text. */
export function parseRetrySchedule(text: string): ParsedRetrySchedule {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length > RETRY_SCHEDULE_LIMITS.entries) {
    return { ok: false, message: `has ${parts.length} delays, at most ${RETRY_SCHEDULE_LIMITS.entries} are allowed` };
  }
  const delaysMs: number[] = [];
  for (const [index, part] of parts.entries()) {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(part);
    if (!match) {
      return {
        ok: false,
        message: `delay ${index + 1}: "${part.slice(0, 40)}" is not a number with a unit (ms, s, m or h), e.g. 0s,5s,5m,30m,2h`,
      };
    }
    const delayMs = Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
    if (delayMs > RETRY_SCHEDULE_LIMITS.delayMs) {
      return { ok: false, message: `delay ${index + 1}: ${part} is longer than 7 days` };
    }
    delaysMs.push(delayMs);
  }
  return { ok: true, delaysMs };
}

export interface NextAttemptOptions {
  /** The receiver's Retry-After (429, 503), if it sent one. */
  retryAfterMs?: number | null;
  /** In [0, 1): injected by tests to pin the jitter. */
  random?: () => number;
}

/**
 * The delay before attempt number `attemptsMade + 1`, or null when the schedule has no more
 * attempts. A Retry-After longer than the scheduled delay is obeyed as sent (capped), never jittered
 * below what the receiver asked for.
 */
export function nextAttemptDelay(
  delaysMs: readonly number[],
  attemptsMade: number,
  { retryAfterMs = null, random = Math.random }: NextAttemptOptions = {},
): number | null {
  if (!Number.isInteger(attemptsMade) || attemptsMade < 0) throw new RangeError(`attemptsMade must be a whole number ≥ 0, not ${attemptsMade}`);
  const scheduled = delaysMs[attemptsMade];
  if (scheduled === undefined) return null;
  if (retryAfterMs !== null && Number.isFinite(retryAfterMs)) {
    const asked = Math.round(Math.min(retryAfterMs, RETRY_SCHEDULE_LIMITS.retryAfterMs));
    if (asked > scheduled) return asked;
  }
  if (scheduled < RETRY_SCHEDULE_LIMITS.jitterFromMs) return scheduled;
  return Math.round(scheduled * (1 + (random() * 2 - 1) * RETRY_SCHEDULE_LIMITS.jitter));
}
