import { describe, expect, it } from 'vitest';
import { DEFAULT_WEBHOOK_RETRY_SCHEDULE, nextAttemptDelay, parseRetrySchedule } from '../src/webhooks/retry-schedule.js';

const HOUR = 60 * 60 * 1000;

describe('webhook retry schedules', () => {
  it('default to the Standard Webhooks schedule: at once, then nine retries over about three days', () => {
    expect(DEFAULT_WEBHOOK_RETRY_SCHEDULE).toEqual([0, 5000, 300_000, 1_800_000, 2 * HOUR, 5 * HOUR, 10 * HOUR, 14 * HOUR, 20 * HOUR, 24 * HOUR]);
    expect(parseRetrySchedule('0s,5s,5m,30m,2h,5h,10h,14h,20h,24h')).toEqual({ ok: true, delaysMs: [...DEFAULT_WEBHOOK_RETRY_SCHEDULE] });
    expect(Object.isFrozen(DEFAULT_WEBHOOK_RETRY_SCHEDULE)).toBe(true);
  });

  it('parse delays in ms, s, m and h, spaces and fractions allowed, in any order', () => {
    expect(parseRetrySchedule('0s,1s,2s')).toEqual({ ok: true, delaysMs: [0, 1000, 2000] });
    expect(parseRetrySchedule(' 250ms , 1.5s,0.5m, 1h ')).toEqual({ ok: true, delaysMs: [250, 1500, 30_000, HOUR] });
    expect(parseRetrySchedule('5s,0s')).toEqual({ ok: true, delaysMs: [5000, 0] });
    expect(parseRetrySchedule('168h')).toEqual({ ok: true, delaysMs: [168 * HOUR] });
    expect(parseRetrySchedule(Array(50).fill('1s').join(','))).toMatchObject({ ok: true });
  });

  it('refuse malformed text with a message naming the entry at fault', () => {
    const message = (text: string) => {
      const parsed = parseRetrySchedule(text);
      if (parsed.ok) throw new Error(`${text} parsed`);
      return parsed.message;
    };
    expect(message('')).toMatch(/^delay 1: "" is not a number with a unit \(ms, s, m or h\)/);
    expect(message('0s,5')).toMatch(/^delay 2: "5" is not a number with a unit/);
    expect(message('0s,,5s')).toMatch(/^delay 2: /);
    expect(message('-1s')).toMatch(/^delay 1: "-1s"/);
    expect(message('5d')).toMatch(/^delay 1: "5d"/);
    expect(message('1e3s')).toMatch(/^delay 1: /);
    expect(message('0s,169h')).toBe('delay 2: 169h is longer than 7 days');
    expect(message(Array(51).fill('1s').join(','))).toBe('has 51 delays, at most 50 are allowed');
  });

  it('give the delay before the next attempt, and null once the schedule is spent', () => {
    const schedule = [0, 5000, 300_000];
    const middle = () => 0.5;
    expect(nextAttemptDelay(schedule, 0, { random: middle })).toBe(0);
    expect(nextAttemptDelay(schedule, 1, { random: middle })).toBe(5000);
    expect(nextAttemptDelay(schedule, 2, { random: middle })).toBe(300_000);
    expect(nextAttemptDelay(schedule, 3, { random: middle })).toBeNull();
    expect(nextAttemptDelay(DEFAULT_WEBHOOK_RETRY_SCHEDULE, 10)).toBeNull();
    expect(nextAttemptDelay([], 0)).toBeNull();
    expect(() => nextAttemptDelay(schedule, -1)).toThrow(RangeError);
  });

  it('spread delays of a second and more by ±10 %, and never delay an immediate attempt', () => {
    const schedule = [0, 999, 1000, 300_000];
    expect(nextAttemptDelay(schedule, 2, { random: () => 0 })).toBe(900);
    expect(nextAttemptDelay(schedule, 2, { random: () => 0.999_999 })).toBe(1100);
    expect(nextAttemptDelay(schedule, 3, { random: () => 0 })).toBe(270_000);
    expect(nextAttemptDelay(schedule, 3, { random: () => 0.75 })).toBe(315_000);
    for (const random of [() => 0, () => 0.999_999]) {
      expect(nextAttemptDelay(schedule, 0, { random })).toBe(0);
      expect(nextAttemptDelay(schedule, 1, { random })).toBe(999);
    }
    for (let i = 0; i < 200; i += 1) {
      const delay = nextAttemptDelay(DEFAULT_WEBHOOK_RETRY_SCHEDULE, 9)!;
      expect(delay).toBeGreaterThanOrEqual(0.9 * 24 * HOUR);
      expect(delay).toBeLessThanOrEqual(1.1 * 24 * HOUR);
    }
  });

  it('obey a Retry-After longer than the scheduled delay, up to 24 h, and ignore a shorter one', () => {
    const schedule = [0, 5000, 300_000, 48 * HOUR];
    const random = () => 0;
    expect(nextAttemptDelay(schedule, 1, { retryAfterMs: 7000, random })).toBe(7000);
    expect(nextAttemptDelay(schedule, 0, { retryAfterMs: 2000, random })).toBe(2000);
    expect(nextAttemptDelay(schedule, 2, { retryAfterMs: 7000, random })).toBe(270_000);
    expect(nextAttemptDelay(schedule, 1, { retryAfterMs: 90 * HOUR, random })).toBe(24 * HOUR);
    // Capped below a longer scheduled delay: the schedule's own delay stands.
    expect(nextAttemptDelay(schedule, 3, { retryAfterMs: 90 * HOUR, random })).toBe(0.9 * 48 * HOUR);
    expect(nextAttemptDelay(schedule, 1, { retryAfterMs: null, random })).toBe(4500);
    expect(nextAttemptDelay(schedule, 4, { retryAfterMs: 7000, random })).toBeNull();
  });
});
