import { afterEach, describe, expect, it } from 'vitest';
import { openStorage, type RecordStore } from '../src/storage/index.js';
import { openPgDatabase } from '../src/storage/pg/database.js';
import * as pgSchema from '../src/storage/pg/schema.js';
import { openDatabase } from '../src/storage/sqlite/database.js';
import * as sqliteSchema from '../src/storage/sqlite/schema.js';
import { temporaryDatabase, testStore } from './helpers.js';

// The record contract (src/storage/contract.ts RecordStore), held to whichever store this vitest
// project tests. Races run one storage against a second one on the same database, as two processes
// would.

type TaskRow = typeof pgSchema.tasks.$inferInsert;
type LogRow = typeof pgSchema.taskLogs.$inferInsert;
type ResultRow = typeof pgSchema.taskResults.$inferInsert;

interface Fixture {
  records: RecordStore;
  /** A second storage on the same database, as another process opens it. */
  otherProcess: RecordStore;
  // Rows the queue store writes in the server; written here through a connection of their own, so
  // that these tests hold the record statements alone.
  insertTask(row: TaskRow): Promise<number>;
  insertLog(row: LogRow): Promise<number>;
  insertResult(row: ResultRow): Promise<number>;
  insertDependency(taskId: number, dependsOnId: number): Promise<void>;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function openFixture(): Promise<Fixture> {
  const location = await temporaryDatabase();
  const storage = await openStorage(location);
  const other = await openStorage(location);
  closers.push(() => storage.close(), () => other.close());
  const stores = { records: storage.records, otherProcess: other.records };
  if (testStore === 'postgres') {
    const database = openPgDatabase(location, 2);
    closers.push(() => database.close());
    type Table = typeof pgSchema.tasks | typeof pgSchema.taskLogs | typeof pgSchema.taskResults;
    const insertId = async (table: Table, row: never) => {
      const [inserted] = await database.db.insert(table).values(row).returning({ id: table.id });
      return inserted!.id;
    };
    return {
      ...stores,
      insertTask: (row) => insertId(pgSchema.tasks, row as never),
      insertLog: (row) => insertId(pgSchema.taskLogs, row as never),
      insertResult: (row) => insertId(pgSchema.taskResults, row as never),
      insertDependency: async (taskId, dependsOnId) => {
        await database.db.insert(pgSchema.taskDependencies).values({ taskId, dependsOnId });
      },
    };
  }
  const database = openDatabase(location);
  closers.push(() => database.close());
  type Table = typeof sqliteSchema.tasks | typeof sqliteSchema.taskLogs | typeof sqliteSchema.taskResults;
  const insertId = (table: Table, row: never) =>
    Promise.resolve(database.db.insert(table).values(row).returning({ id: table.id }).get().id);
  return {
    ...stores,
    insertTask: (row) => insertId(sqliteSchema.tasks, row as never),
    insertLog: (row) => insertId(sqliteSchema.taskLogs, row as never),
    insertResult: (row) => insertId(sqliteSchema.taskResults, row as never),
    insertDependency: async (taskId, dependsOnId) => {
      database.db.insert(sqliteSchema.taskDependencies).values({ taskId, dependsOnId }).run();
    },
  };
}

const NOW = 1_700_000_000_000;

/** An organisation with an ADMIN key, which tasks and allocations need. */
async function tenant(records: RecordStore, name = 'acme') {
  const organisation = await records.findOrCreateOrganisation(name, NOW);
  const key = await records.createApiKey(
    { organisationId: organisation.id, name: `${name}-admin`, role: 'ADMIN', tokenHash: `hash-${name}` },
    NOW,
  );
  return { organisation, key };
}

function taskRow(organisationId: number, keyId: number, overrides: Partial<TaskRow> = {}): TaskRow {
  return {
    organisationId,
    keyId,
    service: 'demo',
    type: 'echo',
    params: '{"text":"hi"}',
    state: 'PENDING',
    maxAttempts: 1,
    timeoutMs: 1000,
    retrievalProtocol: 'STORE',
    availableAt: NOW,
    dateCreated: NOW,
    ...overrides,
  };
}

describe(`record store on ${testStore}`, () => {
  it('finds or creates an organisation once, however many processes ask for it at once', async () => {
    const { records, otherProcess } = await openFixture();
    const found = await Promise.all(
      Array.from({ length: 8 }, (_, index) => (index % 2 ? otherProcess : records).findOrCreateOrganisation('acme', NOW + index)),
    );
    expect(new Set(found.map((organisation) => organisation.id)).size).toBe(1);
    const [organisation] = found;
    expect(organisation).toMatchObject({ name: 'acme', retrievalProtocol: 'STORE' });
    expect(await records.getOrganisation(organisation!.id)).toEqual(organisation);
    expect(await records.getOrganisation(organisation!.id + 1)).toBeNull();
    expect(await records.setRetrievalProtocol(organisation!.id, 'CHANNEL')).toMatchObject({ retrievalProtocol: 'CHANNEL' });
    expect(await records.setRetrievalProtocol(organisation!.id + 1, 'CHANNEL')).toBeNull();
    expect((await records.findOrCreateOrganisation('acme', NOW)).retrievalProtocol).toBe('CHANNEL');
  });

  it('creates, finds, revokes, lists and gets API keys within their organisation', async () => {
    const { records } = await openFixture();
    const acme = await records.findOrCreateOrganisation('acme', NOW);
    const other = await records.findOrCreateOrganisation('other', NOW);
    expect(await records.countApiKeys()).toBe(0);
    const admin = await records.createApiKey({ organisationId: acme.id, name: 'admin', role: 'ADMIN', tokenHash: 'h1' }, NOW);
    const member = await records.createApiKey(
      { organisationId: acme.id, name: 'member', role: 'MEMBER', tokenHash: 'h2', permissions: { demo: '*' } },
      NOW,
    );
    const foreign = await records.createApiKey({ organisationId: other.id, name: 'x', role: 'ADMIN', tokenHash: 'h3' }, NOW);
    expect(await records.countApiKeys()).toBe(3);
    expect(admin).toMatchObject({ organisationId: acme.id, role: 'ADMIN', permissions: null, revoked: false });
    expect(member.permissions).toEqual({ demo: '*' });

    expect(await records.findActiveKey('h2')).toEqual({ key: member, organisation: acme });
    expect(await records.findActiveKey('nope')).toBeNull();

    expect(await records.revokeApiKey(other.id, member.id, NOW + 1)).toBeNull();
    expect(await records.revokeApiKey(acme.id, member.id, NOW + 1)).toMatchObject({ id: member.id, revoked: true });
    // Revoking again keeps the key revoked (and its first revocation's date).
    expect(await records.revokeApiKey(acme.id, member.id, NOW + 2)).toMatchObject({ revoked: true });
    expect(await records.findActiveKey('h2')).toBeNull();

    expect((await records.listApiKeys(acme.id)).map((key) => [key.id, key.revoked])).toEqual([
      [admin.id, false],
      [member.id, true],
    ]);
    const got = await records.getApiKeys(acme.id, [member.id, foreign.id, admin.id]);
    expect(got.map((key) => key.id).sort()).toEqual([admin.id, member.id].sort());
    expect(await records.getApiKeys(acme.id, [])).toEqual([]);
  });

  it('registers an active account once, lets it be registered again after deregistration, and lists accounts', async () => {
    const { records, otherProcess } = await openFixture();
    const acme = await records.findOrCreateOrganisation('acme', NOW);
    const other = await records.findOrCreateOrganisation('other', NOW);
    const first = await records.registerAccount(acme.id, 'mail', 'ann', NOW);
    expect(first).toMatchObject({ organisationId: acme.id, service: 'mail', username: 'ann', dateDeregistered: null });
    expect(await records.registerAccount(acme.id, 'mail', 'ann', NOW)).toBeNull();
    expect(await records.findActiveAccount(acme.id, 'mail', 'ann')).toEqual(first);
    expect(await records.findActiveAccount(other.id, 'mail', 'ann')).toBeNull();

    const deregistered = await records.deregisterAccount(acme.id, 'mail', 'ann', NOW + 5);
    expect(deregistered).toMatchObject({ id: first!.id, dateDeregistered: new Date(NOW + 5) });
    expect(await records.deregisterAccount(acme.id, 'mail', 'ann', NOW + 6)).toBeNull();
    expect(await records.findActiveAccount(acme.id, 'mail', 'ann')).toBeNull();

    const again = await Promise.all(
      Array.from({ length: 6 }, (_, index) => (index % 2 ? otherProcess : records).registerAccount(acme.id, 'mail', 'ann', NOW + 10)),
    );
    const registered = again.filter((account) => account !== null);
    expect(registered).toHaveLength(1);
    expect(registered[0]!.id).not.toBe(first!.id);

    const bob = await records.registerAccount(acme.id, 'mail', 'bob', NOW);
    const chat = await records.registerAccount(acme.id, 'chat', 'ann', NOW);
    await records.registerAccount(other.id, 'mail', 'eve', NOW);
    const firstPage = await records.listAccounts(acme.id, null, { first: 2 });
    expect(firstPage.items.map((account) => account.id)).toEqual([registered[0]!.id, bob!.id]);
    expect(firstPage.hasNextPage).toBe(true);
    const secondPage = await records.listAccounts(acme.id, null, { first: 2, afterId: bob!.id });
    expect(secondPage).toEqual({ items: [chat], hasNextPage: false });
    const mail = await records.listAccounts(acme.id, 'mail', { first: 10 });
    expect(mail.items.map((account) => account.username)).toEqual(['ann', 'bob']);
    const got = await records.getAccounts(acme.id, [first!.id, chat!.id, 9999]);
    expect(got.map((account) => account.id).sort()).toEqual([first!.id, chat!.id].sort());
  });

  it('lists the tasks that match every filter, newest first, a page at a time, and gets tasks by id', async () => {
    const fixture = await openFixture();
    const { records } = fixture;
    const { organisation, key } = await tenant(records);
    const { organisation: other, key: otherKey } = await tenant(records, 'other');
    const account = await records.registerAccount(organisation.id, 'mail', 'ann', NOW);
    const insert = (overrides: Partial<TaskRow>) => fixture.insertTask(taskRow(organisation.id, key.id, overrides));
    const plain = await insert({});
    const ofUser = await insert({ user: 'ann', session: 's1', poll: 'p1', dateCreated: NOW + 10 });
    const ofSource = await insert({
      sourceId: account!.id,
      sourceType: 'mail',
      service: 'mail',
      type: 'send',
      dateCreated: NOW + 20,
    });
    const done = await insert({ state: 'SUCCEEDED', dateStarted: NOW + 30, dateCompleted: NOW + 40, dateCreated: NOW + 30 });
    const failed = await insert({ state: 'FAILED', dateStarted: NOW + 50, dateCompleted: NOW + 60, dateCreated: NOW + 50 });
    const foreign = await fixture.insertTask(taskRow(other.id, otherKey.id, { user: 'ann' }));

    const ids = async (filter: Parameters<RecordStore['listTasks']>[1]) =>
      (await records.listTasks(organisation.id, filter, { first: 50 })).items.map((task) => task.id);
    expect(await ids({})).toEqual([failed, done, ofSource, ofUser, plain]);
    expect(await ids({ keyId: key.id })).toEqual([failed, done, ofSource, ofUser, plain]);
    expect(await ids({ keyId: otherKey.id })).toEqual([]);
    expect(await ids({ user: 'ann' })).toEqual([ofUser]);
    expect(await ids({ session: 's1' })).toEqual([ofUser]);
    expect(await ids({ poll: 'p1' })).toEqual([ofUser]);
    expect(await ids({ sourceId: account!.id })).toEqual([ofSource]);
    expect(await ids({ sourceType: 'mail' })).toEqual([ofSource]);
    expect(await ids({ service: 'mail', type: 'send' })).toEqual([ofSource]);
    expect(await ids({ type: 'echo' })).toEqual([failed, done, ofUser, plain]);
    expect(await ids({ state: ['SUCCEEDED', 'FAILED'] })).toEqual([failed, done]);
    expect(await ids({ state: [] })).toEqual([failed, done, ofSource, ofUser, plain]);
    expect(await ids({ dateCreated: { gte: new Date(NOW + 10), lt: new Date(NOW + 30) } })).toEqual([ofSource, ofUser]);
    expect(await ids({ dateCreated: { gt: new Date(NOW + 10), lte: new Date(NOW + 30) } })).toEqual([done, ofSource]);
    expect(await ids({ dateStarted: { gte: new Date(NOW) } })).toEqual([failed, done]);
    expect(await ids({ dateCompleted: { lt: new Date(NOW + 60) } })).toEqual([done]);
    expect(await ids({ user: 'ann', state: ['PENDING'], dateStarted: null })).toEqual([ofUser]);

    const first = await records.listTasks(organisation.id, {}, { first: 2 });
    expect(first.items.map((task) => task.id)).toEqual([failed, done]);
    expect(first.hasNextPage).toBe(true);
    const second = await records.listTasks(organisation.id, {}, { first: 2, afterId: done });
    expect(second.items.map((task) => task.id)).toEqual([ofSource, ofUser]);
    expect(second.hasNextPage).toBe(true);
    const last = await records.listTasks(organisation.id, {}, { first: 2, afterId: ofUser });
    expect(last).toMatchObject({ items: [{ id: plain }], hasNextPage: false });

    const got = await records.getTasks(organisation.id, [done, foreign, ofUser, 123456]);
    expect(got.map((task) => task.id).sort((a, b) => a - b)).toEqual([ofUser, done]);
    const task = got.find((candidate) => candidate.id === ofUser)!;
    expect(task).toMatchObject({
      organisationId: organisation.id,
      keyId: key.id,
      user: 'ann',
      params: { text: 'hi' },
      state: 'PENDING',
      resultRetrieved: false,
      cancelRequested: false,
      execution: 'ASYNCHRONOUS',
      dateCreated: new Date(NOW + 10),
      dateStarted: null,
    });
    expect(await records.getTasks(organisation.id, [])).toEqual([]);

    await fixture.insertDependency(failed, done);
    await fixture.insertDependency(failed, plain);
    await fixture.insertDependency(done, plain);
    expect(await records.dependencies([failed, ofUser])).toEqual([
      { taskId: failed, dependsOnId: plain },
      { taskId: failed, dependsOnId: done },
    ]);
    expect(await records.dependencies([])).toEqual([]);
  });

  it('reads a page of logs of each of several tasks in one call, from a level and after an id', async () => {
    const fixture = await openFixture();
    const { records } = fixture;
    const { organisation, key } = await tenant(records);
    const [a, b, quiet] = [
      await fixture.insertTask(taskRow(organisation.id, key.id)),
      await fixture.insertTask(taskRow(organisation.id, key.id)),
      await fixture.insertTask(taskRow(organisation.id, key.id)),
    ];
    // Interleaved, so that a page of one task must skip the other's lines; levels 0 DEBUG … 3 ERROR.
    const levels = [0, 1, 2, 3, 0, 2, 1, 3];
    const logIds = new Map<number, number[]>([
      [a!, []],
      [b!, []],
    ]);
    for (const [index, level] of levels.entries()) {
      for (const taskId of [a!, b!]) {
        const message = `${taskId}-${index}`;
        const id = await fixture.insertLog({ taskId, level, message, source: 'handler', timestamp: NOW + index });
        logIds.get(taskId)!.push(id);
      }
    }
    const pageIds = (pages: Map<number, { items: { id: number }[]; hasNextPage: boolean }>, taskId: number) => ({
      ids: pages.get(taskId)!.items.map((log) => log.id),
      hasNextPage: pages.get(taskId)!.hasNextPage,
    });
    const aIds = logIds.get(a!)!;
    const bIds = logIds.get(b!)!;

    const all = await records.taskLogs([a!, b!, quiet!], null, { first: 100 });
    expect(pageIds(all, a!)).toEqual({ ids: aIds, hasNextPage: false });
    expect(pageIds(all, b!)).toEqual({ ids: bIds, hasNextPage: false });
    expect(pageIds(all, quiet!)).toEqual({ ids: [], hasNextPage: false });
    expect(all.get(a!)!.items[3]).toMatchObject({
      taskId: a,
      level: 'ERROR',
      message: `${a}-3`,
      source: 'handler',
      timestamp: new Date(NOW + 3),
    });

    const firstPage = await records.taskLogs([a!, b!], null, { first: 3 });
    expect(pageIds(firstPage, a!)).toEqual({ ids: aIds.slice(0, 3), hasNextPage: true });
    expect(pageIds(firstPage, b!)).toEqual({ ids: bIds.slice(0, 3), hasNextPage: true });

    const warnings = (ids: number[]) => ids.filter((_, index) => levels[index]! >= 2);
    const warnPage = await records.taskLogs([a!, b!], 'WARN', { first: 2 });
    expect(pageIds(warnPage, a!)).toEqual({ ids: warnings(aIds).slice(0, 2), hasNextPage: true });
    expect(pageIds(warnPage, b!)).toEqual({ ids: warnings(bIds).slice(0, 2), hasNextPage: true });
    const exactlyTheRest = await records.taskLogs([a!], 'WARN', { first: 2, afterId: warnings(aIds)[1] });
    expect(pageIds(exactlyTheRest, a!)).toEqual({ ids: warnings(aIds).slice(2), hasNextPage: false });
    // One afterId for every task: past all of a's lines, but not all of b's.
    const afterA = await records.taskLogs([a!, b!], 'ERROR', { first: 5, afterId: aIds[5] });
    expect(pageIds(afterA, a!)).toEqual({ ids: [aIds[7]], hasNextPage: false });
    expect(pageIds(afterA, b!)).toEqual({ ids: [bIds[7]], hasNextPage: false });
    expect(await records.taskLogs([], null, { first: 5 })).toEqual(new Map());

    const lines = await records.getLogs([aIds[2]!, bIds[0]!, 999_999]);
    const byId = (x: { id: number }, y: { id: number }) => x.id - y.id;
    expect(lines.map(({ id, taskId, level }) => ({ id, taskId, level })).sort(byId)).toEqual(
      [
        { id: aIds[2], taskId: a, level: 'WARN' },
        { id: bIds[0], taskId: b, level: 'DEBUG' },
      ].sort(byId as never),
    );
    expect(await records.getLogs([])).toEqual([]);
  });

  /** A finished task with two results, and the results' ids. */
  async function finishedTask(fixture: Fixture, organisationId: number, keyId: number, overrides: Partial<TaskRow> = {}) {
    const taskId = await fixture.insertTask(
      taskRow(organisationId, keyId, { state: 'SUCCEEDED', dateCompleted: NOW, ...overrides }),
    );
    const result = (name: string, data: string) =>
      fixture.insertResult({ taskId, name, contentType: 'application/json', size: data.length, data, dateCreated: NOW });
    const resultIds = [await result('first', '{"n":1}'), await result('second', '{"n":2}')];
    return { taskId, resultIds };
  }

  it('hands results to exactly one of two concurrent retrievals, again to a retry with its key until the window ends', async () => {
    const fixture = await openFixture();
    const { records, otherProcess } = fixture;
    const { organisation, key } = await tenant(records);
    const { organisation: other } = await tenant(records, 'other');
    const pending = await fixture.insertTask(taskRow(organisation.id, key.id));
    const keepUntil = NOW + 60_000;
    const keyed = (keyHash: string | null) => ({ keyHash, keepUntil });

    expect(await records.retrieveResults(organisation.id, pending, keyed(null), NOW)).toEqual({ outcome: 'not-completed' });
    const oneShot = await finishedTask(fixture, organisation.id, key.id);
    expect(await records.retrieveResults(other.id, oneShot.taskId, keyed(null), NOW)).toEqual({ outcome: 'not-found' });

    const raced = await Promise.all([
      records.retrieveResults(organisation.id, oneShot.taskId, keyed(null), NOW),
      otherProcess.retrieveResults(organisation.id, oneShot.taskId, keyed(null), NOW),
    ]);
    const winners = raced.filter((outcome) => outcome.outcome === 'retrieved');
    expect(winners).toHaveLength(1);
    expect(raced.filter((outcome) => outcome.outcome === 'already-retrieved')).toHaveLength(1);
    expect(winners[0]).toMatchObject({
      payloads: [
        { result: { id: oneShot.resultIds[0], name: 'first', retrieved: true }, data: { n: 1 } },
        { result: { id: oneShot.resultIds[1], name: 'second', retrieved: true }, data: { n: 2 } },
      ],
    });
    expect((await records.getTasks(organisation.id, [oneShot.taskId]))[0]!.resultRetrieved).toBe(true);
    expect((await records.taskResults([oneShot.taskId])).map((result) => result.retrieved)).toEqual([true, true]);

    // Two clients with keys of their own: one wins; only its key gets the payloads again.
    const keptTask = await finishedTask(fixture, organisation.id, key.id);
    const keys = ['key-a', 'key-b'];
    const keyedRace = await Promise.all([
      records.retrieveResults(organisation.id, keptTask.taskId, keyed(keys[0]!), NOW),
      otherProcess.retrieveResults(organisation.id, keptTask.taskId, keyed(keys[1]!), NOW),
    ]);
    expect(keyedRace.filter((outcome) => outcome.outcome === 'retrieved')).toHaveLength(1);
    const winningKey = keys[keyedRace.findIndex((outcome) => outcome.outcome === 'retrieved')]!;
    const losingKey = keys.find((candidate) => candidate !== winningKey)!;
    const retries = await Promise.all([
      records.retrieveResults(organisation.id, keptTask.taskId, keyed(winningKey), NOW + 1000),
      otherProcess.retrieveResults(organisation.id, keptTask.taskId, keyed(winningKey), NOW + 1000),
    ]);
    for (const retry of retries) {
      expect(retry).toMatchObject({ outcome: 'retrieved', payloads: [{ data: { n: 1 } }, { data: { n: 2 } }] });
    }
    expect(await records.retrieveResults(organisation.id, keptTask.taskId, keyed(losingKey), NOW + 1000)).toEqual({
      outcome: 'already-retrieved',
    });
    expect(await records.retrieveResults(organisation.id, keptTask.taskId, keyed(null), NOW + 1000)).toEqual({
      outcome: 'already-retrieved',
    });
    // At the end of the window the payloads go, and the key no longer gets them.
    expect(await records.retrieveResults(organisation.id, keptTask.taskId, keyed(winningKey), keepUntil)).toEqual({
      outcome: 'already-retrieved',
    });
    expect(await records.retrieveResults(organisation.id, keptTask.taskId, keyed(winningKey), NOW + 1000)).toEqual({
      outcome: 'already-retrieved',
    });
  });

  it('deletes the payloads of expired retry windows, at most a given number of tasks per call', async () => {
    const fixture = await openFixture();
    const { records, otherProcess } = fixture;
    const { organisation, key } = await tenant(records);
    const windows = [NOW + 10, NOW + 20, NOW + 30, NOW + 1_000_000];
    const kept = [];
    for (const keepUntil of windows) {
      const task = await finishedTask(fixture, organisation.id, key.id);
      await records.retrieveResults(organisation.id, task.taskId, { keyHash: 'k', keepUntil }, NOW);
      kept.push(task);
    }
    const sweeps = await Promise.all([
      records.deleteExpiredPayloads(NOW + 100, 2),
      otherProcess.deleteExpiredPayloads(NOW + 100, 2),
    ]);
    // Three windows ended: two sweeps of two tasks at most clear them between them, each task once.
    expect(sweeps.reduce((sum, count) => sum + count, 0)).toBe(3);
    expect(Math.max(...sweeps)).toBe(2);
    expect(await records.deleteExpiredPayloads(NOW + 100, 2)).toBe(0);
    for (const task of kept.slice(0, 3)) {
      expect(await records.retrieveResults(organisation.id, task.taskId, { keyHash: 'k', keepUntil: 0 }, NOW + 1)).toEqual({
        outcome: 'already-retrieved',
      });
    }
    const stillKept = await records.retrieveResults(organisation.id, kept[3]!.taskId, { keyHash: 'k', keepUntil: 0 }, NOW + 100);
    expect(stillKept).toMatchObject({
      outcome: 'retrieved',
      payloads: [{ data: { n: 1 } }, { data: { n: 2 } }],
    });
  });

  it('reserves a CHANNEL payload for one delivery at a time, and counts it delivered only when confirmed', async () => {
    const fixture = await openFixture();
    const { records, otherProcess } = fixture;
    const { organisation, key } = await tenant(records);
    const { taskId, resultIds } = await finishedTask(fixture, organisation.id, key.id, { retrievalProtocol: 'CHANNEL' });
    const [firstResult, secondResult] = resultIds as [number, number];

    const claims = await Promise.all([
      records.claimResultDelivery(firstResult, 'sub-a'),
      otherProcess.claimResultDelivery(firstResult, 'sub-b'),
    ]);
    const granted = claims.filter((payload) => payload !== null);
    expect(granted).toHaveLength(1);
    expect(granted[0]).toMatchObject({ result: { id: firstResult, name: 'first' }, data: { n: 1 } });
    const holder = claims[0] ? 'sub-a' : 'sub-b';

    // Another subscription can neither confirm nor release it.
    expect(await records.confirmResultDelivery(firstResult, 'sub-c', NOW)).toBe(false);
    await records.releaseResultDelivery(firstResult, 'sub-c');
    expect(await records.claimResultDelivery(firstResult, 'sub-c')).toBeNull();
    // Released by its holder (its write failed), it may be claimed again.
    await records.releaseResultDelivery(firstResult, holder);
    expect(await records.claimResultDelivery(firstResult, 'sub-c')).toMatchObject({ data: { n: 1 } });
    expect(await otherProcess.claimResultDelivery(secondResult, 'sub-d')).toMatchObject({ data: { n: 2 } });

    const confirmations = await Promise.all([
      records.confirmResultDelivery(firstResult, 'sub-c', NOW),
      otherProcess.confirmResultDelivery(secondResult, 'sub-d', NOW),
    ]);
    expect(confirmations).toEqual([true, true]);
    expect(await records.confirmResultDelivery(firstResult, 'sub-c', NOW)).toBe(false);
    expect(await records.claimResultDelivery(firstResult, 'sub-e')).toBeNull();
    expect((await records.getTasks(organisation.id, [taskId]))[0]!.resultRetrieved).toBe(true);
    expect(await records.retrieveResults(organisation.id, taskId, { keyHash: null, keepUntil: 0 }, NOW)).toEqual({
      outcome: 'already-retrieved',
    });
    const results = await records.getResults(organisation.id, resultIds);
    expect(results.map((result) => result.retrieved)).toEqual([true, true]);
  });

  it('marks a task retrieved when its last results are confirmed at once, from two processes', async () => {
    const fixture = await openFixture();
    const { records, otherProcess } = fixture;
    const { organisation, key } = await tenant(records);
    const delivered = [];
    for (let index = 0; index < 8; index++) {
      delivered.push(await finishedTask(fixture, organisation.id, key.id, { retrievalProtocol: 'CHANNEL' }));
    }
    const resultIds = delivered.flatMap((task) => task.resultIds);
    for (const resultId of resultIds) expect(await records.claimResultDelivery(resultId, `sub-${resultId}`)).not.toBeNull();
    // Each task's two confirmations run in two processes: each must see the other's result delivered.
    // Both pools open their connections first: a pair overlaps only when neither waits for a connect.
    const warmUp = (store: RecordStore) => Array.from({ length: 4 }, () => store.getOrganisation(organisation.id));
    await Promise.all([...warmUp(records), ...warmUp(otherProcess)]);
    const confirmed = await Promise.all(
      resultIds.map((resultId, index) => (index % 2 ? otherProcess : records).confirmResultDelivery(resultId, `sub-${resultId}`, NOW)),
    );
    expect(confirmed.every(Boolean)).toBe(true);
    const tasks = await records.getTasks(organisation.id, delivered.map((task) => task.taskId));
    expect(tasks.map((task) => task.resultRetrieved)).toEqual(delivered.map(() => true));
  });

  it('lets a retrieval take a payload a delivery has claimed, whose confirmation then changes nothing', async () => {
    const fixture = await openFixture();
    const { records, otherProcess } = fixture;
    const { organisation, key } = await tenant(records);
    const { organisation: other } = await tenant(records, 'other');
    const { taskId, resultIds } = await finishedTask(fixture, organisation.id, key.id, { retrievalProtocol: 'CHANNEL' });
    expect(await records.claimResultDelivery(resultIds[0]!, 'sub-a')).not.toBeNull();
    expect(await otherProcess.retrieveResults(organisation.id, taskId, { keyHash: null, keepUntil: 0 }, NOW)).toMatchObject({
      outcome: 'retrieved',
      payloads: [{ data: { n: 1 } }, { data: { n: 2 } }],
    });
    expect(await records.confirmResultDelivery(resultIds[0]!, 'sub-a', NOW)).toBe(false);
    expect(await records.claimResultDelivery(resultIds[1]!, 'sub-b')).toBeNull();
    expect(await records.getResults(other.id, resultIds)).toEqual([]);
  });

  it('creates and deletes allocations, whose deletion revokes their execution tokens', async () => {
    const { records, otherProcess } = await openFixture();
    const { organisation, key } = await tenant(records);
    const { organisation: other, key: otherKey } = await tenant(records, 'other');
    const allocation = await records.createAllocation(
      { organisationId: organisation.id, keyId: key.id, name: 'mailer', service: 'mail', action: 'send', instances: 2, timeoutMs: 5000 },
      NOW,
    );
    expect(allocation).toMatchObject({
      organisationId: organisation.id,
      name: 'mailer',
      instances: 2,
      executions: 0,
      dateCreated: new Date(NOW),
    });
    const kept = await records.createAllocation(
      { organisationId: organisation.id, keyId: key.id, name: 'kept', service: 'mail', action: 'send', instances: 1, timeoutMs: 5000 },
      NOW,
    );
    const foreign = await records.createAllocation(
      { organisationId: other.id, keyId: otherKey.id, name: 'theirs', service: 'mail', action: 'send', instances: 1, timeoutMs: 5000 },
      NOW,
    );
    expect((await records.listAllocations(organisation.id)).map((row) => row.id)).toEqual([allocation.id, kept.id]);
    expect((await records.listAllocations(null)).map((row) => row.id)).toEqual([allocation.id, kept.id, foreign.id]);

    const token = await records.createExecutionToken({ allocationId: allocation.id, tokenHash: 't1', expiresAt: NOW + 1000 }, NOW);
    const spare = await records.createExecutionToken({ allocationId: allocation.id, tokenHash: 't2', expiresAt: NOW + 1000 }, NOW);
    const keptToken = await records.createExecutionToken({ allocationId: kept.id, tokenHash: 't3', expiresAt: NOW + 1000 }, NOW);
    await records.createExecutionToken({ allocationId: kept.id, tokenHash: 't4', expiresAt: NOW }, NOW);
    expect(token).toEqual({ id: token.id, allocationId: allocation.id, expiresAt: new Date(NOW + 1000), revoked: false });
    const live = async () => (await records.liveExecutionTokens(NOW)).map((row) => row.tokenHash).sort();
    expect(await live()).toEqual(['t1', 't2', 't3']);
    expect(await otherProcess.findLiveExecutionToken('t1', NOW)).toEqual(token);
    expect(await records.findLiveExecutionToken('t4', NOW)).toBeNull();
    expect(await records.findLiveExecutionToken('unknown', NOW)).toBeNull();

    expect(await records.revokeExecutionToken(other.id, spare.id)).toBeNull();
    expect(await records.revokeExecutionToken(organisation.id, spare.id)).toMatchObject({ id: spare.id, revoked: true });
    expect(await live()).toEqual(['t1', 't3']);
    expect(await records.findLiveExecutionToken('t2', NOW)).toBeNull();

    expect(await records.deleteAllocation(other.id, allocation.id, NOW)).toBeNull();
    expect(await records.deleteAllocation(organisation.id, allocation.id, NOW)).toMatchObject({ id: allocation.id });
    expect(await records.deleteAllocation(organisation.id, allocation.id, NOW)).toBeNull();
    expect(await live()).toEqual(['t3']);
    expect(await records.findLiveExecutionToken('t1', NOW)).toBeNull();
    expect(await records.findLiveExecutionToken('t3', NOW)).toEqual(keptToken);
    expect((await records.liveExecutionTokens(NOW))[0]).toEqual({ ...keptToken, tokenHash: 't3' });
    expect((await records.listAllocations(organisation.id)).map((row) => row.id)).toEqual([kept.id]);
  });
});
