import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, defineAction, defineService, TaskFailure } from '../src/catalog/index.js';
import { demoService } from '../src/catalog/demo.js';
import { loadConfig } from '../src/config.js';
import { RETENTION_BATCH_SIZE as PG_RETENTION_BATCH } from '../src/storage/pg/records/retention.js';
import { RETENTION_BATCH_SIZE as SQLITE_RETENTION_BATCH } from '../src/storage/sqlite/records/retention.js';
import { RETENTION_CHUNKS } from '../src/storage/retention.js';
import { query, startServer, subscribeOverWebSocket, temporaryDatabase, testStore, wsClient, type TestServer } from './helpers.js';

const DAY_MS = 86_400_000;
const RETENTION_BATCH = testStore === 'postgres' ? PG_RETENTION_BATCH : SQLITE_RETENTION_BATCH;

const reports = defineService({
  slug: 'reports',
  name: 'Reports',
  actions: [
    defineAction({
      slug: 'build',
      name: 'Build',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 1,
      parameters: [{ slug: 'fail', name: 'Fail', type: 'BOOLEAN', optional: true }],
      handler: ({ params, log, publish }) => {
        log('INFO', 'building');
        log('WARN', 'still building');
        publish('part', { rows: 3 });
        if (params.fail) throw new TaskFailure('BROKEN', 'failed as asked');
        return { done: true };
      },
    }),
    defineAction({
      slug: 'chatty',
      name: 'Chatty',
      execution: ['ASYNCHRONOUS'],
      parameters: [{ slug: 'lines', name: 'Lines', type: 'INTEGER' }],
      handler: ({ params, log }) => {
        for (let line = 0; line < params.lines; line++) log('DEBUG', `line ${line}`);
      },
    }),
  ],
});
const catalog = new Catalog([demoService, reports]);

/** SQL run on the server's database as an operator would, to age tasks: ids are numbers, inlined. */
async function sqlOn(server: TestServer, text: string): Promise<Record<string, unknown>[]> {
  if (testStore === 'postgres') {
    const client = new pg.Client({ connectionString: server.database });
    await client.connect();
    try {
      return (await client.query(text)).rows;
    } finally {
      await client.end();
    }
  }
  const sqlite = new Database(server.database);
  try {
    const statement = sqlite.prepare(text);
    return statement.reader ? (statement.all() as Record<string, unknown>[]) : (statement.run(), []);
  } finally {
    sqlite.close();
  }
}

const rowId = (globalId: string) => Number(Buffer.from(globalId, 'base64').toString().split(':')[1]);

async function submit(server: TestServer, input: Record<string, unknown>): Promise<string> {
  const data = await query(
    server,
    server.adminToken,
    `mutation ($input: SubmitTaskInput!) {
      submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id } } ... on Error { code message } }
    }`,
    { input },
  );
  expect(data.submitTask.__typename, JSON.stringify(data.submitTask)).toBe('SubmitTaskSuccess');
  return data.submitTask.task.id;
}

async function stateOf(server: TestServer, id: string): Promise<string | null> {
  const data = await query(server, server.adminToken, `query ($id: ID!) { task(id: $id) { state } }`, { id });
  return data.task?.state ?? null;
}

/** Waits on taskUpdated until every task has ended. */
async function ended(server: TestServer, ids: string[]): Promise<void> {
  await Promise.all(
    ids.map((id) =>
      subscribeOverWebSocket(wsClient(server, server.adminToken), `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`, { id }),
    ),
  );
}

/** Completed `days` ago, as if the task had ended then. */
async function age(server: TestServer, ids: string[], days: number): Promise<void> {
  await sqlOn(server, `UPDATE tasks SET date_completed = ${Date.now() - days * DAY_MS} WHERE id IN (${ids.map(rowId).join(', ')})`);
}

async function rowsOf(server: TestServer, table: string, ids: string[]): Promise<number> {
  const [row] = await sqlOn(server, `SELECT count(*) AS n FROM ${table} WHERE task_id IN (${ids.map(rowId).join(', ')})`);
  return Number(row!.n);
}

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function serve(retentionDays: number, database?: string): Promise<TestServer> {
  const server = await startServer({ retentionDays, ...(database ? { database } : {}) }, { catalog });
  servers.push(server);
  return server;
}

describe('retention', () => {
  it('is 30 days unless TASKPORT_RETENTION_DAYS says otherwise, and 0 turns it off', () => {
    expect(loadConfig({}).retentionDays).toBe(30);
    expect(loadConfig({ TASKPORT_RETENTION_DAYS: '0' }).retentionDays).toBe(0);
    expect(loadConfig({ TASKPORT_RETENTION_DAYS: '0.5' }).retentionDays).toBe(0.5);
    expect(() => loadConfig({ TASKPORT_RETENTION_DAYS: '-1' })).toThrow(/TASKPORT_RETENTION_DAYS/);
  });

  it('deletes terminal tasks completed before the period with their logs, results and runs; recent and unfinished ones stay', async () => {
    const server = await serve(30);
    const succeeded = await submit(server, { service: 'reports', action: 'build' });
    const failed = await submit(server, { service: 'reports', action: 'build', params: { fail: true } });
    const recent = await submit(server, { service: 'reports', action: 'build' });
    const cancelled = await submit(server, { service: 'demo', action: 'echo', params: { message: 'x' }, runAt: new Date(Date.now() + DAY_MS) });
    const waiting = await submit(server, { service: 'demo', action: 'echo', params: { message: 'x' }, runAt: new Date(Date.now() + DAY_MS) });
    await ended(server, [succeeded, failed, recent]);
    const cancel = await query(server, server.adminToken, `mutation ($id: ID!) { cancelTask(id: $id) { __typename } }`, { id: cancelled });
    expect(cancel.cancelTask.__typename).toBe('CancelTaskSuccess');
    // A run kept by a retry goes with its task.
    const retry = await query(server, server.adminToken, `mutation ($id: ID!) { retryTask(id: $id) { __typename } }`, { id: failed });
    expect(retry.retryTask.__typename).toBe('RetryTaskSuccess');
    await ended(server, [failed]);

    const old = [succeeded, failed, cancelled];
    await age(server, old, 31);
    await age(server, [recent], 29);
    // A task not yet ended is never deleted, however old its dates.
    await sqlOn(server, `UPDATE tasks SET date_created = ${Date.now() - 400 * DAY_MS} WHERE id = ${rowId(waiting)}`);
    expect(await rowsOf(server, 'task_logs', old)).toBeGreaterThanOrEqual(4);
    expect(await rowsOf(server, 'task_results', old)).toBeGreaterThanOrEqual(2);
    expect(await rowsOf(server, 'task_retries', old)).toBe(1);

    expect(await server.taskport.engine.sweepRetention()).toBe(3);
    for (const id of old) expect(await stateOf(server, id)).toBeNull();
    expect(await rowsOf(server, 'task_logs', old)).toBe(0);
    expect(await rowsOf(server, 'task_results', old)).toBe(0);
    expect(await rowsOf(server, 'task_retries', old)).toBe(0);
    expect(await stateOf(server, recent)).toBe('SUCCEEDED');
    expect(await rowsOf(server, 'task_logs', [recent])).toBe(2);
    expect(await stateOf(server, waiting)).toBe('PENDING');
    expect(await server.taskport.engine.sweepRetention()).toBe(0);
  });

  it('keeps a task that a kept task depends on, and deletes a dependency with its dependents', async () => {
    const server = await serve(30);
    const dependency = await submit(server, { service: 'reports', action: 'build' });
    await ended(server, [dependency]);
    const waitingDependent = await submit(server, {
      service: 'demo',
      action: 'echo',
      params: { message: 'x' },
      dependsOn: [dependency],
      runAt: new Date(Date.now() + DAY_MS),
    });
    const chainHead = await submit(server, { service: 'reports', action: 'build' });
    await ended(server, [chainHead]);
    const chainTail = await submit(server, { service: 'demo', action: 'echo', params: { message: 'x' }, dependsOn: [chainHead] });
    await ended(server, [chainTail]);
    await age(server, [dependency, chainHead, chainTail], 40);

    expect(await server.taskport.engine.sweepRetention()).toBe(2);
    expect(await stateOf(server, dependency)).toBe('SUCCEEDED');
    const kept = await query(server, server.adminToken, `query ($id: ID!) { task(id: $id) { dependsOn { id } } }`, {
      id: waitingDependent,
    });
    expect(kept.task.dependsOn).toEqual([{ id: dependency }]);
    expect(await stateOf(server, chainHead)).toBeNull();
    expect(await stateOf(server, chainTail)).toBeNull();
  });

  it(`sweeps more than a batch (${RETENTION_BATCH} tasks) in one sweep`, async () => {
    const server = await serve(1);
    const count = RETENTION_BATCH * 2 + 5;
    const ids: string[] = [];
    for (let first = 0; first < count; first += 1000) {
      const data = await query(
        server,
        server.adminToken,
        `mutation ($inputs: [SubmitTaskInput!]!) { submitTasks(inputs: $inputs) { ... on SubmitTasksSuccess { tasks { id } } } }`,
        {
          inputs: Array.from({ length: Math.min(1000, count - first) }, () => ({
            service: 'demo',
            action: 'echo',
            params: { message: 'x' },
            runAt: new Date(Date.now() + DAY_MS),
          })),
        },
      );
      ids.push(...data.submitTasks.tasks.map((task: { id: string }) => task.id));
    }
    const cancelled = await query(server, server.adminToken, `mutation { cancelTasks(filter: {}) { ... on CancelTasksSuccess { count } } }`);
    expect(cancelled.cancelTasks.count).toBe(count);
    await age(server, ids, 2);
    expect(await server.taskport.engine.sweepRetention()).toBe(count);
    const [row] = await sqlOn(server, `SELECT count(*) AS n FROM tasks`);
    expect(Number(row!.n)).toBe(0);
  });

  it(`deletes a task with more logs than one transaction deletes (${RETENTION_CHUNKS.logs}) in several`, async () => {
    const server = await serve(30);
    const lines = RETENTION_CHUNKS.logs * 2 + 10;
    const chatty = await submit(server, { service: 'reports', action: 'chatty', params: { lines } });
    const quiet = await submit(server, { service: 'reports', action: 'build' });
    await ended(server, [chatty, quiet]);
    expect(await rowsOf(server, 'task_logs', [chatty])).toBe(lines);
    await age(server, [chatty, quiet], 31);
    expect(await server.taskport.engine.sweepRetention()).toBe(2);
    expect(await rowsOf(server, 'task_logs', [chatty, quiet])).toBe(0);
    expect(await stateOf(server, chatty)).toBeNull();
  });

  it('deletes nothing when TASKPORT_RETENTION_DAYS is 0', async () => {
    const server = await serve(0);
    const task = await submit(server, { service: 'reports', action: 'build' });
    await ended(server, [task]);
    await age(server, [task], 3650);
    expect(await server.taskport.engine.sweepRetention()).toBe(0);
    expect(await stateOf(server, task)).toBe('SUCCEEDED');
  });

  it.runIf(testStore === 'postgres')('runs on one process at a time: processes sweeping together delete each task once', async () => {
    const database = await temporaryDatabase();
    const first = await serve(30, database);
    const second = await serve(30, database);
    const data = await query(
      first,
      first.adminToken,
      `mutation ($inputs: [SubmitTaskInput!]!) { submitTasks(inputs: $inputs) { ... on SubmitTasksSuccess { tasks { id } } } }`,
      { inputs: Array.from({ length: 300 }, () => ({ service: 'demo', action: 'echo', params: { message: 'x' }, runAt: new Date(Date.now() + DAY_MS) })) },
    );
    const ids: string[] = data.submitTasks.tasks.map((task: { id: string }) => task.id);
    await query(first, first.adminToken, `mutation { cancelTasks(filter: {}) { __typename } }`);
    await age(first, ids, 31);
    const deleted = await Promise.all([first.taskport.engine.sweepRetention(), second.taskport.engine.sweepRetention()]);
    expect(deleted[0]! + deleted[1]!).toBe(300);
    const [row] = await sqlOn(first, `SELECT count(*) AS n FROM tasks`);
    expect(Number(row!.n)).toBe(0);
  });
});
