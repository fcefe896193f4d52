import { describe, expect, it } from 'vitest';
import { parseCron } from '../src/schedules/cron.js';

function times(expression: string, timezone: string, count: number, after: string): string[] {
  const parsed = parseCron(expression, timezone);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.times.nextRuns(count, new Date(after)).map((date) => date.toISOString());
}

describe('cron expressions of schedules', () => {
  it('read 5 fields, 6 with seconds, and nicknames', () => {
    expect(times('*/15 * * * *', 'UTC', 3, '2026-12-01T10:07:00Z')).toEqual([
      '2026-12-01T10:15:00.000Z',
      '2026-12-01T10:30:00.000Z',
      '2026-12-01T10:45:00.000Z',
    ]);
    expect(times('* * * * * *', 'UTC', 2, '2026-12-01T10:00:00Z')).toEqual(['2026-12-01T10:00:01.000Z', '2026-12-01T10:00:02.000Z']);
    expect(times('@hourly', 'UTC', 1, '2026-12-01T10:00:00Z')).toEqual(['2026-12-01T11:00:00.000Z']);
    expect(times('0 9 * * 1', 'Europe/Berlin', 1, '2026-12-01T00:00:00Z')).toEqual(['2026-12-07T08:00:00.000Z']);
  });

  it('fire a local time that spring-forward skips once, and one that fall-back repeats once', () => {
    // Europe/London: 29 March 2026, 01:00 becomes 02:00; 25 October 2026, 02:00 becomes 01:00.
    const spring = times('30 1 * * *', 'Europe/London', 3, '2026-03-28T00:00:00Z');
    expect(spring).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    const autumn = times('30 1 * * *', 'Europe/London', 3, '2026-10-24T00:00:00Z');
    expect(autumn).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    // The same in America/New_York at 02:30, the hour its spring-forward (8 March 2026) skips.
    expect(times('30 2 * * *', 'America/New_York', 2, '2026-03-07T12:00:00Z')).toEqual([
      '2026-03-08T07:00:00.000Z',
      '2026-03-09T06:30:00.000Z',
    ]);
  });

  it('name the field of what is wrong: the expression or the time zone', () => {
    expect(parseCron('61 * * * *', 'UTC')).toMatchObject({ ok: false, field: 'cron' });
    expect(parseCron('every day', 'UTC')).toMatchObject({ ok: false, field: 'cron' });
    expect(parseCron('', 'UTC')).toMatchObject({ ok: false, field: 'cron' });
    expect(parseCron('* '.repeat(200), 'UTC')).toMatchObject({ ok: false, field: 'cron' });
    expect(parseCron('0 0 31 2 *', 'UTC')).toMatchObject({ ok: false, field: 'cron', message: 'the expression never fires' });
    expect(parseCron('* * * * *', 'Mars/Olympus_Mons')).toMatchObject({ ok: false, field: 'timezone' });
  });
});
