import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKey,
  graphql,
  query,
  registerAccount,
  RETRIEVE,
  startServer,
  submit,
  subscribeOverWebSocket,
  waitForTask,
  wsClient,
  type TestServer,
} from './helpers.js';

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startServer();
  token = server.adminToken;
});

afterAll(async () => {
  await server.stop();
});

const TASK_FIELDS = `
  id state status service type user session poll target sourceType params priority attempts maxAttempts
  progress runAt dateCreated dateStarted dateCompleted resultRetrieved retrievalProtocol queuePosition
  error { code message }
  key { id name role }
  source { id service username }
  dependsOn { id }
`;

const SUBMIT_TASKS = `
  mutation ($inputs: [SubmitTaskInput!]!) {
    submitTasks(inputs: $inputs) {
      __typename
      ... on SubmitTasksSuccess { poll tasks { id poll state } }
      ... on Error { code message }
      ... on ValidationError { field index }
      ... on LimitExceededError { limit }
    }
  }`;

const TASK = `query ($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`;

const TASKS = `
  query ($filter: TaskFilter, $first: Int, $after: String) {
    tasks(filter: $filter, first: $first, after: $after) {
      edges { cursor node { id dateCreated dateStarted dateCompleted state } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }`;

const STATUSES = `
  query ($ids: [ID!]!) {
    taskStatuses(ids: $ids) { id found state status queuePosition resultRetrieved retrievalProtocol error { code message } }
  }`;

async function getTask(id: string): Promise<Record<string, any>> {
  const data = await query(server, token, TASK, { id });
  return data.task;
}

async function listIds(filter: Record<string, unknown>, first = 500): Promise<string[]> {
  const data = await query(server, token, TASKS, { filter, first });
  return data.tasks.edges.map((edge: any) => edge.node.id);
}

/** Every task of the organisation, following the cursor to the end. */
async function countAllTasks(): Promise<number> {
  let count = 0;
  let after: string | null = null;
  for (;;) {
    const data: any = await query(server, token, TASKS, { first: 500, after });
    count += data.tasks.edges.length;
    if (!data.tasks.pageInfo.hasNextPage) return count;
    after = data.tasks.pageInfo.endCursor;
  }
}

function inHour(): string {
  return new Date(Date.now() + 3_600_000).toISOString();
}

describe('submitTask and results', () => {
  it('runs demo.echo to SUCCEEDED and hands its result over exactly once', async () => {
    const submitted = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'hello' } });
    expect(submitted.__typename).toBe('SubmitTaskSuccess');
    const id = submitted.task.id;

    const finished = await waitForTask(server, token, id);
    expect(finished.state).toBe('SUCCEEDED');

    const task = await query(
      server,
      token,
      `query ($id: ID!) { task(id: $id) { state status resultRetrieved results { name contentType size retrieved } } }`,
      { id },
    );
    const payloadText = JSON.stringify({ message: 'hello' });
    expect(task.task).toMatchObject({ state: 'SUCCEEDED', status: 'COMPLETED', resultRetrieved: false });
    expect(task.task.results).toEqual([
      { name: 'result', contentType: 'application/json', size: Buffer.byteLength(payloadText), retrieved: false },
    ]);

    const first = await query(server, token, RETRIEVE, { id });
    expect(first.retrieveResults.__typename).toBe('RetrieveResultsSuccess');
    expect(first.retrieveResults.results).toHaveLength(1);
    expect(first.retrieveResults.results[0].data).toEqual({ message: 'hello' });
    expect(first.retrieveResults.results[0].result).toMatchObject({ name: 'result', retrieved: true });

    const second = await query(server, token, RETRIEVE, { id });
    expect(second.retrieveResults).toMatchObject({ __typename: 'ConflictError', code: 'ALREADY_RETRIEVED' });

    const after = await getTask(id);
    expect(after.resultRetrieved).toBe(true);
  });

  it('refuses to retrieve the results of a task that has not finished', async () => {
    const submitted = await submit(server, token, {
      service: 'demo',
      action: 'sleep',
      params: { ms: 10 },
      runAt: inHour(),
    });
    const response = await query(server, token, RETRIEVE, { id: submitted.task.id });
    expect(response.retrieveResults).toMatchObject({ __typename: 'ConflictError', code: 'NOT_COMPLETED' });
    expect((await getTask(submitted.task.id)).resultRetrieved).toBe(false);
  });

  it('answers retrieveResults for an unknown task with NotFoundError', async () => {
    const response = await query(server, token, RETRIEVE, { id: encodeGlobalID('Task', 987654) });
    expect(response.retrieveResults).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });
});

describe('submitTask validation', () => {
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['an unknown service', { service: 'nope', action: 'echo', params: { message: 'x' } }, 'INVALID_SERVICE', 'service'],
    ['an unknown action', { service: 'demo', action: 'nope', params: {} }, 'INVALID_ACTION', 'action'],
    ['a missing required parameter', { service: 'demo', action: 'echo', params: {} }, 'MISSING_PARAM', 'message'],
    ['no params at all', { service: 'demo', action: 'echo' }, 'MISSING_PARAM', 'message'],
    [
      'a parameter of the wrong type',
      { service: 'demo', action: 'echo', params: { message: 42 } },
      'INVALID_PARAMETER_VALUE',
      'message',
    ],
    [
      'an INTEGER given as a string',
      { service: 'demo', action: 'sleep', params: { ms: '10' } },
      'INVALID_PARAMETER_VALUE',
      'ms',
    ],
    [
      'a value over the maximum',
      { service: 'demo', action: 'sleep', params: { ms: 600_001 } },
      'INVALID_PARAMETER_VALUE',
      'ms',
    ],
    [
      'a value under the minimum',
      { service: 'demo', action: 'sleep', params: { ms: 10, steps: 0 } },
      'INVALID_PARAMETER_VALUE',
      'steps',
    ],
    [
      'a non-integer INTEGER',
      { service: 'demo', action: 'sleep', params: { ms: 1.5 } },
      'INVALID_PARAMETER_VALUE',
      'ms',
    ],
    ['an unknown parameter', { service: 'demo', action: 'echo', params: { message: 'x', extra: 1 } }, 'INVALID', 'extra'],
    ['params that are not an object', { service: 'demo', action: 'echo', params: ['x'] }, 'INVALID', 'params'],
    [
      'a priority out of range',
      { service: 'demo', action: 'echo', params: { message: 'x' }, priority: 1_000_001 },
      'INVALID',
      'priority',
    ],
    [
      'maxAttempts 0',
      { service: 'demo', action: 'echo', params: { message: 'x' }, maxAttempts: 0 },
      'INVALID',
      'maxAttempts',
    ],
    [
      'maxAttempts over 100',
      { service: 'demo', action: 'echo', params: { message: 'x' }, maxAttempts: 101 },
      'INVALID',
      'maxAttempts',
    ],
    [
      'timeoutSeconds 0',
      { service: 'demo', action: 'echo', params: { message: 'x' }, timeoutSeconds: 0 },
      'INVALID',
      'timeoutSeconds',
    ],
    ['an empty user tag', { service: 'demo', action: 'echo', params: { message: 'x' }, user: '' }, 'INVALID', 'user'],
    [
      'a dependsOn id that is not a task id',
      { service: 'demo', action: 'echo', params: { message: 'x' }, dependsOn: ['not-an-id'] },
      'INVALID',
      'dependsOn',
    ],
    [
      'fetch-data for an unregistered account',
      { service: 'demo', action: 'fetch-data', account: 'nobody', params: { device: 'd1', data: ['sms'] } },
      'NO_SUCH_ACCOUNT',
      'account',
    ],
    [
      'fetch-data without an account',
      { service: 'demo', action: 'fetch-data', params: { device: 'd1', data: ['sms'] } },
      'MISSING_PARAM',
      'account',
    ],
    [
      'a LIST item outside the allowed values',
      { service: 'demo', action: 'fetch-data', account: 'validation-user', params: { device: 'd1', data: ['sms', 'email'] } },
      'INVALID_PARAMETER_VALUE',
      'data',
    ],
    [
      'a LIST that is not a list',
      { service: 'demo', action: 'fetch-data', account: 'validation-user', params: { device: 'd1', data: 'sms' } },
      'INVALID_PARAMETER_VALUE',
      'data',
    ],
    [
      'an empty required LIST',
      { service: 'demo', action: 'fetch-data', account: 'validation-user', params: { device: 'd1', data: [] } },
      'INVALID_PARAMETER_VALUE',
      'data',
    ],
    [
      'a malformed DATE',
      {
        service: 'demo',
        action: 'fetch-data',
        account: 'validation-user',
        params: { device: 'd1', data: ['sms'], since: '2026-13-01' },
      },
      'INVALID_PARAMETER_VALUE',
      'since',
    ],
    [
      'a DATE that is a date and time',
      {
        service: 'demo',
        action: 'fetch-data',
        account: 'validation-user',
        params: { device: 'd1', data: ['sms'], since: '2026-01-01T00:00:00Z' },
      },
      'INVALID_PARAMETER_VALUE',
      'since',
    ],
    [
      'a DATE on a day that does not exist',
      {
        service: 'demo',
        action: 'fetch-data',
        account: 'validation-user',
        params: { device: 'd1', data: ['sms'], since: '2026-02-30' },
      },
      'INVALID_PARAMETER_VALUE',
      'since',
    ],
  ];

  beforeAll(async () => {
    await registerAccount(server, token, 'validation-user');
  });

  it.each(cases)('refuses %s and creates no task', async (_name, input, code, field) => {
    const before = await countAllTasks();
    const result = await submit(server, token, input);
    expect(result).toMatchObject({ __typename: 'ValidationError', code, field });
    expect(typeof result.message).toBe('string');
    expect(await countAllTasks()).toBe(before);
  });

  it('accepts the same fetch-data input once it is valid (the cases above fail for the reason named)', async () => {
    const result = await submit(server, token, {
      service: 'demo',
      action: 'fetch-data',
      account: 'validation-user',
      params: { device: 'd1', data: ['sms'], since: '2026-02-28' },
      runAt: inHour(),
    });
    expect(result.__typename).toBe('SubmitTaskSuccess');
  });

  it('refuses a dependsOn that names no task with NotFoundError and creates nothing', async () => {
    const before = await countAllTasks();
    const result = await submit(server, token, {
      service: 'demo',
      action: 'echo',
      params: { message: 'x' },
      dependsOn: [encodeGlobalID('Task', 999_999)],
    });
    expect(result).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    expect(await countAllTasks()).toBe(before);
  });
});

describe('submitTasks', () => {
  it('creates a batch of 3 that shares one poll', async () => {
    const inputs = [1, 2, 3].map((n) => ({ service: 'demo', action: 'echo', params: { message: `batch ${n}` } }));
    const data = await query(server, token, SUBMIT_TASKS, { inputs });
    const result = data.submitTasks;
    expect(result.__typename).toBe('SubmitTasksSuccess');
    expect(result.tasks).toHaveLength(3);
    expect(typeof result.poll).toBe('string');
    expect(result.poll.length).toBeGreaterThan(0);
    for (const task of result.tasks) expect(task.poll).toBe(result.poll);
    expect(new Set(result.tasks.map((task: any) => task.id)).size).toBe(3);

    const listed = await listIds({ poll: result.poll });
    expect(listed.sort()).toEqual(result.tasks.map((task: any) => task.id).sort());
    for (const task of result.tasks) expect((await waitForTask(server, token, task.id)).state).toBe('SUCCEEDED');
  });

  it('keeps a poll given by the inputs', async () => {
    const inputs = [1, 2].map((n) => ({ service: 'demo', action: 'echo', params: { message: `${n}` }, poll: 'my-poll' }));
    const data = await query(server, token, SUBMIT_TASKS, { inputs });
    expect(data.submitTasks.__typename).toBe('SubmitTasksSuccess');
    expect(data.submitTasks.poll).toBe('my-poll');
    expect(data.submitTasks.tasks.map((task: any) => task.poll)).toEqual(['my-poll', 'my-poll']);
  });

  it('creates nothing when one input is bad, and names its index', async () => {
    const before = await countAllTasks();
    const inputs = [
      { service: 'demo', action: 'echo', params: { message: 'ok' } },
      { service: 'demo', action: 'echo', params: { message: 'ok' } },
      { service: 'demo', action: 'echo', params: {} },
    ];
    const data = await query(server, token, SUBMIT_TASKS, { inputs });
    expect(data.submitTasks).toMatchObject({
      __typename: 'ValidationError',
      code: 'MISSING_PARAM',
      field: 'message',
      index: 2,
    });
    expect(await countAllTasks()).toBe(before);
  });

  it('creates nothing when a later input depends on a task that does not exist', async () => {
    const before = await countAllTasks();
    const inputs = [
      { service: 'demo', action: 'echo', params: { message: 'ok' } },
      { service: 'demo', action: 'echo', params: { message: 'ok' }, dependsOn: [encodeGlobalID('Task', 999_998)] },
    ];
    const data = await query(server, token, SUBMIT_TASKS, { inputs });
    expect(data.submitTasks).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    expect(await countAllTasks()).toBe(before);
  });

  it('keeps a failing batch from undoing a good one submitted at the same moment', async () => {
    const good = [1, 2].map((n) => ({ service: 'demo', action: 'echo', params: { message: `g${n}` }, session: 'concurrent-batches' }));
    const bad = [
      { service: 'demo', action: 'echo', params: { message: 'b1' }, session: 'concurrent-batches' },
      {
        service: 'demo',
        action: 'echo',
        params: { message: 'b2' },
        session: 'concurrent-batches',
        dependsOn: [encodeGlobalID('Task', 999_996)],
      },
    ];
    const [goodResult, badResult] = await Promise.all([
      query(server, token, SUBMIT_TASKS, { inputs: good }),
      query(server, token, SUBMIT_TASKS, { inputs: bad }),
    ]);
    expect(goodResult.submitTasks.__typename).toBe('SubmitTasksSuccess');
    expect(badResult.submitTasks).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    const goodIds = goodResult.submitTasks.tasks.map((task: any) => task.id);
    expect(await listIds({ session: 'concurrent-batches' })).toEqual([...goodIds].reverse());
  });

  it('refuses more than 1000 inputs with LIMIT_EXCEEDED before anything runs, and creates nothing', async () => {
    const before = await countAllTasks();
    const inputs = Array.from({ length: 1001 }, () => ({ service: 'demo', action: 'echo', params: { message: 'x' } }));
    const response = await graphql(server, token, SUBMIT_TASKS, { inputs });
    expect(response.status).toBe(400);
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 1000 });
    expect(await countAllTasks()).toBe(before);
  });
});

describe('idempotency', () => {
  it('returns the first task for a repeated idempotencyKey and creates only one', async () => {
    const input = {
      service: 'demo',
      action: 'echo',
      params: { message: 'once' },
      idempotencyKey: 'idem-1',
      session: 'idempotency',
    };
    const first = await submit(server, token, input);
    const second = await submit(server, token, input);
    expect(first.__typename).toBe('SubmitTaskSuccess');
    expect(second.__typename).toBe('SubmitTaskSuccess');
    expect(second.task.id).toBe(first.task.id);
    expect(await listIds({ session: 'idempotency' })).toEqual([first.task.id]);
  });
});

describe('idempotency under concurrency', () => {
  it('gives concurrent submissions with one idempotencyKey one task', async () => {
    const input = { service: 'demo', action: 'echo', params: { message: 'race' }, idempotencyKey: 'idem-race', session: 'idem-race' };
    const results = await Promise.all(Array.from({ length: 5 }, () => submit(server, token, input)));
    const ids = new Set(results.map((result) => result.task?.id));
    expect(results.every((result) => result.__typename === 'SubmitTaskSuccess')).toBe(true);
    expect(ids.size).toBe(1);
    expect(await listIds({ session: 'idem-race' })).toEqual([...ids]);
  });

  it('gives a repeated idempotencyKey inside one batch the same task', async () => {
    const input = { service: 'demo', action: 'echo', params: { message: 'dup' }, idempotencyKey: 'idem-batch', session: 'idem-batch' };
    const data = await query(server, token, SUBMIT_TASKS, { inputs: [input, input] });
    expect(data.submitTasks.__typename).toBe('SubmitTasksSuccess');
    const [a, b] = data.submitTasks.tasks;
    expect(b.id).toBe(a.id);
    expect(await listIds({ session: 'idem-batch' })).toEqual([a.id]);
  });
});

describe('tasks(filter, first, after)', () => {
  const session = 'listing';
  let ids: string[] = [];

  beforeAll(async () => {
    ids = [];
    for (let n = 0; n < 7; n++) {
      const result = await submit(server, token, {
        service: 'demo',
        action: 'echo',
        params: { message: `list ${n}` },
        session,
      });
      ids.push(result.task.id);
    }
  });

  it('lists newest first', async () => {
    expect(await listIds({ session })).toEqual([...ids].reverse());
  });

  it('pages with first/after without duplicates or gaps', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const data: any = await query(server, token, TASKS, { filter: { session }, first: 3, after });
      const connection = data.tasks;
      pages += 1;
      expect(connection.edges.length).toBeLessThanOrEqual(3);
      expect(connection.pageInfo.hasPreviousPage).toBe(after !== null);
      if (connection.edges.length > 0) {
        expect(connection.pageInfo.startCursor).toBe(connection.edges[0].cursor);
        expect(connection.pageInfo.endCursor).toBe(connection.edges.at(-1).cursor);
      }
      seen.push(...connection.edges.map((edge: any) => edge.node.id));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  it('refuses a cursor that is not one', async () => {
    const response = await graphql(server, token, TASKS, { first: 2, after: ids[0] });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('INVALID');
  });

  it('filters by ids and by idempotencyKey; an empty or unreadable list of ids selects nothing', async () => {
    expect(await listIds({ session, ids: [ids[1], ids[4], 'not-an-id'] })).toEqual([ids[4], ids[1]]);
    expect(await listIds({ session, ids: [] })).toEqual([]);
    expect(await listIds({ ids: ['not-an-id'] })).toEqual([]);
    const keyed = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'k' }, idempotencyKey: 'find-me' });
    expect(await listIds({ idempotencyKey: 'find-me' })).toEqual([keyed.task.id]);
    expect(await listIds({ idempotencyKey: 'find-nobody' })).toEqual([]);
    const tooMany = await graphql(server, token, TASKS, { filter: { ids: Array.from({ length: 1001 }, () => ids[0]) } });
    expect(tooMany.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', coordinate: 'TaskFilter.ids' });
  });

  it('filters by the submitting key', async () => {
    const memberToken = await createKey(server, 'default', 'MEMBER');
    const viewer = await query(server, memberToken, `{ viewer { key { id name role } } }`);
    const memberKeyId = viewer.viewer.key.id;
    const own = await submit(server, memberToken, {
      service: 'demo',
      action: 'echo',
      params: { message: 'member' },
      session: 'by-key',
    });
    const admin = await submit(server, token, {
      service: 'demo',
      action: 'echo',
      params: { message: 'admin' },
      session: 'by-key',
    });
    expect(await listIds({ session: 'by-key', key: memberKeyId })).toEqual([own.task.id]);
    const adminKeyId = (await query(server, token, `{ viewer { key { id } } }`)).viewer.key.id;
    expect(await listIds({ session: 'by-key', key: adminKeyId })).toEqual([admin.task.id]);
    // An id of another type names no key.
    expect(await listIds({ session: 'by-key', key: own.task.id })).toEqual([]);

    const task = await getTask(own.task.id);
    expect(task.key).toEqual({ id: memberKeyId, name: viewer.viewer.key.name, role: 'MEMBER' });
  });

  it('filters by user, session, poll, service and type', async () => {
    const tagged = await submit(server, token, {
      service: 'demo',
      action: 'echo',
      params: { message: 'tags' },
      user: 'alice',
      session: 'tags',
      target: 'some-target',
    });
    const other = await submit(server, token, {
      service: 'demo',
      action: 'sleep',
      params: { ms: 1 },
      user: 'bob',
      session: 'tags',
    });
    const batch = await query(server, token, SUBMIT_TASKS, {
      inputs: [{ service: 'demo', action: 'echo', params: { message: 'p' }, session: 'tags' }],
    });
    const polled = batch.submitTasks.tasks[0].id;

    expect(await listIds({ session: 'tags', user: 'alice' })).toEqual([tagged.task.id]);
    expect(await listIds({ session: 'tags', user: 'bob' })).toEqual([other.task.id]);
    expect(await listIds({ session: 'tags' })).toEqual([polled, other.task.id, tagged.task.id]);
    expect(await listIds({ session: 'tags', poll: batch.submitTasks.poll })).toEqual([polled]);
    expect(await listIds({ session: 'tags', type: 'sleep' })).toEqual([other.task.id]);
    expect(await listIds({ session: 'tags', type: 'echo' })).toEqual([polled, tagged.task.id]);
    expect(await listIds({ session: 'tags', service: 'demo' })).toEqual([polled, other.task.id, tagged.task.id]);
    expect(await listIds({ session: 'tags', service: 'other' })).toEqual([]);
    expect(await listIds({ session: 'no-such-session' })).toEqual([]);

    const task = await getTask(tagged.task.id);
    expect(task).toMatchObject({ user: 'alice', session: 'tags', target: 'some-target', poll: null });
  });

  it('filters by source and sourceType', async () => {
    const accountId = await registerAccount(server, token, 'filter-user');
    const withAccount = await submit(server, token, {
      service: 'demo',
      action: 'fetch-data',
      account: 'filter-user',
      params: { device: 'd', data: ['sms'] },
      session: 'sources',
    });
    const without = await submit(server, token, {
      service: 'demo',
      action: 'echo',
      params: { message: 'no account' },
      session: 'sources',
    });
    expect(withAccount.__typename).toBe('SubmitTaskSuccess');
    expect(await listIds({ session: 'sources', source: accountId })).toEqual([withAccount.task.id]);
    expect(await listIds({ session: 'sources', sourceType: 'demo' })).toEqual([withAccount.task.id]);
    expect(await listIds({ session: 'sources', sourceType: 'other' })).toEqual([]);
    expect(await listIds({ session: 'sources', source: encodeGlobalID('Account', 999_999) })).toEqual([]);
    expect(await listIds({ session: 'sources', source: 'garbage' })).toEqual([]);
    expect(await listIds({ session: 'sources' })).toEqual([without.task.id, withAccount.task.id]);

    const task = await getTask(withAccount.task.id);
    expect(task.source).toEqual({ id: accountId, service: 'demo', username: 'filter-user' });
    expect(task.sourceType).toBe('demo');
    expect((await getTask(without.task.id)).source).toBeNull();
  });

  it('filters by state (any of a list)', async () => {
    const done = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 's' }, session: 'states' });
    const failed = await submit(server, token, { service: 'demo', action: 'fail', session: 'states' });
    const waiting = await submit(server, token, {
      service: 'demo',
      action: 'sleep',
      params: { ms: 1 },
      runAt: inHour(),
      session: 'states',
    });
    expect((await waitForTask(server, token, done.task.id)).state).toBe('SUCCEEDED');
    expect((await waitForTask(server, token, failed.task.id)).state).toBe('FAILED');

    expect(await listIds({ session: 'states', state: ['SUCCEEDED'] })).toEqual([done.task.id]);
    expect(await listIds({ session: 'states', state: ['FAILED'] })).toEqual([failed.task.id]);
    expect(await listIds({ session: 'states', state: ['PENDING'] })).toEqual([waiting.task.id]);
    expect(await listIds({ session: 'states', state: ['SUCCEEDED', 'PENDING'] })).toEqual([waiting.task.id, done.task.id]);
    expect(await listIds({ session: 'states', state: ['CANCELLED'] })).toEqual([]);
  });

  it('filters by dateCreated, dateStarted and dateCompleted ranges', async () => {
    const first = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'd1' }, session: 'dates' });
    await waitForTask(server, token, first.task.id);
    const second = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'd2' }, session: 'dates' });
    await waitForTask(server, token, second.task.id);
    const pending = await submit(server, token, {
      service: 'demo',
      action: 'sleep',
      params: { ms: 1 },
      runAt: inHour(),
      session: 'dates',
    });

    const data = await query(server, token, TASKS, { filter: { session: 'dates' } });
    const nodes: any[] = data.tasks.edges.map((edge: any) => edge.node);
    expect(nodes.map((node) => node.id)).toEqual([pending.task.id, second.task.id, first.task.id]);
    const time = (value: string | null) => (value === null ? null : Date.parse(value));
    const expectIds = async (field: string, range: Record<string, string>) => {
      const bound = Object.fromEntries(Object.entries(range).map(([op, value]) => [op, Date.parse(value)]));
      const expected = nodes
        .filter((node) => {
          const at = time(node[field]);
          if (at === null) return false;
          return (
            (bound.gt === undefined || at > bound.gt) &&
            (bound.gte === undefined || at >= bound.gte) &&
            (bound.lt === undefined || at < bound.lt) &&
            (bound.lte === undefined || at <= bound.lte)
          );
        })
        .map((node) => node.id);
      expect(await listIds({ session: 'dates', [field]: range }), `${field} ${JSON.stringify(range)}`).toEqual(expected);
      return expected;
    };

    const [pendingNode, secondNode, firstNode] = nodes;
    expect(pendingNode.dateStarted).toBeNull();
    expect(pendingNode.dateCompleted).toBeNull();
    expect(Date.parse(secondNode.dateCreated)).toBeGreaterThanOrEqual(Date.parse(firstNode.dateCompleted));

    const before = new Date(Date.parse(firstNode.dateCreated) - 1).toISOString();
    expect(await expectIds('dateCreated', { lt: firstNode.dateCreated })).toEqual([]);
    expect(await expectIds('dateCreated', { lte: before })).toEqual([]);
    expect(await expectIds('dateCreated', { gte: firstNode.dateCreated })).toEqual([
      pending.task.id,
      second.task.id,
      first.task.id,
    ]);
    expect(await expectIds('dateCreated', { gt: firstNode.dateCompleted })).toContain(pending.task.id);
    await expectIds('dateCreated', { gte: secondNode.dateCreated, lt: pendingNode.dateCreated });

    // Tasks that never started have no dateStarted: any range leaves them out.
    expect(await expectIds('dateStarted', { gte: before })).toEqual([second.task.id, first.task.id]);
    expect(await expectIds('dateStarted', { lt: firstNode.dateStarted })).toEqual([]);
    expect(await expectIds('dateStarted', { gte: secondNode.dateStarted })).toContain(second.task.id);

    expect(await expectIds('dateCompleted', { lte: firstNode.dateCompleted })).toContain(first.task.id);
    expect(await expectIds('dateCompleted', { lte: firstNode.dateCompleted })).not.toContain(second.task.id);
    expect(await expectIds('dateCompleted', { gt: secondNode.dateCompleted })).toEqual([]);
    expect(await expectIds('dateCompleted', { gte: before, lte: secondNode.dateCompleted })).toEqual([
      second.task.id,
      first.task.id,
    ]);
  });
});

describe('taskStatuses', () => {
  it('keeps the order asked and reports unknown and malformed ids as not found', async () => {
    const done = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'st' } });
    await waitForTask(server, token, done.task.id);
    const failed = await submit(server, token, { service: 'demo', action: 'fail', params: { code: 'BOOM' } });
    await waitForTask(server, token, failed.task.id);
    const unknown = encodeGlobalID('Task', 999_997);
    const wrongType = encodeGlobalID('Account', 1);
    const ids = [failed.task.id, 'garbage', done.task.id, unknown, wrongType, done.task.id];
    const data = await query(server, token, STATUSES, { ids });
    expect(data.taskStatuses.map((status: any) => status.id)).toEqual(ids);
    expect(data.taskStatuses.map((status: any) => status.found)).toEqual([true, false, true, false, false, true]);
    expect(data.taskStatuses[0]).toMatchObject({
      state: 'FAILED',
      status: 'COMPLETED',
      queuePosition: null,
      error: { code: 'BOOM' },
      resultRetrieved: false,
      retrievalProtocol: 'STORE',
    });
    expect(data.taskStatuses[2]).toMatchObject({ state: 'SUCCEEDED', status: 'COMPLETED', error: null });
    expect(data.taskStatuses[1]).toEqual({
      id: 'garbage',
      found: false,
      state: null,
      status: null,
      queuePosition: null,
      resultRetrieved: null,
      retrievalProtocol: null,
      error: null,
    });
  });

  it('answers another organisation key with found:false', async () => {
    const done = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'org' } });
    const otherToken = await createKey(server, 'other-org', 'ADMIN');
    const data = await query(server, otherToken, STATUSES, { ids: [done.task.id] });
    expect(data.taskStatuses).toEqual([expect.objectContaining({ id: done.task.id, found: false, state: null })]);
    const task = await query(server, otherToken, TASK, { id: done.task.id });
    expect(task.task).toBeNull();
  });

  it('answers thousands of ids, read and completed in chunks, as small requests answer each slice', async () => {
    const runAt = new Date(Date.now() + 86_400_000).toISOString();
    const submitted: string[] = [];
    for (const size of [1000, 1000, 500]) {
      const inputs = Array.from({ length: size }, (_, index) => ({
        service: 'demo',
        action: 'echo',
        params: { message: `chunk ${index}` },
        runAt,
        priority: index % 3,
      }));
      const data = await query(server, token, SUBMIT_TASKS, { inputs });
      expect(data.submitTasks.__typename).toBe('SubmitTasksSuccess');
      submitted.push(...data.submitTasks.tasks.map((task: any) => task.id));
    }
    const done = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'chunk done' } });
    await waitForTask(server, token, done.task.id);
    const ids = submitted.flatMap((id, index) =>
      index % 250 === 0 ? [id, done.task.id, encodeGlobalID('Task', 2_000_000 + index), 'garbage'] : [id],
    );
    const inSlices = async () => {
      const answers = [];
      for (let first = 0; first < ids.length; first += 400) {
        answers.push(...(await query(server, token, STATUSES, { ids: ids.slice(first, first + 400) })).taskStatuses);
      }
      return answers;
    };
    // Positions move if the worker claims a task ahead of these between two reads: compare reads
    // between two equal slice-by-slice answers.
    let before = await inSlices();
    for (let attempt = 0; attempt < 5; attempt++) {
      const whole = (await query(server, token, STATUSES, { ids })).taskStatuses;
      const after = await inSlices();
      if (JSON.stringify(before) === JSON.stringify(after)) {
        expect(whole).toEqual(after);
        expect(whole.filter((status: any) => status.queuePosition !== null)).toHaveLength(submitted.length);
        expect(whole.filter((status: any) => !status.found)).toHaveLength(20);
        return;
      }
      before = after;
    }
    throw new Error('the queue did not hold still for two reads in five attempts');
  });

  it('takes exactly 10,000 ids and refuses 10,001 with LIMIT_EXCEEDED', async () => {
    const done = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'many' } });
    const ids = Array.from({ length: 10_000 }, (_, index) => (index === 5_000 ? done.task.id : encodeGlobalID('Task', 1_000_000 + index)));
    const ok = await query(server, token, `query ($ids: [ID!]!) { taskStatuses(ids: $ids) { id found } }`, { ids });
    expect(ok.taskStatuses).toHaveLength(10_000);
    expect(ok.taskStatuses[5_000]).toEqual({ id: done.task.id, found: true });
    expect(ok.taskStatuses.filter((status: any) => status.found)).toHaveLength(1);

    const tooMany = await graphql(server, token, `query ($ids: [ID!]!) { taskStatuses(ids: $ids) { id found } }`, {
      ids: [...ids, done.task.id],
    });
    expect(tooMany.body.errors?.[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');
    expect(tooMany.body.data?.taskStatuses ?? null).toBeNull();
  });
});

describe('queue positions', () => {
  let queueServer: TestServer;
  let queueToken: string;

  beforeAll(async () => {
    queueServer = await startServer({ concurrency: 1 });
    queueToken = queueServer.adminToken;
  });

  afterAll(async () => {
    await queueServer.stop();
  });

  it('numbers PENDING tasks 0,1,2 in FIFO order, and a higher priority goes ahead', async () => {
    const runAt = inHour();
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) {
      const result = await submit(queueServer, queueToken, { service: 'demo', action: 'sleep', params: { ms: 10 }, runAt });
      expect(result.__typename).toBe('SubmitTaskSuccess');
      ids.push(result.task.id);
    }
    const before = await query(queueServer, queueToken, STATUSES, { ids });
    expect(before.taskStatuses.map((status: any) => status.queuePosition)).toEqual([0, 1, 2]);
    expect(before.taskStatuses.map((status: any) => status.status)).toEqual(['IN_QUEUE', 'IN_QUEUE', 'IN_QUEUE']);

    const urgent = await submit(
      queueServer,
      queueToken,
      { service: 'demo', action: 'sleep', params: { ms: 10 }, runAt, priority: 5 },
      'id state queuePosition priority',
    );
    expect(urgent.task).toMatchObject({ state: 'PENDING', queuePosition: 0, priority: 5 });

    const after = await query(queueServer, queueToken, STATUSES, { ids: [...ids, urgent.task.id] });
    expect(after.taskStatuses.map((status: any) => status.queuePosition)).toEqual([1, 2, 3, 0]);

    const task = await query(queueServer, queueToken, `query ($id: ID!) { task(id: $id) { queuePosition runAt } }`, {
      id: ids[2],
    });
    expect(task.task.queuePosition).toBe(3);
    expect(task.task.runAt).toBe(runAt);

    // Another action is another queue.
    const echo = await submit(
      queueServer,
      queueToken,
      { service: 'demo', action: 'echo', params: { message: 'q' }, runAt },
      'id queuePosition',
    );
    expect(echo.task.queuePosition).toBe(0);

    // A task leaves the numbering when it is cancelled; the others close up.
    const cancelled = await query(
      queueServer,
      queueToken,
      `mutation ($id: ID!) { cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { state queuePosition } } } }`,
      { id: urgent.task.id },
    );
    expect(cancelled.cancelTask.task).toEqual({ state: 'CANCELLED', queuePosition: null });
    const closed = await query(queueServer, queueToken, STATUSES, { ids: [...ids, urgent.task.id] });
    expect(closed.taskStatuses.map((status: any) => status.queuePosition)).toEqual([0, 1, 2, null]);
  });

  it('gives positions for more than a handful of ids at once, as for one', async () => {
    const runAt = inHour();
    const inputs = Array.from({ length: 20 }, () => ({ service: 'demo', action: 'fail', runAt }));
    const batch = await query(queueServer, queueToken, SUBMIT_TASKS, { inputs });
    const ids: string[] = batch.submitTasks.tasks.map((task: any) => task.id);
    const all = await query(queueServer, queueToken, STATUSES, { ids });
    expect(all.taskStatuses.map((status: any) => status.queuePosition)).toEqual(ids.map((_, index) => index));
    const one = await query(queueServer, queueToken, STATUSES, { ids: [ids[17]] });
    expect(one.taskStatuses[0].queuePosition).toBe(17);
  });

  it('has no queuePosition once a task is not PENDING', async () => {
    // A server of its own, so that no task of the other tests waits in the echo queue.
    const single = await startServer({ concurrency: 1 });
    const singleToken = single.adminToken;
    try {
      // Held PROCESSING on the only slot until it is cancelled.
      const running = await submit(single, singleToken, {
        service: 'demo',
        action: 'sleep',
        params: { ms: 60_000, steps: 1 },
      });
      const behind = await submit(single, singleToken, { service: 'demo', action: 'echo', params: { message: 'behind' } });
      await new Promise<void>((resolve, reject) => {
        subscribeOverWebSocket(
          wsClient(single, singleToken),
          `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`,
          { id: running.task.id },
          (result) => {
            if ((result.data as any)?.taskUpdated?.state === 'PROCESSING') resolve();
          },
        ).catch(reject);
      });
      const statuses = await query(single, singleToken, STATUSES, { ids: [running.task.id, behind.task.id] });
      expect(statuses.taskStatuses[0]).toMatchObject({ state: 'PROCESSING', status: 'IN_PROGRESS', queuePosition: null });
      expect(statuses.taskStatuses[1]).toMatchObject({ state: 'PENDING', status: 'IN_QUEUE', queuePosition: 0 });
      const task = await query(single, singleToken, `query ($id: ID!) { task(id: $id) { status queuePosition } }`, {
        id: running.task.id,
      });
      expect(task.task).toEqual({ status: 'IN_PROGRESS', queuePosition: null });

      await query(single, singleToken, `mutation ($id: ID!) { cancelTask(id: $id) { __typename } }`, { id: running.task.id });
      expect((await waitForTask(single, singleToken, running.task.id)).state).toBe('CANCELLED');
      expect((await waitForTask(single, singleToken, behind.task.id)).state).toBe('SUCCEEDED');
      const done = await query(single, singleToken, STATUSES, { ids: [behind.task.id] });
      expect(done.taskStatuses[0]).toMatchObject({ status: 'COMPLETED', queuePosition: null });
    } finally {
      await single.stop();
    }
  });
});

describe('task(id), node(id) and Task fields', () => {
  it('resolves a task by task(id) and node(id), with its fields', async () => {
    const dependency = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'dep' } });
    await waitForTask(server, token, dependency.task.id);
    const runAt = new Date(Date.now() - 1000).toISOString();
    const submitted = await submit(server, token, {
      service: 'demo',
      action: 'sleep',
      params: { ms: 5 },
      priority: 7,
      maxAttempts: 4,
      runAt,
      dependsOn: [dependency.task.id],
    });
    const id = submitted.task.id;
    await waitForTask(server, token, id);

    const task = await getTask(id);
    const viewer = await query(server, token, `{ viewer { key { id name role } } }`);
    expect(task).toMatchObject({
      id,
      state: 'SUCCEEDED',
      status: 'COMPLETED',
      service: 'demo',
      type: 'sleep',
      priority: 7,
      attempts: 1,
      maxAttempts: 4,
      params: { ms: 5, steps: 10 },
      runAt,
      progress: 1,
      error: null,
      queuePosition: null,
      retrievalProtocol: 'STORE',
      key: viewer.viewer.key,
      source: null,
      dependsOn: [{ id: dependency.task.id }],
    });
    expect(Date.parse(task.dateStarted)).toBeGreaterThanOrEqual(Date.parse(task.dateCreated));
    expect(Date.parse(task.dateCompleted)).toBeGreaterThanOrEqual(Date.parse(task.dateStarted));

    const node = await query(
      server,
      token,
      `query ($id: ID!) { node(id: $id) { __typename id ... on Task { state type } } }`,
      { id },
    );
    expect(node.node).toEqual({ __typename: 'Task', id, state: 'SUCCEEDED', type: 'sleep' });
  });

  it('applies defaults: priority 0 and the action maxAttempts', async () => {
    const echo = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'defaults' } }, TASK_FIELDS);
    expect(echo.task).toMatchObject({ priority: 0, maxAttempts: 3, attempts: 0, runAt: null, dependsOn: [] });
    const fail = await submit(server, token, { service: 'demo', action: 'fail' }, TASK_FIELDS);
    expect(fail.task.maxAttempts).toBe(1);
  });

  it('returns null for unknown and malformed ids', async () => {
    const unknown = encodeGlobalID('Task', 888_888);
    const data = await query(
      server,
      token,
      `query ($a: ID!, $b: ID!) { a: task(id: $a) { id } b: task(id: $b) { id } c: node(id: $a) { id } d: node(id: $b) { id } }`,
      { a: unknown, b: 'not a global id' },
    );
    expect(data).toEqual({ a: null, b: null, c: null, d: null });
  });

  it('maps states to the queue status (IN_QUEUE, COMPLETED) and reports a failure', async () => {
    const waiting = await submit(
      server,
      token,
      { service: 'demo', action: 'sleep', params: { ms: 1 }, runAt: inHour() },
      'state status queuePosition',
    );
    expect(waiting.task).toMatchObject({ state: 'PENDING', status: 'IN_QUEUE' });
    expect(typeof waiting.task.queuePosition).toBe('number');

    const blocker = await submit(server, token, { service: 'demo', action: 'sleep', params: { ms: 1 }, runAt: inHour() });
    const suspended = await submit(
      server,
      token,
      { service: 'demo', action: 'echo', params: { message: 'later' }, dependsOn: [blocker.task.id] },
      'state status queuePosition',
    );
    expect(suspended.task).toEqual({ state: 'SUSPENDED', status: 'IN_QUEUE', queuePosition: null });

    const failed = await submit(server, token, { service: 'demo', action: 'fail', params: { code: 'E_DEMO' } });
    const finished = await waitForTask(server, token, failed.task.id);
    expect(finished).toMatchObject({ state: 'FAILED', attempts: 1, error: { code: 'E_DEMO' } });
    const task = await getTask(failed.task.id);
    expect(task).toMatchObject({ status: 'COMPLETED', queuePosition: null, error: { code: 'E_DEMO' } });
  });
});

describe('logs of a demo.sleep task', () => {
  let id: string;

  beforeAll(async () => {
    const submitted = await submit(server, token, { service: 'demo', action: 'sleep', params: { ms: 50, steps: 5 } });
    id = submitted.task.id;
    await waitForTask(server, token, id);
  });

  const LOGS = `
    query ($id: ID!, $first: Int, $after: String, $minLevel: LogLevel) {
      task(id: $id) {
        progress
        logs(first: $first, after: $after, minLevel: $minLevel) {
          edges { cursor node { message level source timestamp } }
          pageInfo { hasNextPage hasPreviousPage endCursor }
        }
      }
    }`;

  it('logs each step at INFO, oldest first, and ends with progress 1', async () => {
    const data = await query(server, token, LOGS, { id });
    expect(data.task.progress).toBe(1);
    const stepLogs = data.task.logs.edges
      .map((edge: any) => edge.node)
      .filter((log: any) => log.message.startsWith('step '));
    expect(stepLogs.map((log: any) => log.message)).toEqual([1, 2, 3, 4, 5].map((step) => `step ${step} of 5`));
    for (const log of stepLogs) {
      expect(log.level).toBe('INFO');
      expect(typeof log.source).toBe('string');
      expect(Number.isNaN(Date.parse(log.timestamp))).toBe(false);
    }
  });

  it('filters by minLevel', async () => {
    const info = await query(server, token, LOGS, { id, minLevel: 'INFO' });
    expect(info.task.logs.edges.filter((edge: any) => edge.node.message.startsWith('step '))).toHaveLength(5);
    for (const edge of info.task.logs.edges) expect(['INFO', 'WARN', 'ERROR']).toContain(edge.node.level);
    const warn = await query(server, token, LOGS, { id, minLevel: 'WARN' });
    expect(warn.task.logs.edges).toEqual([]);
  });

  it('pages with first/after', async () => {
    const all = await query(server, token, LOGS, { id, first: 100 });
    const messages: string[] = all.task.logs.edges.map((edge: any) => edge.node.message);
    expect(messages.length).toBeGreaterThanOrEqual(5);

    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = await query(server, token, LOGS, { id, first: 2, after });
      const logs = page.task.logs;
      expect(logs.edges.length).toBeLessThanOrEqual(2);
      expect(logs.pageInfo.hasPreviousPage).toBe(after !== null);
      seen.push(...logs.edges.map((edge: any) => edge.node.message));
      if (!logs.pageInfo.hasNextPage) break;
      after = logs.pageInfo.endCursor;
    }
    expect(seen).toEqual(messages);
  });
});
