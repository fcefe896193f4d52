import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/storage/sqlite/database.js';
import { readyUrl, spawnTaskport, type SpawnedProcess } from './children.js';
import { graphql, temporaryDatabase, temporaryDatabasePath, testStore, type TestServer } from './helpers.js';

// The guarantee the README states: a submission answered with success is in the database (it
// survives a kill -9 of the process that answered it), and every accepted task runs to a
// terminal state, at least once, however many processes die on the way.

interface Child {
  spawned: SpawnedProcess;
  url: string;
}

async function startChild(environment: Record<string, string>): Promise<Child> {
  const spawned = spawnTaskport(['serve'], environment);
  return { spawned, url: await readyUrl(spawned) };
}

function setup(database: string) {
  const token = `tp_crash_${randomBytes(12).toString('hex')}`;
  return {
    token,
    environment: {
      TASKPORT_DB: database,
      TASKPORT_BOOTSTRAP_TOKEN: token,
      TASKPORT_RETRY_BASE_MS: '20',
      // A killed process's running tasks wait out their lease before another process runs them again.
      TASKPORT_LEASE_SECONDS: '1',
      TASKPORT_CONCURRENCY: '4',
      TASKPORT_DB_POOL_SIZE: '4',
      TASKPORT_LOG_LEVEL: 'info',
      // The limiter would refuse this burst; what is measured here is what happens to the ones answered.
      TASKPORT_RATE_LIMITS: 'false',
    },
  };
}

const SUBMIT = `mutation ($inputs: [SubmitTaskInput!]!) {
  submitTasks(inputs: $inputs) { __typename ... on SubmitTasksSuccess { tasks { id } } ... on Error { code } }
}`;

/**
 * A client that submits small batches to `url` one after another until `stop` is set or its
 * server goes away, and keeps the ids of each batch that was answered with success.
 */
async function submitUntilStopped(url: string, token: string, accepted: string[], stop: { now: boolean }): Promise<void> {
  const inputs = Array.from({ length: 5 }, (_, index) => ({
    service: 'demo',
    action: 'sleep',
    params: { ms: 20 + index * 10 },
    maxAttempts: 10,
  }));
  while (!stop.now) {
    let response;
    try {
      response = await graphql({ url }, token, SUBMIT, { inputs });
    } catch {
      return; // The server died with the request in flight: its outcome is unknown, and not counted.
    }
    expect(response.status).toBe(200);
    const result = response.body.data?.submitTasks as { __typename: string; tasks?: { id: string }[] } | undefined;
    expect(result?.__typename, JSON.stringify(response.body)).toBe('SubmitTasksSuccess');
    accepted.push(...result!.tasks!.map((task) => task.id));
  }
}

/** Resolves once every accepted task has ended; fails with the ones that have not within the time. */
async function expectAllEnded(server: Pick<TestServer, 'url'>, token: string, ids: string[]): Promise<{ state: string }[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const response = await graphql(server, token, `query ($ids: [ID!]!) { taskStatuses(ids: $ids) { id found state } }`, { ids });
    expect(response.body.errors).toBeUndefined();
    const statuses = response.body.data!.taskStatuses as { id: string; found: boolean; state: string | null }[];
    expect(statuses.filter((status) => !status.found)).toEqual([]);
    const open = statuses.filter((status) => !['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(status.state!));
    if (open.length === 0) return statuses as { state: string }[];
    if (Date.now() > deadline) expect(open).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function attemptsOf(server: Pick<TestServer, 'url'>, token: string, ids: string[]): Promise<number[]> {
  const attempts: number[] = [];
  // A few aliases per query, within the server's alias limit.
  for (let start = 0; start < ids.length; start += 15) {
    const page = ids.slice(start, start + 15);
    const fields = page.map((id, index) => `t${index}: task(id: ${JSON.stringify(id)}) { attempts state }`).join('\n');
    const read = await graphql(server, token, `{ ${fields} }`);
    expect(read.body.errors, JSON.stringify(read.body.errors)).toBeUndefined();
    for (const task of Object.values(read.body.data as Record<string, { attempts: number; state: string }>)) attempts.push(task.attempts);
  }
  return attempts;
}

/** Submits from `clients` concurrent clients spread over `urls` until `enough` tasks are accepted, then kills `victim`. */
async function submitAndKill(urls: string[], token: string, victim: Child, clients: number, enough: number) {
  const accepted: string[] = [];
  const stop = { now: false };
  const running = Array.from({ length: clients }, (_, index) => submitUntilStopped(urls[index % urls.length]!, token, accepted, stop));
  while (accepted.length < enough) await new Promise((resolve) => setTimeout(resolve, 10));
  victim.spawned.process.kill('SIGKILL');
  const { signal } = await victim.spawned.exited;
  expect(signal).toBe('SIGKILL');
  // The clients of a surviving process go on a little after the kill, then stop.
  await new Promise((resolve) => setTimeout(resolve, 200));
  stop.now = true;
  await Promise.all(running);
  return accepted;
}

describe.runIf(testStore === 'sqlite')('crash safety on SQLite', () => {
  it('keeps every submission answered before a kill -9, and runs each to its end after the restart', async () => {
    const { token, environment } = setup(await temporaryDatabase());
    const first = await startChild(environment);
    const accepted = await submitAndKill([first.url], token, first, 6, 150);
    expect(accepted.length).toBeGreaterThanOrEqual(150);

    const second = await startChild(environment);
    const statuses = await expectAllEnded({ url: second.url }, token, accepted);
    expect(new Set(statuses.map((status) => status.state))).toEqual(new Set(['SUCCEEDED']));
    const attempts = await attemptsOf({ url: second.url }, token, accepted);
    expect(Math.min(...attempts)).toBeGreaterThanOrEqual(1);
    // The tasks the killed process was running ran again: attempts count the runs.
    expect(attempts.filter((count) => count > 1).length).toBeGreaterThanOrEqual(1);
    second.spawned.process.kill('SIGTERM');
    await second.spawned.exited;
  });

  it('syncs every commit with TASKPORT_SYNCHRONOUS=FULL, and only at checkpoints by default (NORMAL)', async () => {
    // SQLite's codes for the pragma: 1 is NORMAL, 2 is FULL.
    for (const [mode, code] of [['FULL', 2], ['NORMAL', 1], [undefined, 1]] as const) {
      const database = openDatabase(temporaryDatabasePath(), mode ? { synchronous: mode } : {});
      try {
        expect(database.sqlite.pragma('synchronous', { simple: true })).toBe(code);
      } finally {
        await database.close();
      }
    }
    expect(loadConfig({ TASKPORT_SYNCHRONOUS: 'FULL' }).synchronous).toBe('FULL');
    expect(() => loadConfig({ TASKPORT_SYNCHRONOUS: 'OFF' })).toThrow(/TASKPORT_SYNCHRONOUS: must be NORMAL or FULL/);
  });
});

describe.runIf(testStore === 'postgres')('crash safety on PostgreSQL', () => {
  it('keeps every submission answered by a process killed with kill -9, and the other process runs them all', async () => {
    const { token, environment } = setup(await temporaryDatabase());
    const victim = await startChild(environment);
    const survivor = await startChild(environment);
    const accepted = await submitAndKill([victim.url, survivor.url], token, victim, 6, 150);
    expect(accepted.length).toBeGreaterThanOrEqual(150);

    const statuses = await expectAllEnded({ url: survivor.url }, token, accepted);
    expect(new Set(statuses.map((status) => status.state))).toEqual(new Set(['SUCCEEDED']));
    const attempts = await attemptsOf({ url: survivor.url }, token, accepted);
    expect(Math.min(...attempts)).toBeGreaterThanOrEqual(1);
    // The tasks the killed process was running ran again: attempts count the runs.
    expect(attempts.filter((count) => count > 1).length).toBeGreaterThanOrEqual(1);
    survivor.spawned.process.kill('SIGTERM');
    await survivor.spawned.exited;
  });
});
