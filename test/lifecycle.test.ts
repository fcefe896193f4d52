import { describe, expect, it } from 'vitest';
import {
  createKey,
  globalId,
  query,
  startServer,
  submit,
  waitForTask,
  wsClient,
  type TestServer,
} from './helpers.js';

const CANCEL = `mutation ($id: ID!) {
  cancelTask(id: $id) {
    __typename
    ... on CancelTaskSuccess { task { id state status error { code message } } }
    ... on Error { code message }
  }
}`;

const TASK = `query ($id: ID!) {
  task(id: $id) {
    id state status attempts maxAttempts priority runAt dateCreated dateStarted dateCompleted
    error { code message }
    dependsOn { id state }
  }
}`;

async function submitted(server: TestServer, token: string, input: Record<string, unknown>): Promise<Record<string, any>> {
  const result = await submit(server, token, input, 'id state status');
  expect(result.__typename, JSON.stringify(result)).toBe('SubmitTaskSuccess');
  return result.task;
}

async function cancel(server: TestServer, token: string, id: string): Promise<Record<string, any>> {
  return (await query(server, token, CANCEL, { id })).cancelTask;
}

async function readTask(server: TestServer, token: string, id: string): Promise<Record<string, any>> {
  const data = await query(server, token, TASK, { id });
  expect(data.task).not.toBeNull();
  return data.task;
}

/** Resolves, on taskUpdated, with the first version of the task in the wanted state. */
function untilState(server: TestServer, token: string, id: string, wanted: string): Promise<Record<string, any>> {
  const client = wsClient(server, token);
  return new Promise((resolve, reject) => {
    let done = false;
    const unsubscribe = client.subscribe<{ taskUpdated: Record<string, any> }>(
      { query: `subscription ($id: ID!) { taskUpdated(id: $id) { id state attempts error { code } } }`, variables: { id } },
      {
        next: (result) => {
          if (result.errors) {
            done = true;
            reject(new Error(JSON.stringify(result.errors)));
            return;
          }
          const task = result.data!.taskUpdated;
          if (!done && task.state === wanted) {
            done = true;
            resolve(task);
            unsubscribe();
          }
        },
        error: (error) => {
          if (!done) reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => {
          if (!done) reject(new Error(`task ${id} ended without reaching ${wanted}`));
        },
      },
    );
  });
}

const sleep = (ms: number, extra: Record<string, unknown> = {}) => ({
  service: 'demo',
  action: 'sleep',
  params: { ms },
  ...extra,
});

async function taskCount(server: TestServer, token: string): Promise<number> {
  const data = await query(server, token, `{ tasks(first: 500) { edges { node { id } } } }`);
  return data.tasks.edges.length;
}

describe('cancelTask', () => {
  it('cancels a PENDING task at once', async () => {
    const server = await startServer({ concurrency: 1 });
    const token = server.adminToken;
    const busy = await submitted(server, token, sleep(10_000));
    await untilState(server, token, busy.id, 'PROCESSING');
    const waiting = await submitted(server, token, sleep(10));
    expect(waiting.state).toBe('PENDING');

    const cancelled = await cancel(server, token, waiting.id);
    expect(cancelled.__typename).toBe('CancelTaskSuccess');
    expect(cancelled.task).toMatchObject({ id: waiting.id, state: 'CANCELLED', status: 'COMPLETED' });
    expect(cancelled.task.error?.code).toBe('CANCELLED');
    expect((await readTask(server, token, waiting.id)).dateStarted).toBeNull();

    expect((await cancel(server, token, busy.id)).__typename).toBe('CancelTaskSuccess');
    expect((await waitForTask(server, token, busy.id)).state).toBe('CANCELLED');
    await server.stop();
  });

  it('cancels a task whose runAt is in the future', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const later = await submitted(server, token, sleep(10, { runAt: new Date(Date.now() + 60_000).toISOString() }));
    expect(later.state).toBe('PENDING');
    const cancelled = await cancel(server, token, later.id);
    expect(cancelled.task?.state).toBe('CANCELLED');
    await server.stop();
  });

  it('stops a PROCESSING task through its AbortSignal', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const task = await submitted(server, token, sleep(10_000));
    await untilState(server, token, task.id, 'PROCESSING');

    const cancelled = await cancel(server, token, task.id);
    expect(cancelled.__typename).toBe('CancelTaskSuccess');
    expect(cancelled.task.id).toBe(task.id);

    const final = await waitForTask(server, token, task.id);
    expect(final.state).toBe('CANCELLED');
    expect(final.error?.code).toBe('CANCELLED');
    // One attempt only: a cancel is not retried.
    expect(final.attempts).toBe(1);
    // The handler stopped: it never returned its result, and nothing is left running.
    const data = await query(server, token, `query ($id: ID!) { task(id: $id) { progress results { name } } }`, { id: task.id });
    expect(data.task.results).toEqual([]);
    expect(data.task.progress ?? 0).toBeLessThan(1);
    expect(server.taskport.engine.runningTasks).toBe(0);
    await server.stop();
  });

  it('refuses to cancel a finished task with NOT_CANCELLABLE', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const task = await submitted(server, token, { service: 'demo', action: 'echo', params: { message: 'hi' } });
    expect((await waitForTask(server, token, task.id)).state).toBe('SUCCEEDED');

    const refused = await cancel(server, token, task.id);
    expect(refused).toMatchObject({ __typename: 'ConflictError', code: 'NOT_CANCELLABLE' });
    expect((await readTask(server, token, task.id)).state).toBe('SUCCEEDED');
    await server.stop();
  });

  it('answers NotFoundError for unknown, malformed and foreign ids', async () => {
    const server = await startServer();
    const token = server.adminToken;
    for (const id of [globalId('Task', 987654), 'not-an-id', globalId('ApiKey', 1), globalId('Task', 'x')]) {
      const result = await cancel(server, token, id);
      expect(result, id).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    }
    // Another organisation's task does not exist for this key.
    const task = await submitted(server, token, sleep(10, { runAt: new Date(Date.now() + 60_000).toISOString() }));
    const stranger = await createKey(server, 'other-org', 'ADMIN');
    expect(await cancel(server, stranger, task.id)).toMatchObject({ __typename: 'NotFoundError' });
    expect((await readTask(server, token, task.id)).state).toBe('PENDING');
    await server.stop();
  });
});

describe('dependsOn', () => {
  it('keeps a dependent SUSPENDED until its dependency succeeds', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const a = await submitted(server, token, sleep(200));
    const b = await submitted(server, token, { service: 'demo', action: 'echo', params: { message: 'b' }, dependsOn: [a.id] });
    expect(b).toMatchObject({ state: 'SUSPENDED', status: 'IN_QUEUE' });
    const suspended = await readTask(server, token, b.id);
    expect(suspended.dependsOn.map((task: { id: string }) => task.id)).toEqual([a.id]);
    const c = await submitted(server, token, { service: 'demo', action: 'echo', params: { message: 'c' }, dependsOn: [a.id] });
    const dependents = await query(server, token, 'query ($id: ID!) { task(id: $id) { dependents { id } } }', { id: a.id });
    expect(dependents.task.dependents.map((task: { id: string }) => task.id)).toEqual([b.id, c.id]);

    const finalB = await waitForTask(server, token, b.id);
    expect(finalB.state).toBe('SUCCEEDED');
    const readA = await readTask(server, token, a.id);
    const readB = await readTask(server, token, b.id);
    expect(readA.state).toBe('SUCCEEDED');
    expect(new Date(readB.dateStarted).getTime()).toBeGreaterThanOrEqual(new Date(readA.dateCompleted).getTime());
    await server.stop();
  });

  it('fails dependents, transitively, with DEPENDENCY_FAILED when a dependency fails', async () => {
    const server = await startServer();
    const token = server.adminToken;
    // runAt keeps the failing task waiting while its dependents are submitted, so they start SUSPENDED.
    const failing = await submitted(server, token, {
      service: 'demo',
      action: 'fail',
      runAt: new Date(Date.now() + 500).toISOString(),
    });
    const c = await submitted(server, token, sleep(10, { dependsOn: [failing.id] }));
    const d = await submitted(server, token, sleep(10, { dependsOn: [c.id] }));
    expect(c.state).toBe('SUSPENDED');
    expect(d.state).toBe('SUSPENDED');

    const [finalC, finalD, finalFailing] = await Promise.all([
      waitForTask(server, token, c.id),
      waitForTask(server, token, d.id),
      waitForTask(server, token, failing.id),
    ]);
    expect(finalFailing).toMatchObject({ state: 'FAILED', error: { code: 'DEMO_FAILURE' } });
    expect(finalC).toMatchObject({ state: 'FAILED', attempts: 0, error: { code: 'DEPENDENCY_FAILED' } });
    expect(finalD).toMatchObject({ state: 'FAILED', attempts: 0, error: { code: 'DEPENDENCY_FAILED' } });

    // Depending on a task that has already failed fails at once.
    const late = await submitted(server, token, sleep(10, { dependsOn: [failing.id] }));
    expect(late.state).toBe('FAILED');
    expect((await readTask(server, token, late.id)).error?.code).toBe('DEPENDENCY_FAILED');
    await server.stop();
  });

  it('fails the SUSPENDED dependents of a cancelled PENDING task', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const a = await submitted(server, token, sleep(10, { runAt: new Date(Date.now() + 60_000).toISOString() }));
    const b = await submitted(server, token, sleep(10, { dependsOn: [a.id] }));
    const c = await submitted(server, token, sleep(10, { dependsOn: [b.id] }));
    expect(b.state).toBe('SUSPENDED');

    expect((await cancel(server, token, a.id)).task?.state).toBe('CANCELLED');
    expect(await waitForTask(server, token, b.id)).toMatchObject({ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' } });
    expect(await waitForTask(server, token, c.id)).toMatchObject({ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' } });
    await server.stop();
  });

  it('cancels a SUSPENDED task at once and leaves its dependency alone', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const a = await submitted(server, token, sleep(10, { runAt: new Date(Date.now() + 300).toISOString() }));
    const b = await submitted(server, token, sleep(10, { dependsOn: [a.id] }));
    expect(b.state).toBe('SUSPENDED');
    const cancelled = await cancel(server, token, b.id);
    expect(cancelled.task).toMatchObject({ id: b.id, state: 'CANCELLED', error: { code: 'CANCELLED' } });
    expect((await waitForTask(server, token, a.id)).state).toBe('SUCCEEDED');
    expect((await readTask(server, token, b.id)).state).toBe('CANCELLED');
    await server.stop();
  });

  it('fails the SUSPENDED dependents of a cancelled PROCESSING task', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const a = await submitted(server, token, sleep(10_000));
    await untilState(server, token, a.id, 'PROCESSING');
    const b = await submitted(server, token, sleep(10, { dependsOn: [a.id] }));
    expect(b.state).toBe('SUSPENDED');

    expect((await cancel(server, token, a.id)).__typename).toBe('CancelTaskSuccess');
    expect((await waitForTask(server, token, a.id)).state).toBe('CANCELLED');
    expect(await waitForTask(server, token, b.id)).toMatchObject({ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' } });
    await server.stop();
  });

  it('refuses an unknown dependency with NotFoundError and creates nothing', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const before = await taskCount(server, token);
    const result = await submit(server, token, sleep(10, { dependsOn: [globalId('Task', 424242)] }));
    expect(result).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    // Another organisation's task is unknown too.
    const stranger = await createKey(server, 'elsewhere', 'ADMIN');
    const foreign = await submitted(server, stranger, sleep(10));
    expect(await submit(server, token, sleep(10, { dependsOn: [foreign.id] }))).toMatchObject({
      __typename: 'NotFoundError',
    });
    expect(await taskCount(server, token)).toBe(before);
    await waitForTask(server, stranger, foreign.id);
    await server.stop();
  });
});

describe('retries and time limits', () => {
  it('retries a failing task up to maxAttempts and logs each retry', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const task = await submitted(server, token, { service: 'demo', action: 'fail', maxAttempts: 3 });
    const final = await waitForTask(server, token, task.id);
    expect(final).toMatchObject({ state: 'FAILED', attempts: 3, error: { code: 'DEMO_FAILURE' } });

    const data = await query(
      server,
      token,
      `query ($id: ID!) { task(id: $id) { logs(first: 100) { edges { node { level source message } } } } }`,
      { id: task.id },
    );
    const logs = data.task.logs.edges.map((edge: { node: Record<string, string> }) => edge.node);
    const retries = logs.filter((log: Record<string, string>) => log.level === 'WARN' && log.source === 'taskport');
    expect(retries).toHaveLength(2);
    for (const log of retries) expect(log.message).toMatch(/retrying/);
    await server.stop();
  });

  it('ends with the error code the handler gave', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const task = await submitted(server, token, { service: 'demo', action: 'fail', params: { code: 'X' } });
    expect(await waitForTask(server, token, task.id)).toMatchObject({ state: 'FAILED', attempts: 1, error: { code: 'X' } });
    await server.stop();
  });

  it('fails an attempt that runs past timeoutSeconds with TIMEOUT', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const task = await submitted(server, token, sleep(5000, { timeoutSeconds: 1, maxAttempts: 1 }));
    const final = await waitForTask(server, token, task.id);
    expect(final).toMatchObject({ state: 'FAILED', attempts: 1, error: { code: 'TIMEOUT' } });
    expect(server.taskport.engine.runningTasks).toBe(0);
    const data = await query(
      server,
      token,
      `query ($id: ID!) { task(id: $id) { logs(first: 100, minLevel: ERROR) { edges { node { level source } } } } }`,
      { id: task.id },
    );
    expect(data.task.logs.edges.map((edge: { node: unknown }) => edge.node)).toContainEqual({ level: 'ERROR', source: 'taskport' });
    await server.stop();
  });
});

describe('scheduling', () => {
  it('keeps a task with a future runAt PENDING until then', async () => {
    const server = await startServer();
    const token = server.adminToken;
    const runAt = new Date(Date.now() + 1000);
    const task = await submitted(server, token, { service: 'demo', action: 'echo', params: { message: 'later' }, runAt: runAt.toISOString() });
    expect(task.state).toBe('PENDING');
    const early = await readTask(server, token, task.id);
    expect(early.state).toBe('PENDING');
    expect(early.runAt).toBe(runAt.toISOString());

    expect((await waitForTask(server, token, task.id)).state).toBe('SUCCEEDED');
    const done = await readTask(server, token, task.id);
    expect(new Date(done.dateStarted).getTime()).toBeGreaterThanOrEqual(runAt.getTime());
    await server.stop();
  });

  it('starts a higher priority task before an older lower priority one', async () => {
    const server = await startServer({ concurrency: 1 });
    const token = server.adminToken;
    const busy = await submitted(server, token, sleep(300));
    await untilState(server, token, busy.id, 'PROCESSING');
    const low = await submitted(server, token, sleep(50, { priority: 0 }));
    const high = await submitted(server, token, sleep(50, { priority: 10 }));
    expect(low.state).toBe('PENDING');
    expect(high.state).toBe('PENDING');

    await Promise.all([waitForTask(server, token, low.id), waitForTask(server, token, high.id)]);
    const readLow = await readTask(server, token, low.id);
    const readHigh = await readTask(server, token, high.id);
    expect(readHigh.priority).toBe(10);
    expect(new Date(readHigh.dateStarted).getTime()).toBeLessThan(new Date(readLow.dateStarted).getTime());
    expect(new Date(readHigh.dateCompleted).getTime()).toBeLessThanOrEqual(new Date(readLow.dateStarted).getTime());
    await server.stop();
  });
});

describe('graceful stop', () => {
  it('lets a running task finish before the server stops', async () => {
    const first = await startServer();
    const token = first.adminToken;
    const task = await submitted(first, token, sleep(300));
    await untilState(first, token, task.id, 'PROCESSING');
    await first.stop();
    expect(first.taskport.engine.runningTasks).toBe(0);

    const second = await startServer({ database: first.database, bootstrapToken: token });
    const read = await readTask(second, token, task.id);
    expect(read).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    await second.stop();
  });

  it('hands a task that outlives the grace period back to the queue without spending an attempt', async () => {
    const first = await startServer({ shutdownGraceMs: 50 });
    const token = first.adminToken;
    const task = await submitted(first, token, sleep(1000, { maxAttempts: 1 }));
    await untilState(first, token, task.id, 'PROCESSING');
    await first.stop();

    const second = await startServer({ database: first.database, bootstrapToken: token });
    try {
      const final = await waitForTask(second, token, task.id);
      // Released at shutdown, the attempt does not count: a maxAttempts 1 task still gets its run.
      expect(final).toMatchObject({ state: 'SUCCEEDED', attempts: 1, error: null });
    } finally {
      await second.stop();
    }
  });
});
