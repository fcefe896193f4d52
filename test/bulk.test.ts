import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, defineAction, defineService, TaskFailure } from '../src/catalog/index.js';
import { demoService } from '../src/catalog/demo.js';
import { MAX_BULK_TASKS } from '../src/domain/api.js';
import { createKey, graphql, nextListen, query, startServer, subscribeOverWebSocket, wsClient, type TestServer } from './helpers.js';

/** What `jobs.step` does next: fail (not retryable, so one attempt ends the run) or succeed. */
const behaviour = { failing: true };
/** `jobs.hold` runs until its signal fires; each run reports here. */
const holds: { started: (taskId: number) => void; aborted: Map<number, unknown> } = {
  started: () => {},
  aborted: new Map(),
};

const jobs = defineService({
  slug: 'jobs',
  name: 'Jobs',
  actions: [
    defineAction({
      slug: 'step',
      name: 'Step',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 2,
      parameters: [],
      handler: ({ task, log }) => {
        log('INFO', `attempt ${task.attempt}`);
        if (behaviour.failing) throw new TaskFailure('BROKEN', 'broken as asked', { retryable: false });
        return { ok: true };
      },
    }),
    defineAction({
      slug: 'hold',
      name: 'Hold',
      execution: ['ASYNCHRONOUS'],
      parameters: [],
      handler: ({ task, signal }) =>
        new Promise((_, reject) => {
          signal.addEventListener(
            'abort',
            () => {
              holds.aborted.set(task.id, signal.reason);
              reject(signal.reason);
            },
            { once: true },
          );
          holds.started(task.id);
        }),
    }),
  ],
});

const catalog = new Catalog([demoService, jobs]);

const TASK_FIELDS = `id state attempts maxAttempts retries error { code }
  retryHistory { state error { code } attempts dateCompleted dateRetried retriedBy { id } }
  logs { edges { node { message } } }`;

const RETRY = `mutation ($id: ID!) {
  retryTask(id: $id) {
    __typename
    ... on RetryTaskSuccess { task { id state retries } }
    ... on Error { code message }
  }
}`;

const CANCEL_TASKS = `mutation ($filter: TaskFilter!, $limit: Int) {
  cancelTasks(filter: $filter, limit: $limit) {
    __typename
    ... on CancelTasksSuccess { count dependents }
    ... on Error { code message }
    ... on LimitExceededError { limit }
  }
}`;

const RETRY_TASKS = `mutation ($filter: TaskFilter!, $limit: Int) {
  retryTasks(filter: $filter, limit: $limit) {
    __typename
    ... on RetryTasksSuccess { count dependents }
    ... on Error { code message }
  }
}`;

const SUBMIT_TASKS = `mutation ($inputs: [SubmitTaskInput!]!) {
  submitTasks(inputs: $inputs) { __typename ... on SubmitTasksSuccess { tasks { id } } ... on Error { code message } }
}`;

/** Past two batches of either store's bulkBatchSize (100 on SQLite, 500 on PostgreSQL). */
const MANY_TASKS = 1017;

let server: TestServer;
let admin: string;
let sessionCounter = 0;
const newSession = () => `session-${++sessionCounter}`;
const farFuture = new Date(Date.now() + 24 * 3600_000).toISOString();

beforeAll(async () => {
  server = await startServer({ concurrency: 4 }, { catalog });
  admin = server.adminToken;
});

afterAll(async () => {
  await server.stop();
});

async function submitOne(token: string, input: Record<string, unknown>): Promise<string> {
  const data = await query(
    server,
    token,
    `mutation ($input: SubmitTaskInput!) {
      submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id } } ... on Error { code message } }
    }`,
    { input },
  );
  expect(data.submitTask.__typename, JSON.stringify(data.submitTask)).toBe('SubmitTaskSuccess');
  return data.submitTask.task.id;
}

/** Every task of the inputs, submitted in batches of at most 1,000. */
async function submitMany(token: string, inputs: Record<string, unknown>[]): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < inputs.length; start += 1000) {
    const data = await query(server, token, SUBMIT_TASKS, { inputs: inputs.slice(start, start + 1000) });
    expect(data.submitTasks.__typename, JSON.stringify(data.submitTasks)).toBe('SubmitTasksSuccess');
    ids.push(...data.submitTasks.tasks.map((task: { id: string }) => task.id));
  }
  return ids;
}

/** The task's updates until it ends; the first message is the task as it was when the subscription began. */
async function untilEnded(token: string, id: string): Promise<Record<string, any>> {
  const results = await subscribeOverWebSocket(
    wsClient(server, token),
    `subscription ($id: ID!) { taskUpdated(id: $id) { id state } }`,
    { id },
  );
  const last = results.at(-1);
  expect(last?.errors, JSON.stringify(last?.errors)).toBeUndefined();
  return readTask(token, id);
}

async function readTask(token: string, id: string): Promise<Record<string, any>> {
  const data = await query(server, token, `query ($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`, { id });
  return data.task;
}

/** Resolves once taskUpdated of the task listens: its first message is the task as it is now. */
function watch(token: string, id: string) {
  let listening = () => {};
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const states: string[] = [];
  const done = subscribeOverWebSocket(
    wsClient(server, token),
    `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`,
    { id },
    (result) => {
      states.push((result.data as any)?.taskUpdated?.state);
      listening();
    },
  );
  return { ready, done: done.then(() => states) };
}

async function states(token: string, filter: Record<string, unknown>): Promise<Record<string, number>> {
  const data = await query(
    server,
    token,
    `query ($filter: TaskFilter) { tasks(filter: $filter, first: 500) { edges { node { state } } } }`,
    { filter },
  );
  const counts: Record<string, number> = {};
  for (const { node } of data.tasks.edges) counts[node.state] = (counts[node.state] ?? 0) + 1;
  return counts;
}

describe('retryTask', () => {
  it('puts a FAILED task back in place with a new attempt budget, keeping its earlier run, logs and attempts', async () => {
    behaviour.failing = true;
    const id = await submitOne(admin, { service: 'jobs', action: 'step', maxAttempts: 1, session: newSession() });
    const failed = await untilEnded(admin, id);
    expect(failed).toMatchObject({ state: 'FAILED', attempts: 1, maxAttempts: 1, retries: 0, error: { code: 'BROKEN' } });

    behaviour.failing = false;
    const retried = await query(server, admin, RETRY, { id });
    expect(retried.retryTask).toEqual({ __typename: 'RetryTaskSuccess', task: { id, state: 'PENDING', retries: 1 } });

    const done = await untilEnded(admin, id);
    expect(done).toMatchObject({ id, state: 'SUCCEEDED', attempts: 2, maxAttempts: 2, retries: 1, error: null });
    expect(done.retryHistory).toHaveLength(1);
    expect(done.retryHistory[0]).toMatchObject({ state: 'FAILED', error: { code: 'BROKEN' }, attempts: 1 });
    expect(done.retryHistory[0].retriedBy.id).toBeTruthy();
    expect(new Date(done.retryHistory[0].dateRetried).getTime()).toBeGreaterThanOrEqual(
      new Date(done.retryHistory[0].dateCompleted).getTime(),
    );
    expect(done.logs.edges.map((edge: any) => edge.node.message)).toEqual(['attempt 1', 'attempt 2']);
  });

  it('brings back the dependents that failed with DEPENDENCY_FAILED, and refuses to retry one of them alone', async () => {
    behaviour.failing = true;
    const session = newSession();
    const dependency = await submitOne(admin, { service: 'jobs', action: 'step', maxAttempts: 1, session });
    const dependent = await submitOne(admin, { service: 'demo', action: 'echo', params: { message: 'after' }, dependsOn: [dependency], session });
    const grandDependent = await submitOne(admin, { service: 'demo', action: 'echo', params: { message: 'last' }, dependsOn: [dependent], session });
    expect(await untilEnded(admin, grandDependent)).toMatchObject({ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' } });
    expect(await readTask(admin, dependent)).toMatchObject({ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' } });

    const alone = await query(server, admin, RETRY, { id: dependent });
    expect(alone.retryTask).toMatchObject({ __typename: 'ConflictError', code: 'NOT_RETRYABLE' });
    expect((await readTask(admin, dependent)).state).toBe('FAILED');

    behaviour.failing = false;
    const retried = await query(server, admin, RETRY, { id: dependency });
    expect(retried.retryTask.__typename).toBe('RetryTaskSuccess');
    expect(await untilEnded(admin, grandDependent)).toMatchObject({ state: 'SUCCEEDED', retries: 1 });
    expect(await readTask(admin, dependent)).toMatchObject({
      state: 'SUCCEEDED',
      retries: 1,
      retryHistory: [{ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' }, attempts: 0 }],
    });
  });

  it('refuses tasks that have not ended in failure, and treats another organisation’s task as not found', async () => {
    const succeeded = await submitOne(admin, { service: 'demo', action: 'echo', params: { message: 'fine' } });
    await untilEnded(admin, succeeded);
    const conflict = await query(server, admin, RETRY, { id: succeeded });
    expect(conflict.retryTask).toMatchObject({ __typename: 'ConflictError', code: 'NOT_RETRYABLE' });
    expect(conflict.retryTask.message).toContain('SUCCEEDED');

    const waiting = await submitOne(admin, { service: 'demo', action: 'echo', params: { message: 'later' }, runAt: farFuture });
    expect((await query(server, admin, RETRY, { id: waiting })).retryTask).toMatchObject({ code: 'NOT_RETRYABLE' });

    behaviour.failing = true;
    const failed = await submitOne(admin, { service: 'jobs', action: 'step', maxAttempts: 1 });
    await untilEnded(admin, failed);
    const stranger = await createKey(server, 'other-organisation-retry', 'ADMIN');
    const notFound = await query(server, stranger, RETRY, { id: failed });
    expect(notFound.retryTask).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    expect((await readTask(admin, failed)).state).toBe('FAILED');
    expect((await query(server, admin, RETRY, { id: 'not-an-id' })).retryTask.__typename).toBe('NotFoundError');
  });

  it('is refused to a key whose permissions do not cover the action, as a submission would be', async () => {
    behaviour.failing = true;
    const failed = await submitOne(admin, { service: 'jobs', action: 'step', maxAttempts: 1 });
    await untilEnded(admin, failed);
    const created = await server.taskport.engine.provisionApiKey({
      organisation: 'default',
      role: 'MEMBER',
      name: 'demo only',
      permissions: { demo: '*' },
    });
    const response = await graphql(server, created.token, RETRY, { id: failed });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await readTask(admin, failed)).state).toBe('FAILED');
  });
});

describe('cancelTasks', () => {
  it(`cancels every waiting task of the filter (${MANY_TASKS}, in batches), and only those of the key's organisation`, async () => {
    const session = newSession();
    const count = MANY_TASKS;
    const input = { service: 'demo', action: 'echo', params: { message: 'wait' }, runAt: farFuture, session };
    const ids = await submitMany(admin, Array.from({ length: count }, () => input));
    const stranger = await createKey(server, 'other-organisation-cancel', 'ADMIN');
    const theirs = await submitMany(stranger, Array.from({ length: 3 }, () => input));
    const watched = watch(admin, ids[0]!);
    await watched.ready;

    const data = await query(server, admin, CANCEL_TASKS, { filter: { session } });
    expect(data.cancelTasks).toEqual({ __typename: 'CancelTasksSuccess', count, dependents: 0 });
    // Subscribers hear of it as of a cancelTask.
    expect(await watched.done).toEqual(['PENDING', 'CANCELLED']);
    expect(await states(admin, { session, state: ['PENDING'] })).toEqual({});
    expect(await states(stranger, { session })).toEqual({ PENDING: theirs.length });

    const again = await query(server, admin, CANCEL_TASKS, { filter: { session } });
    expect(again.cancelTasks).toMatchObject({ count: 0 });
    await query(server, stranger, CANCEL_TASKS, { filter: { session } });
  });

  it('takes the newest `limit` tasks, refuses a limit past the maximum, and needs an ADMIN key', async () => {
    const session = newSession();
    const input = { service: 'demo', action: 'echo', params: { message: 'wait' }, runAt: farFuture, session };
    const ids = await submitMany(admin, Array.from({ length: 10 }, () => input));

    const limited = await query(server, admin, CANCEL_TASKS, { filter: { session }, limit: 4 });
    expect(limited.cancelTasks).toMatchObject({ count: 4 });
    for (const [index, id] of ids.entries()) {
      expect((await readTask(admin, id)).state).toBe(index >= 6 ? 'CANCELLED' : 'PENDING');
    }

    const tooMany = await query(server, admin, CANCEL_TASKS, { filter: { session }, limit: MAX_BULK_TASKS + 1 });
    expect(tooMany.cancelTasks).toMatchObject({ __typename: 'LimitExceededError', limit: MAX_BULK_TASKS });
    const zero = await query(server, admin, CANCEL_TASKS, { filter: { session }, limit: 0 });
    expect(zero.cancelTasks).toMatchObject({ __typename: 'ValidationError', code: 'INVALID' });

    const member = await createKey(server, 'default', 'MEMBER');
    const forbidden = await graphql(server, member, CANCEL_TASKS, { filter: { session } });
    expect(forbidden.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await states(admin, { session })).toEqual({ PENDING: 6, CANCELLED: 4 });
    await query(server, admin, CANCEL_TASKS, { filter: { session } });
  });

  it("fires a PROCESSING task's AbortSignal and fails its SUSPENDED dependents", async () => {
    const session = newSession();
    const running = new Promise<number>((resolve) => (holds.started = resolve));
    const held = await submitOne(admin, { service: 'jobs', action: 'hold', session });
    await running;
    const dependent = await submitOne(admin, { service: 'demo', action: 'echo', params: { message: 'x' }, dependsOn: [held] });

    // The filter names the held task's session only: the dependent fails with it, as after cancelTask.
    const data = await query(server, admin, CANCEL_TASKS, { filter: { session, state: ['PROCESSING'] } });
    expect(data.cancelTasks).toEqual({ __typename: 'CancelTasksSuccess', count: 1, dependents: 0 });
    expect(await untilEnded(admin, held)).toMatchObject({ state: 'CANCELLED' });
    expect(holds.aborted.has(Number(Buffer.from(held, 'base64').toString().split(':')[1]))).toBe(true);
    expect(await untilEnded(admin, dependent)).toMatchObject({ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' } });
  });
});

describe('retryTasks', () => {
  it('retries the FAILED and CANCELLED tasks of the filter, with their dependents, and leaves the others', async () => {
    behaviour.failing = true;
    const session = newSession();
    const failed = await submitMany(
      admin,
      Array.from({ length: 5 }, () => ({ service: 'jobs', action: 'step', maxAttempts: 1, session })),
    );
    const dependent = await submitOne(admin, { service: 'demo', action: 'echo', params: { message: 'x' }, dependsOn: [failed[0]] });
    for (const id of failed) await untilEnded(admin, id);
    expect((await untilEnded(admin, dependent)).state).toBe('FAILED');
    const waiting = await submitMany(admin, [{ service: 'demo', action: 'echo', params: { message: 'x' }, runAt: farFuture, session }]);
    const stranger = await createKey(server, 'other-organisation-retry-many', 'ADMIN');
    const theirs = await submitOne(stranger, { service: 'jobs', action: 'step', maxAttempts: 1, session });
    await untilEnded(stranger, theirs);

    behaviour.failing = false;
    const data = await query(server, admin, RETRY_TASKS, { filter: { session } });
    expect(data.retryTasks).toEqual({ __typename: 'RetryTasksSuccess', count: 5, dependents: 1 });
    for (const id of failed) expect(await untilEnded(admin, id)).toMatchObject({ state: 'SUCCEEDED', retries: 1 });
    expect(await untilEnded(admin, dependent)).toMatchObject({ state: 'SUCCEEDED', retries: 1 });
    expect((await readTask(admin, waiting[0]!)).state).toBe('PENDING');
    expect((await readTask(stranger, theirs)).state).toBe('FAILED');

    const member = await createKey(server, 'default', 'MEMBER');
    const forbidden = await graphql(server, member, RETRY_TASKS, { filter: { session } });
    expect(forbidden.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    await query(server, admin, CANCEL_TASKS, { filter: { session } });
  });

  it("leaves the tasks beyond the key's permissions as they are", async () => {
    behaviour.failing = true;
    const session = newSession();
    const jobsTask = await submitOne(admin, { service: 'jobs', action: 'step', maxAttempts: 1, session });
    const demoTask = await submitOne(admin, { service: 'demo', action: 'fail', session });
    await untilEnded(admin, jobsTask);
    await untilEnded(admin, demoTask);
    const narrowed = await server.taskport.engine.provisionApiKey({
      organisation: 'default',
      role: 'ADMIN',
      name: 'demo only admin',
      permissions: { demo: '*' },
    });
    const data = await query(server, narrowed.token, RETRY_TASKS, { filter: { session } });
    expect(data.retryTasks).toEqual({ __typename: 'RetryTasksSuccess', count: 1, dependents: 0 });
    expect(await readTask(admin, jobsTask)).toMatchObject({ state: 'FAILED', retries: 0 });
    expect((await readTask(admin, demoTask)).retries).toBe(1);
  });

  it('puts many cancelled tasks back in their queue in batches, and counts nothing the second time', async () => {
    const session = newSession();
    const count = MANY_TASKS;
    const input = { service: 'demo', action: 'echo', params: { message: 'wait' }, runAt: farFuture, session };
    await submitMany(admin, Array.from({ length: count }, () => input));
    expect((await query(server, admin, CANCEL_TASKS, { filter: { session } })).cancelTasks.count).toBe(count);

    // Subscribers hear of every task put back, as of a retryTask.
    const backInQueue = new Set<string>();
    let allHeard = () => {};
    const heard = new Promise<void>((resolve) => (allHeard = resolve));
    const listening = nextListen(server, 'organisation');
    void subscribeOverWebSocket(
      wsClient(server, admin),
      `subscription ($filter: TaskFilter) { taskEvents(filter: $filter) { kind task { id state } } }`,
      { filter: { session } },
      (result) => {
        const event = (result.data as any)?.taskEvents;
        if (event?.kind === 'STATE_CHANGED' && event.task.state === 'PENDING') backInQueue.add(event.task.id);
        if (backInQueue.size === count) allHeard();
      },
    );
    await listening;
    const data = await query(server, admin, RETRY_TASKS, { filter: { session, state: ['CANCELLED'] } });
    expect(data.retryTasks).toEqual({ __typename: 'RetryTasksSuccess', count, dependents: 0 });
    await heard;
    expect(backInQueue.size).toBe(count);
    expect(await states(admin, { session, state: ['PENDING'] })).toEqual({ PENDING: Math.min(count, 500) });
    const filteredOut = await query(server, admin, RETRY_TASKS, { filter: { session, state: ['PENDING'] } });
    expect(filteredOut.retryTasks).toMatchObject({ count: 0 });
    await query(server, admin, CANCEL_TASKS, { filter: { session } });
  });
});
