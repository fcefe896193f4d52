import { and } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { matchesTaskFilter } from '../src/domain/task-filter.js';
import { TASK_STATES, type DateRange, type Task, type TaskFilter, type TaskState } from '../src/domain/types.js';
import { openStorage, type RecordStore } from '../src/storage/index.js';
import { openPgDatabase } from '../src/storage/pg/database.js';
import * as pgSchema from '../src/storage/pg/schema.js';
import { openDatabase } from '../src/storage/sqlite/database.js';
import * as sqliteSchema from '../src/storage/sqlite/schema.js';
import { taskFilterSql } from '../src/storage/task-filter.js';
import { temporaryDatabase, testStore } from './helpers.js';

// listTasks filters in SQL, taskEvents with matchesTaskFilter: for the same tasks and filters,
// the two must select the same tasks, on whichever store this vitest project tests. The test holds
// both listTasks and the conditions of taskFilterSql on their own to the matcher.

type TaskRow = typeof pgSchema.tasks.$inferInsert;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

interface Fixture {
  records: RecordStore;
  /** Inserts a task row as the queue writes it, through a connection of its own. */
  insertTask(row: TaskRow): Promise<void>;
  /** The ids taskFilterSql selects, through that connection: listTasks' conditions, whether or not the dialect uses them yet. */
  selectIds(filter: TaskFilter): Promise<number[]>;
}

async function openFixture(): Promise<Fixture> {
  const location = await temporaryDatabase();
  const storage = await openStorage(location);
  closers.push(() => storage.close());
  if (testStore === 'postgres') {
    const database = openPgDatabase(location, 1);
    closers.push(() => database.close());
    return {
      records: storage.records,
      insertTask: async (row) => {
        await database.db.insert(pgSchema.tasks).values(row);
      },
      selectIds: async (filter) => {
        const { tasks } = pgSchema;
        const rows = await database.db.select({ id: tasks.id }).from(tasks).where(and(...taskFilterSql(tasks, filter)));
        return rows.map((row) => row.id);
      },
    };
  }
  const database = openDatabase(location);
  closers.push(() => database.close());
  return {
    records: storage.records,
    insertTask: async (row) => {
      database.db.insert(sqliteSchema.tasks).values(row).run();
    },
    selectIds: async (filter) => {
      const { tasks } = sqliteSchema;
      const rows = database.db.select({ id: tasks.id }).from(tasks).where(and(...taskFilterSql(tasks, filter))).all();
      return rows.map((row) => row.id);
    },
  };
}

const NOW = 1_700_000_000_000;
const TIMES = [NOW, NOW + 10, NOW + 20, NOW + 30];

/** A deterministic sequence, so that a failure can be replayed. */
function pseudoRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

/** The bounds a range test needs: on a stored time, between two, and outside them all. */
const PIVOTS = [NOW - 5, ...TIMES, NOW + 15, NOW + 35].map((time) => new Date(time));

function ranges(): DateRange[] {
  const result: DateRange[] = [{}, { gt: null, lte: null }];
  for (const pivot of PIVOTS) {
    result.push({ gt: pivot }, { gte: pivot }, { lt: pivot }, { lte: pivot });
  }
  for (const low of PIVOTS) {
    for (const high of PIVOTS) {
      result.push({ gte: low, lt: high }, { gt: low, lte: high });
    }
  }
  return result;
}

describe(`task filter on ${testStore}`, () => {
  it('listTasks lists exactly the tasks matchesTaskFilter accepts, for every field, range bound, state list and null', async () => {
    const { records, insertTask, selectIds } = await openFixture();
    const organisation = await records.findOrCreateOrganisation('acme', NOW);
    const keys = await Promise.all(
      ['a', 'b'].map((name) =>
        records.createApiKey({ organisationId: organisation.id, name, role: 'ADMIN', tokenHash: `hash-${name}` }, NOW),
      ),
    );
    const accounts = await Promise.all(
      ['ann', 'bob'].map(async (username) => (await records.registerAccount(organisation.id, 'mail', username, NOW))!),
    );

    const random = pseudoRandom(9);
    const users = [null, 'ann', 'bob'];
    const labels = [null, 'x', 'y'];
    for (let index = 0; index < 60; index++) {
      const started = random() < 0.6 ? pick(random, TIMES) : null;
      const completed = started !== null && random() < 0.6 ? pick(random, TIMES) : null;
      const source = pick(random, [null, ...accounts]);
      await insertTask({
        organisationId: organisation.id,
        keyId: pick(random, keys).id,
        user: pick(random, users),
        sourceId: source?.id ?? null,
        sourceType: source ? pick(random, ['mail', 'chat']) : pick(random, [null, 'mail']),
        session: pick(random, labels),
        poll: pick(random, labels),
        // Unique per organisation when set.
        idempotencyKey: index % 3 === 0 ? `key-${index}` : null,
        service: pick(random, ['demo', 'mail']),
        type: pick(random, ['echo', 'send']),
        params: '{}',
        state: pick(random, TASK_STATES),
        maxAttempts: 1,
        timeoutMs: 1000,
        retrievalProtocol: 'STORE',
        availableAt: NOW,
        dateCreated: pick(random, TIMES),
        dateStarted: started,
        dateCompleted: completed,
      });
    }
    const { items: all } = await records.listTasks(organisation.id, {}, { first: 1000 });
    expect(all).toHaveLength(60);

    const filters: TaskFilter[] = [{}, { id: [all[0]!.id, all[7]!.id, 999_999] }, { id: [] }];
    const values = {
      keyId: [null, ...keys.map((key) => key.id), 999_999],
      user: [null, ...users, 'nobody'],
      sourceId: [null, ...accounts.map((account) => account.id), 999_999],
      sourceType: [null, 'mail', 'chat', 'none'],
      session: [...labels, 'z'],
      poll: [...labels, 'z'],
      idempotencyKey: [null, 'key-0', 'key-30', 'key-1', 'key-none'],
      service: [null, 'demo', 'mail'],
      type: [null, 'echo', 'send'],
    } as const;
    for (const [field, fieldValues] of Object.entries(values)) {
      for (const value of fieldValues) filters.push({ [field]: value });
    }
    const stateLists: (TaskState[] | null)[] = [
      null,
      [],
      ...TASK_STATES.map((state) => [state]),
      ['PENDING', 'SUCCEEDED'],
      [...TASK_STATES],
    ];
    for (const state of stateLists) filters.push({ state });
    for (const field of ['dateCreated', 'dateStarted', 'dateCompleted'] as const) {
      filters.push({ [field]: null });
      for (const range of ranges()) filters.push({ [field]: range });
    }
    // Fields together: every condition must hold.
    const allRanges = ranges();
    for (let index = 0; index < 200; index++) {
      const combined: TaskFilter = {
        user: pick(random, values.user),
        service: pick(random, values.service),
        state: pick(random, stateLists),
        dateCreated: pick(random, allRanges),
        dateStarted: pick(random, [null, ...allRanges]),
      };
      if (index % 2) combined.session = pick(random, values.session);
      if (index % 3) combined.dateCompleted = pick(random, allRanges);
      filters.push(combined);
    }

    const ids = (tasks: Task[]) => tasks.map((task) => task.id).sort((a, b) => a - b);
    let selective = 0;
    for (const filter of filters) {
      const listed = await records.listTasks(organisation.id, filter, { first: 1000 });
      const matched = all.filter((task) => matchesTaskFilter(task, filter));
      expect(ids(listed.items), JSON.stringify(filter)).toEqual(ids(matched));
      expect((await selectIds(filter)).sort((a, b) => a - b), JSON.stringify(filter)).toEqual(ids(matched));
      if (matched.length > 0 && matched.length < all.length) selective++;
    }
    // Varied enough that many filters select some tasks and not others (ranges past every stored
    // time, or with their low bound above their high one, select all or none).
    expect(selective).toBeGreaterThan(filters.length / 4);
  });
});
