import { afterEach, describe, expect, it } from 'vitest';
import { Catalog } from '../src/catalog/index.js';
import { demoService } from '../src/catalog/demo.js';
import { InProcessPubSub } from '../src/domain/events.js';
import type { ScheduleInput } from '../src/domain/schedules.js';
import type { Actor } from '../src/domain/types.js';
import { silentLogger } from '../src/engine/logger.js';
import { Schedules } from '../src/schedules/service.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import { temporaryDatabase, testStore } from './helpers.js';

// The scheduler on a clock the test moves: a stopped period of hours, or two days across a
// daylight-saving change, pass in milliseconds. Real stores; no timers (nothing calls start()).

const catalog = new Catalog([demoService]);
const opened: Storage[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((storage) => storage.close()));
});

interface Scheduler {
  schedules: Schedules;
  storage: Storage;
  clock: { now: number };
}

async function setup(start: string): Promise<Scheduler & { actor: Actor; location: string }> {
  const location = await temporaryDatabase();
  const storage = await openStorage(location);
  opened.push(storage);
  const organisation = await storage.records.findOrCreateOrganisation('clock', 0);
  const key = await storage.records.createApiKey(
    { organisationId: organisation.id, name: 'admin', role: 'ADMIN', tokenHash: 'hash-clock' },
    0,
  );
  const clock = { now: Date.parse(start) };
  const schedules = new Schedules({ storage, catalog, events: new InProcessPubSub(), logger: silentLogger, now: () => clock.now });
  return { schedules, storage, clock, location, actor: { organisationId: organisation.id, keyId: key.id, role: 'ADMIN', permissions: null } };
}

/** Another scheduler on the same database (on PostgreSQL a storage of its own, as another process has). */
async function another(location: string, base: Scheduler): Promise<Schedules> {
  let storage = base.storage;
  if (testStore === 'postgres') {
    storage = await openStorage(location);
    opened.push(storage);
  }
  return new Schedules({ storage, catalog, events: new InProcessPubSub(), logger: silentLogger, now: () => base.clock.now });
}

const echo = (name: string, overrides: Partial<ScheduleInput> = {}): ScheduleInput => ({
  name,
  cron: '0 * * * *',
  service: 'demo',
  action: 'echo',
  params: { message: name },
  ...overrides,
});

const iso = (time: Date | null | undefined) => time?.toISOString() ?? null;

async function fireTimes(scheduler: Scheduler & { actor: Actor }, id: number): Promise<string[]> {
  const page = await scheduler.schedules.scheduledTasks(scheduler.actor, id, 500, null);
  return page.items.map((item) => item.scheduledFor.toISOString()).reverse();
}

describe('catching up after a stopped period', () => {
  it('NONE records the latest missed fire time and waits for the next; LATEST runs it once', async () => {
    const scheduler = await setup('2026-05-01T09:30:00Z');
    const { schedules, actor, clock } = scheduler;
    const none = await schedules.createSchedule(actor, echo('none'));
    const latest = await schedules.createSchedule(actor, echo('latest', { catchUp: 'LATEST' }));
    expect(iso(none.nextRunAt)).toBe('2026-05-01T10:00:00.000Z');

    // Stopped from 09:30 to 12:20: 10:00, 11:00 and 12:00 passed.
    clock.now = Date.parse('2026-05-01T12:20:00Z');
    expect(await schedules.fireDue()).toBe(2);
    expect(await schedules.fireDue()).toBe(0);

    const [noneRun, latestRun] = await schedules.lastRuns(actor, [none.id, latest.id]);
    expect(noneRun).toMatchObject({ outcome: 'MISSED', taskId: null });
    expect(iso(noneRun!.scheduledFor)).toBe('2026-05-01T12:00:00.000Z');
    expect(latestRun).toMatchObject({ outcome: 'CREATED' });
    expect(await fireTimes(scheduler, none.id)).toEqual([]);
    expect(await fireTimes(scheduler, latest.id)).toEqual(['2026-05-01T12:00:00.000Z']);
    const [noneNow, latestNow] = await schedules.getSchedules(actor, [none.id, latest.id]);
    expect(iso(noneNow!.nextRunAt)).toBe('2026-05-01T13:00:00.000Z');
    expect(iso(latestNow!.nextRunAt)).toBe('2026-05-01T13:00:00.000Z');

    // Running again, both fire on time.
    clock.now = Date.parse('2026-05-01T13:00:00.400Z');
    expect(await schedules.fireDue()).toBe(2);
    expect(await fireTimes(scheduler, none.id)).toEqual(['2026-05-01T13:00:00.000Z']);
    expect(await fireTimes(scheduler, latest.id)).toEqual(['2026-05-01T12:00:00.000Z', '2026-05-01T13:00:00.000Z']);
  });

  it('runs a fire time a few seconds late, and the missed ones before it only as catchUp says', async () => {
    const scheduler = await setup('2026-05-01T09:30:00Z');
    const { schedules, actor, clock } = scheduler;
    const none = await schedules.createSchedule(actor, echo('none'));
    const latest = await schedules.createSchedule(actor, echo('latest', { catchUp: 'LATEST' }));
    // Back at 12:00:30: 10:00 and 11:00 were missed, and 12:00 is 30 s late, within the minute.
    clock.now = Date.parse('2026-05-01T12:00:30Z');
    while ((await schedules.fireDue()) > 0);
    expect(await fireTimes(scheduler, none.id)).toEqual(['2026-05-01T12:00:00.000Z']);
    expect(await fireTimes(scheduler, latest.id)).toEqual(['2026-05-01T11:00:00.000Z', '2026-05-01T12:00:00.000Z']);
  });

  it('a per-second schedule stopped for a day catches up with one task, not 86,400', async () => {
    const scheduler = await setup('2026-05-01T00:00:00Z');
    const { schedules, actor, clock } = scheduler;
    const every = await schedules.createSchedule(actor, echo('every second', { cron: '* * * * * *', catchUp: 'LATEST' }));
    clock.now = Date.parse('2026-05-02T00:00:00.250Z');
    while ((await schedules.fireDue()) > 0);
    // The latest missed one (a minute back), then each second since, late but within the minute.
    const times = await fireTimes(scheduler, every.id);
    expect(times[0]).toBe('2026-05-01T23:59:00.000Z');
    expect(times.length).toBe(61);
    expect(times.at(-1)).toBe('2026-05-02T00:00:00.000Z');
  });
});

describe('daylight-saving changes', () => {
  it('fires a 02:30 daily schedule once on the spring-forward day in America/New_York, and a 01:30 once on the fall-back day', async () => {
    const scheduler = await setup('2026-03-07T12:00:00Z');
    const { schedules, actor, clock } = scheduler;
    const spring = await schedules.createSchedule(actor, echo('spring', { cron: '30 2 * * *', timezone: 'America/New_York' }));
    for (let now = clock.now; now <= Date.parse('2026-03-09T12:00:00Z'); now += 5 * 60_000) {
      clock.now = now;
      await schedules.fireDue();
    }
    const springTimes = await fireTimes(scheduler, spring.id);
    const localDay = (time: string) => new Date(time).toLocaleDateString('en-CA', { timeZone: 'America/New_York' });
    expect(springTimes.map(localDay)).toEqual(['2026-03-08', '2026-03-09']);
    expect(springTimes[1]).toBe('2026-03-09T06:30:00.000Z');

    await schedules.pauseSchedule(actor, spring.id);
    clock.now = Date.parse('2026-10-31T12:00:00Z');
    const fall = await schedules.createSchedule(actor, echo('fall', { cron: '30 1 * * *', timezone: 'America/New_York' }));
    for (let now = clock.now; now <= Date.parse('2026-11-02T12:00:00Z'); now += 5 * 60_000) {
      clock.now = now;
      await schedules.fireDue();
    }
    const fallTimes = await fireTimes(scheduler, fall.id);
    expect(fallTimes.map(localDay)).toEqual(['2026-11-01', '2026-11-02']);
    // 01:30 EDT, the first of the two 01:30s.
    expect(fallTimes[0]).toBe('2026-11-01T05:30:00.000Z');
  });
});

describe('racing schedulers', () => {
  it('two schedulers firing the same schedules create one task per fire time', async () => {
    const scheduler = await setup('2026-05-01T09:59:00Z');
    const { schedules, actor, clock } = scheduler;
    const second = await another(scheduler.location, scheduler);
    const ids = [];
    for (let index = 0; index < 20; index++) {
      ids.push((await schedules.createSchedule(actor, echo(`s${index}`, { cron: '* * * * * *' }))).id);
    }
    for (let step = 1; step <= 5; step++) {
      clock.now = Date.parse('2026-05-01T09:59:00Z') + step * 1000 + 10;
      const [a, b] = await Promise.all([schedules.fireDue(), second.fireDue()]);
      expect(a + b).toBe(20);
    }
    for (const id of ids) {
      expect(await fireTimes(scheduler, id)).toEqual([1, 2, 3, 4, 5].map((second) => `2026-05-01T09:59:0${second}.000Z`));
    }
  });
});

describe('a schedule whose key was revoked', () => {
  it('records REFUSED and moves on, creating nothing', async () => {
    const scheduler = await setup('2026-05-01T09:30:00Z');
    const { schedules, actor, clock, storage } = scheduler;
    const schedule = await schedules.createSchedule(actor, echo('orphan'));
    await storage.records.revokeApiKey(actor.organisationId, actor.keyId, clock.now);
    clock.now = Date.parse('2026-05-01T10:00:01Z');
    expect(await schedules.fireDue()).toBe(1);
    const [run] = await schedules.lastRuns(actor, [schedule.id]);
    expect(run).toMatchObject({ outcome: 'REFUSED', taskId: null });
    expect(await fireTimes(scheduler, schedule.id)).toEqual([]);
    expect(iso((await schedules.getSchedules(actor, [schedule.id]))[0]!.nextRunAt)).toBe('2026-05-01T11:00:00.000Z');
  });
});
