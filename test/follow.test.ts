import { eq } from 'drizzle-orm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { builtInCatalog } from '../src/catalog/services.js';
import type { TaskChange } from '../src/domain/events.js';
import type { Actor } from '../src/domain/types.js';
import { followTask, STOPPED, type FollowEnding, type TaskUpdate } from '../src/engine/follow.js';
import { createEngine } from '../src/engine/index.js';
import { openStorage } from '../src/storage/index.js';
import { openPgDatabase } from '../src/storage/pg/database.js';
import * as pgSchema from '../src/storage/pg/schema.js';
import { openDatabase } from '../src/storage/sqlite/database.js';
import * as sqliteSchema from '../src/storage/sqlite/schema.js';
import { temporaryDatabase, testStore } from './helpers.js';

// followTask (src/engine/follow.ts) on the store this vitest project tests. The worker's writes are
// made here, through a connection of their own, and announced on the engine's events as the worker
// announces them: so a test decides which writes a read of the follower can see.

const NOW = 1_700_000_000_000;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

interface Writes {
  insertTask(row: typeof pgSchema.tasks.$inferInsert): Promise<number>;
  setProgress(taskId: number, progress: number): Promise<void>;
  insertLog(taskId: number, message: string): Promise<number>;
}

async function openWrites(location: string): Promise<Writes> {
  if (testStore === 'postgres') {
    const database = openPgDatabase(location, 1);
    closers.push(() => database.close());
    const { tasks, taskLogs } = pgSchema;
    return {
      insertTask: async (row) => (await database.db.insert(tasks).values(row).returning({ id: tasks.id }))[0]!.id,
      setProgress: async (taskId, progress) => {
        await database.db.update(tasks).set({ progress }).where(eq(tasks.id, taskId));
      },
      insertLog: async (taskId, message) =>
        (
          await database.db
            .insert(taskLogs)
            .values({ taskId, level: 1, message, source: 'handler', timestamp: NOW })
            .returning({ id: taskLogs.id })
        )[0]!.id,
    };
  }
  const database = openDatabase(location);
  closers.push(async () => database.close());
  const { tasks, taskLogs } = sqliteSchema;
  return {
    insertTask: async (row) => database.db.insert(tasks).values(row).returning({ id: tasks.id }).get().id,
    setProgress: async (taskId, progress) => {
      database.db.update(tasks).set({ progress }).where(eq(tasks.id, taskId)).run();
    },
    insertLog: async (taskId, message) =>
      database.db
        .insert(taskLogs)
        .values({ taskId, level: 1, message, source: 'handler', timestamp: NOW })
        .returning({ id: taskLogs.id })
        .get().id,
  };
}

async function openFixture() {
  const location = await temporaryDatabase();
  const storage = await openStorage(location);
  closers.push(() => storage.close());
  const engine = createEngine({ storage, catalog: builtInCatalog(), worker: false });
  const writes = await openWrites(location);
  const organisation = await storage.records.findOrCreateOrganisation('acme', NOW);
  const key = await storage.records.createApiKey(
    { organisationId: organisation.id, name: 'admin', role: 'ADMIN', tokenHash: 'hash-admin' },
    NOW,
  );
  const actor: Actor = { organisationId: organisation.id, keyId: key.id, role: 'ADMIN', permissions: null };
  const taskId = await writes.insertTask({
    organisationId: organisation.id,
    keyId: key.id,
    service: 'demo',
    type: 'sleep',
    params: '{}',
    state: 'PROCESSING',
    maxAttempts: 1,
    timeoutMs: 10_000,
    retrievalProtocol: 'STORE',
    availableAt: NOW,
    dateCreated: NOW,
    dateStarted: NOW,
  });
  const announce = (change: Omit<TaskChange, 'taskId' | 'organisationId' | 'at'>) =>
    engine.events.publish('task', taskId, { ...change, taskId, organisationId: organisation.id, at: new Date() });
  return { engine, writes, actor, taskId, announce };
}

type Fixture = Awaited<ReturnType<typeof openFixture>>;

/** One turn of a handler that logs and reports progress: both written, not yet announced. */
async function writeTurn({ writes, taskId, announce }: Fixture, progress: number): Promise<() => void> {
  const logId = await writes.insertLog(taskId, `at ${progress}`);
  await writes.setProgress(taskId, progress);
  return () => {
    announce({ kind: 'LOG', logId });
    announce({ kind: 'PROGRESS', progress });
  };
}

/**
 * What the follower sends for what has been announced so far, then STOPPED: `stop` fires behind
 * those events, so the follower takes them in and stops, however fast it reads.
 */
async function collectUntilStopped(
  updates: AsyncIterableIterator<TaskUpdate | FollowEnding>,
  stop: AbortController,
): Promise<(number | null | typeof STOPPED)[]> {
  stop.abort();
  const sent: (number | null | typeof STOPPED)[] = [];
  for await (const update of updates) {
    sent.push(update === STOPPED ? STOPPED : typeof update === 'symbol' ? null : update.task.progress);
  }
  return sent;
}

describe(`followTask on ${testStore}`, () => {
  it('sends a worker turn once when a read already took it in before its events came', async () => {
    const fixture = await openFixture();
    const { engine, actor, taskId } = fixture;
    const stop = new AbortController();
    const updates = (await followTask(engine, actor, taskId, stop.signal))!;
    expect(((await updates.next()).value as TaskUpdate).task.progress).toBeNull();

    // Turn 2 is written before the read that turn 1's events cause: that read shows both.
    const announceFirst = await writeTurn(fixture, 0.25);
    const announceSecond = await writeTurn(fixture, 0.5);
    announceFirst();
    expect(((await updates.next()).value as TaskUpdate).task.progress).toBe(0.5);
    // Turn 2's events ask for a read that finds nothing the last update did not show.
    announceSecond();
    expect(await collectUntilStopped(updates, stop)).toEqual([STOPPED]);
  });

  it('sends the task again for a log line alone, the task itself unchanged', async () => {
    const fixture = await openFixture();
    const { engine, actor, taskId, writes, announce } = fixture;
    const stop = new AbortController();
    const updates = (await followTask(engine, actor, taskId, stop.signal))!;
    await updates.next();
    (await writeTurn(fixture, 0.5))();
    expect(((await updates.next()).value as TaskUpdate).task.progress).toBe(0.5);

    announce({ kind: 'LOG', logId: await writes.insertLog(taskId, 'still at 0.5') });
    expect(await collectUntilStopped(updates, stop)).toEqual([0.5, STOPPED]);
  });

  it('sends a log line whose event does not name it, though the task is unchanged', async () => {
    const fixture = await openFixture();
    const { engine, actor, taskId, writes, announce } = fixture;
    const stop = new AbortController();
    const updates = (await followTask(engine, actor, taskId, stop.signal))!;
    await updates.next();
    (await writeTurn(fixture, 0.5))();
    await updates.next();
    await writes.insertLog(taskId, 'unnamed');
    announce({ kind: 'LOG' });
    expect(await collectUntilStopped(updates, stop)).toEqual([0.5, STOPPED]);
  });
});

describe(`many followers of one task on ${testStore}`, () => {
  const FOLLOWERS = 50;

  it('each sees every turn, from reads they share', async () => {
    const fixture = await openFixture();
    const { engine, actor, taskId } = fixture;
    const stop = new AbortController();
    const followers = await Promise.all(Array.from({ length: FOLLOWERS }, () => followTask(engine, actor, taskId, stop.signal)));
    for (const updates of followers) expect(((await updates!.next()).value as TaskUpdate).task.progress).toBeNull();

    const reads = vi.spyOn(engine, 'getTasks');
    for (const progress of [0.2, 0.4, 0.6, 0.8]) {
      reads.mockClear();
      (await writeTurn(fixture, progress))();
      const seen = await Promise.all(followers.map(async (updates) => ((await updates!.next()).value as TaskUpdate).task.progress));
      expect(seen).toEqual(Array.from({ length: FOLLOWERS }, () => progress));
      // One read answers the turn's events for all of them, where each used to read for itself.
      expect(reads.mock.calls.length).toBeLessThan(FOLLOWERS / 10);
    }
    reads.mockRestore();
    const endings = await Promise.all(followers.map((updates) => collectUntilStopped(updates!, stop)));
    expect(endings).toEqual(Array.from({ length: FOLLOWERS }, () => [STOPPED]));
  });

  it('share nothing across organisations: another organisation cannot follow the task', async () => {
    const fixture = await openFixture();
    const { engine, actor, taskId } = fixture;
    const stranger: Actor = { ...actor, organisationId: actor.organisationId + 1000 };
    const mine = (await followTask(engine, actor, taskId, null))!;
    expect(((await mine.next()).value as TaskUpdate).task.id).toBe(taskId);
    expect(await followTask(engine, stranger, taskId, null)).toBeNull();
    await mine.return?.();
  });
});
