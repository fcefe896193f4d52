import type { FormattedExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createKey,
  globalId,
  nextListen,
  query,
  startServer,
  submit,
  subscribeOverSse,
  subscribeOverWebSocket,
  waitForTask,
  wsClient,
  type TestServer,
} from './helpers.js';

/** Ids name objects that exist in acme; made-up ids name nothing at all. */
const MADE_UP_TASK = globalId('Task', 987_654);

/** The error as a client sees it, with the id it names taken out, so that two ids can be compared. */
function withoutId(results: FormattedExecutionResult<any, unknown>[], id: string): unknown {
  return results.map((result) => ({
    data: result.data ?? null,
    errors: result.errors?.map((error) => ({
      message: error.message.replaceAll(id, '<id>'),
      path: error.path,
      extensions: error.extensions,
    })),
  }));
}

describe('tenant isolation', () => {
  let server: TestServer;
  let acme: string;
  let globex: string;
  let acmeKeyId: string;
  let acmeMemberKeyId: string;
  let globexKeyId: string;
  let acmeTaskId: string;
  let acmeResultId: string;
  let acmeAccountId: string;

  beforeAll(async () => {
    server = await startServer();
    acme = await createKey(server, 'acme', 'ADMIN');
    globex = await createKey(server, 'globex', 'ADMIN');
    acmeKeyId = (await query(server, acme, '{ viewer { key { id } } }')).viewer.key.id;
    globexKeyId = (await query(server, globex, '{ viewer { key { id } } }')).viewer.key.id;
    const member = await createKey(server, 'acme', 'MEMBER');
    acmeMemberKeyId = (await query(server, member, '{ viewer { key { id } } }')).viewer.key.id;

    const registered = await query(
      server,
      acme,
      `mutation { registerAccount(input: { service: "demo", username: "acme-only" }) {
        ... on RegisterAccountSuccess { account { id } } } }`,
    );
    acmeAccountId = registered.registerAccount.account.id;

    const task = await submit(server, acme, {
      service: 'demo',
      action: 'fetch-data',
      account: 'acme-only',
      params: { device: 'd1', data: ['sms'] },
    });
    expect(task.__typename).toBe('SubmitTaskSuccess');
    acmeTaskId = task.task.id;
    expect((await waitForTask(server, acme, acmeTaskId)).state).toBe('SUCCEEDED');
    const results = await query(server, acme, 'query ($id: ID!) { task(id: $id) { results { id } } }', { id: acmeTaskId });
    acmeResultId = results.task.results[0].id;
  });

  afterAll(async () => {
    await server.stop();
  });

  test('task(id) and node(id) of acme objects are null for globex, as for unknown ids', async () => {
    const text = `query ($task: ID!) { task(id: $task) { id } node(id: $task) { __typename id } }`;
    const own = await query(server, acme, text, { task: acmeTaskId });
    expect(own).toEqual({ task: { id: acmeTaskId }, node: { __typename: 'Task', id: acmeTaskId } });

    const foreign = await query(server, globex, text, { task: acmeTaskId });
    expect(foreign).toEqual({ task: null, node: null });
    expect(await query(server, globex, text, { task: MADE_UP_TASK })).toEqual({ task: null, node: null });

    for (const id of [acmeTaskId, acmeResultId, acmeAccountId, acmeKeyId, acmeMemberKeyId]) {
      const mine = await query(server, acme, 'query ($id: ID!) { node(id: $id) { id } }', { id });
      expect(mine.node, `acme sees its own ${id}`).toEqual({ id });
      const theirs = await query(server, globex, 'query ($id: ID!) { node(id: $id) { id } }', { id });
      expect(theirs.node, `globex must not see ${id}`).toBeNull();
    }
  });

  test('taskStatuses reports found:false for an acme task, exactly as for an unknown id', async () => {
    const text = `query ($ids: [ID!]!) { taskStatuses(ids: $ids) {
      id found state status queuePosition resultRetrieved retrievalProtocol error { code } } }`;
    const own = await query(server, acme, text, { ids: [acmeTaskId] });
    expect(own.taskStatuses[0]).toMatchObject({ id: acmeTaskId, found: true, state: 'SUCCEEDED' });

    const foreign = await query(server, globex, text, { ids: [acmeTaskId, MADE_UP_TASK] });
    const [acmeStatus, unknownStatus] = foreign.taskStatuses;
    expect(acmeStatus).toEqual({
      id: acmeTaskId,
      found: false,
      state: null,
      status: null,
      queuePosition: null,
      resultRetrieved: null,
      retrievalProtocol: null,
      error: null,
    });
    expect({ ...acmeStatus, id: null }).toEqual({ ...unknownStatus, id: null });
  });

  test('cancelTask of an acme task is a NotFoundError for globex and leaves the task running', async () => {
    const long = await submit(server, acme, { service: 'demo', action: 'sleep', params: { ms: 5000, steps: 1 } });
    const id = long.task.id as string;
    const cancel = `mutation ($id: ID!) { cancelTask(id: $id) { __typename ... on Error { code } } }`;

    expect((await query(server, globex, cancel, { id })).cancelTask).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    expect((await query(server, globex, cancel, { id: MADE_UP_TASK })).cancelTask).toEqual({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    const state = await query(server, acme, 'query ($id: ID!) { task(id: $id) { state } }', { id });
    expect(['PENDING', 'PROCESSING']).toContain(state.task.state);

    expect((await query(server, acme, cancel, { id })).cancelTask.__typename).toBe('CancelTaskSuccess');
    expect((await waitForTask(server, acme, id)).state).toBe('CANCELLED');
  });

  test('retrieveResults of an acme task is a NotFoundError for globex and consumes nothing', async () => {
    const retrieve = `mutation ($id: ID!) { retrieveResults(taskId: $id) {
      __typename ... on Error { code } ... on RetrieveResultsSuccess { results { result { name } } } } }`;
    expect((await query(server, globex, retrieve, { id: acmeTaskId })).retrieveResults).toEqual({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    expect((await query(server, globex, retrieve, { id: MADE_UP_TASK })).retrieveResults).toEqual({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    const task = await query(server, acme, 'query ($id: ID!) { task(id: $id) { resultRetrieved } }', { id: acmeTaskId });
    expect(task.task.resultRetrieved).toBe(false);
  });

  test('taskUpdated of an acme task fails for globex exactly as for an unknown id', async () => {
    const text = 'subscription ($id: ID!) { taskUpdated(id: $id) { id state } }';
    const own = await subscribeOverWebSocket(wsClient(server, acme), text, { id: acmeTaskId });
    expect(own.at(-1)?.data).toEqual({ taskUpdated: { id: acmeTaskId, state: 'SUCCEEDED' } });

    const foreign = await subscribeOverWebSocket(wsClient(server, globex), text, { id: acmeTaskId });
    const unknown = await subscribeOverWebSocket(wsClient(server, globex), text, { id: MADE_UP_TASK });
    expect(foreign[0]?.errors?.map((error) => error.extensions?.code), JSON.stringify(foreign)).toEqual(['NOT_FOUND']);
    expect(withoutId(foreign, acmeTaskId)).toEqual(withoutId(unknown, MADE_UP_TASK));

    const foreignSse = await subscribeOverSse(server, globex, text, { id: acmeTaskId });
    const unknownSse = await subscribeOverSse(server, globex, text, { id: MADE_UP_TASK });
    expect(foreignSse[0]?.errors?.map((error) => error.extensions?.code), JSON.stringify(foreignSse)).toEqual(['NOT_FOUND']);
    expect(withoutId(foreignSse, acmeTaskId)).toEqual(withoutId(unknownSse, MADE_UP_TASK));
  });

  test('the lists of a new organisation are empty, and globex lists hold nothing of acme', async () => {
    const text = `{
      tasks(first: 500) { edges { node { id key { id } } } }
      accounts { edges { node { id username } } }
      apiKeys { id }
    }`;
    const fresh = await query(server, await createKey(server, 'initech', 'ADMIN'), text);
    expect(fresh.tasks.edges).toEqual([]);
    expect(fresh.accounts.edges).toEqual([]);
    expect(fresh.apiKeys).toHaveLength(1);

    const mine = await query(server, acme, text);
    const acmeTaskIds = mine.tasks.edges.map((edge: { node: { id: string } }) => edge.node.id);
    expect(acmeTaskIds).toContain(acmeTaskId);
    expect(mine.accounts.edges.map((edge: { node: { id: string } }) => edge.node.id)).toContain(acmeAccountId);

    const theirs = await query(server, globex, text);
    expect(theirs.tasks.edges.filter((edge: { node: { id: string } }) => acmeTaskIds.includes(edge.node.id))).toEqual([]);
    expect(theirs.tasks.edges.every((edge: { node: { key: { id: string } } }) => edge.node.key.id === globexKeyId)).toBe(true);
    expect(theirs.accounts.edges.filter((edge: { node: { id: string } }) => edge.node.id === acmeAccountId)).toEqual([]);
    const globexKeys = theirs.apiKeys.map((key: { id: string }) => key.id);
    expect(globexKeys).toContain(globexKeyId);
    expect(globexKeys).not.toContain(acmeKeyId);
    expect(globexKeys).not.toContain(acmeMemberKeyId);
  });

  test('filtering tasks by an acme key or account gives globex nothing', async () => {
    const text = 'query ($filter: TaskFilter) { tasks(filter: $filter) { edges { node { id } } } }';
    for (const filter of [{ key: acmeKeyId }, { source: acmeAccountId }]) {
      const mine = await query(server, acme, text, { filter });
      expect(mine.tasks.edges.length, JSON.stringify(filter)).toBeGreaterThan(0);
      const theirs = await query(server, globex, text, { filter });
      expect(theirs.tasks.edges, JSON.stringify(filter)).toEqual([]);
    }
  });

  test('revokeApiKey of an acme key is a NotFoundError for globex, and the key keeps working', async () => {
    const revoke = `mutation ($id: ID!) { revokeApiKey(id: $id) { __typename ... on Error { code } } }`;
    expect((await query(server, globex, revoke, { id: acmeKeyId })).revokeApiKey).toEqual({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    expect((await query(server, acme, '{ viewer { organisation key { revoked } } }')).viewer).toEqual({
      organisation: 'acme',
      key: { revoked: false },
    });
  });

  test('submitTask depending on an acme task is a NotFoundError for globex, as for an unknown task', async () => {
    const input = { service: 'demo', action: 'echo', params: { message: 'x' } };
    const foreign = await submit(server, globex, { ...input, dependsOn: [acmeTaskId] });
    expect(foreign).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    const unknown = await submit(server, globex, { ...input, dependsOn: [MADE_UP_TASK] });
    expect(unknown).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    // The same words for both, each naming the id its client sent.
    expect(foreign.message).toBe(`dependsOn: no task ${acmeTaskId}`);
    expect(unknown.message).toBe(`dependsOn: no task ${MADE_UP_TASK}`);
    // And nothing was created for globex by the refused submissions.
    const tasks = await query(server, globex, '{ tasks(filter: { type: "echo" }) { edges { node { id dependsOn { id } } } } }');
    expect(
      tasks.tasks.edges.filter((edge: { node: { dependsOn: { id: string }[] } }) =>
        edge.node.dependsOn.some((dependency) => dependency.id === acmeTaskId),
      ),
    ).toEqual([]);
  });

  test('a task of globex cannot run against an account registered only by acme', async () => {
    const refused = await submit(server, globex, {
      service: 'demo',
      action: 'fetch-data',
      account: 'acme-only',
      params: { device: 'd1', data: ['sms'] },
    });
    expect(refused).toMatchObject({ __typename: 'ValidationError', code: 'NO_SUCH_ACCOUNT' });
  });

  test('taskEvents of globex carries only globex tasks', async () => {
    const text = `subscription { taskEvents { kind task { id key { id } } } }`;
    const client = wsClient(server, globex);
    const listening = nextListen(server, 'organisation');
    const iterator = client.iterate<{ taskEvents: { kind: string; task: { id: string; key: { id: string } } } }>({ query: text });
    await listening;

    // acme's task ends before globex's task exists: any leaked event would come first.
    const acmeTask = await submit(server, acme, { service: 'demo', action: 'echo', params: { message: 'acme' } });
    expect((await waitForTask(server, acme, acmeTask.task.id)).state).toBe('SUCCEEDED');
    const globexTask = await submit(server, globex, { service: 'demo', action: 'echo', params: { message: 'globex' } });
    const globexTaskId = globexTask.task.id as string;

    const seen: { kind: string; task: { id: string; key: { id: string } } }[] = [];
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) throw new Error(`the subscription ended early after ${JSON.stringify(seen)}`);
      expect(value.errors, JSON.stringify(value.errors)).toBeUndefined();
      const event = value.data!.taskEvents;
      seen.push(event);
      // globex's own CREATED is the barrier: everything published before it has been through the filter.
      if (event.task.id === globexTaskId) break;
    }
    await iterator.return?.();

    expect(seen.map((event) => event.task.id)).toEqual([globexTaskId]);
    expect(seen[0]).toEqual({ kind: 'CREATED', task: { id: globexTaskId, key: { id: globexKeyId } } });
  });

  test('the same username can be registered in both organisations; accounts are per organisation', async () => {
    const register = `mutation { registerAccount(input: { service: "demo", username: "shared-name" }) {
      __typename ... on RegisterAccountSuccess { account { id username } } ... on Error { code } } }`;
    const forAcme = (await query(server, acme, register)).registerAccount;
    const forGlobex = (await query(server, globex, register)).registerAccount;
    expect(forAcme).toMatchObject({ __typename: 'RegisterAccountSuccess', account: { username: 'shared-name' } });
    expect(forGlobex).toMatchObject({ __typename: 'RegisterAccountSuccess', account: { username: 'shared-name' } });
    expect(forGlobex.account.id).not.toBe(forAcme.account.id);

    // Within one organisation the username is still taken.
    expect((await query(server, acme, register)).registerAccount).toEqual({ __typename: 'ConflictError', code: 'ALREADY_EXISTS' });

    const globexAccounts = await query(server, globex, '{ accounts(service: "demo") { edges { node { id } } } }');
    expect(globexAccounts.accounts.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([forGlobex.account.id]);

    // Deregistering in one organisation leaves the other's account in place.
    const deregister = `mutation { deregisterAccount(input: { service: "demo", username: "shared-name" }) { __typename } }`;
    expect((await query(server, globex, deregister)).deregisterAccount.__typename).toBe('DeregisterAccountSuccess');
    const acmeNode = await query(server, acme, 'query ($id: ID!) { node(id: $id) { id } }', { id: forAcme.account.id });
    expect(acmeNode.node).toEqual({ id: forAcme.account.id });
  });
});
