import { afterEach, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../src/storage/index.js';
import { temporaryDatabase, testStore } from './helpers.js';
import { NOW } from './queue-fixtures.js';

// A schedule records a run per fire time (86,400 a day at one a second): retention deletes the old
// ones with the tasks of their time, and every schedule keeps its latest, its lastRun.

const opened: Storage[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((storage) => storage.close()));
});

async function open() {
  const storage = await openStorage(await temporaryDatabase());
  opened.push(storage);
  const organisation = await storage.records.findOrCreateOrganisation('org', 0);
  const key = await storage.records.createApiKey({ organisationId: organisation.id, name: 'k', role: 'ADMIN', tokenHash: 'h' }, 0);
  return { storage, tenant: { organisationId: organisation.id, keyId: key.id } };
}

describe(`schedule runs under retention on ${testStore}`, () => {
  it('deletes the runs of fire times before the cut, keeping each schedule its latest', async () => {
    const { storage, tenant } = await open();
    const base = { organisationId: tenant.organisationId, keyId: tenant.keyId, cron: '* * * * * *', timezone: 'UTC', service: 'svc', action: 'a', params: {}, priority: 0, overlap: 'ALLOW' as const, catchUp: 'NONE' as const, paused: false, nextRunAt: null };
    const busy = (await storage.schedules.createSchedule({ ...base, name: 'busy' }, NOW))!;
    const quiet = (await storage.schedules.createSchedule({ ...base, name: 'quiet' }, NOW))!;
    const record = (scheduleId: number, scheduledFor: number) =>
      storage.schedules.fireSchedule({ scheduleId, scheduledFor, from: null, nextRunAt: null, newTask: null, outcome: 'MISSED', skipOverlap: false }, NOW);
    for (let second = 0; second < 10; second++) await record(busy.id, NOW + second * 1000);
    await record(quiet.id, NOW);
    expect(await storage.schedules.deleteRunsBefore(NOW + 5000, 3)).toBe(3);
    expect(await storage.schedules.deleteRunsBefore(NOW + 5000, 100)).toBe(2);
    expect(await storage.schedules.deleteRunsBefore(NOW + 60_000, 100)).toBe(4);
    const latest = await storage.schedules.lastRuns([busy.id, quiet.id]);
    expect(latest.map((run) => [run.scheduleId, run.scheduledFor.getTime()]).sort()).toEqual(
      [
        [busy.id, NOW + 9000],
        [quiet.id, NOW],
      ].sort(),
    );
  });
});
