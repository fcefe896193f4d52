import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, query, startServer, submit, waitForTask, type TestServer } from './helpers.js';

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startServer();
  token = server.adminToken;
});

afterAll(async () => {
  await server.stop();
});

const REGISTER = `
  mutation ($input: AccountInput!) {
    registerAccount(input: $input) {
      __typename
      ... on RegisterAccountSuccess { account { id service username dateCreated } }
      ... on Error { code message }
      ... on ValidationError { field }
    }
  }`;

const DEREGISTER = `
  mutation ($input: AccountInput!) {
    deregisterAccount(input: $input) {
      __typename
      ... on DeregisterAccountSuccess { account { id service username dateCreated } }
      ... on Error { code message }
      ... on ValidationError { field }
    }
  }`;

const ACCOUNTS = `
  query ($service: String, $first: Int, $after: String) {
    accounts(service: $service, first: $first, after: $after) {
      edges { cursor node { id service username dateCreated } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }`;

async function register(username: string, service = 'demo', as = token): Promise<Record<string, any>> {
  return (await query(server, as, REGISTER, { input: { service, username } })).registerAccount;
}

async function deregister(username: string, service = 'demo', as = token): Promise<Record<string, any>> {
  return (await query(server, as, DEREGISTER, { input: { service, username } })).deregisterAccount;
}

async function allAccountIds(as = token, service: string | null = null): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const data: any = await query(server, as, ACCOUNTS, { service, first: 500, after });
    ids.push(...data.accounts.edges.map((edge: any) => edge.node.id));
    if (!data.accounts.pageInfo.hasNextPage) return ids;
    after = data.accounts.pageInfo.endCursor;
  }
}

const fetchInput = (account: string) => ({
  service: 'demo',
  action: 'fetch-data',
  account,
  params: { device: 'dev-1', data: ['contacts'] },
});

describe('registerAccount', () => {
  it('registers an account and returns it', async () => {
    const before = Date.now();
    const result = await register('alice');
    expect(result.__typename).toBe('RegisterAccountSuccess');
    expect(result.account).toMatchObject({ service: 'demo', username: 'alice' });
    expect(typeof result.account.id).toBe('string');
    expect(result.account.dateCreated).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(Date.parse(result.account.dateCreated)).toBeGreaterThanOrEqual(before);
    expect(await allAccountIds()).toContain(result.account.id);
  });

  it('refuses the same service and username again with ALREADY_EXISTS', async () => {
    const first = await register('bob');
    expect(first.__typename).toBe('RegisterAccountSuccess');
    const second = await register('bob');
    expect(second).toMatchObject({ __typename: 'ConflictError', code: 'ALREADY_EXISTS' });
    expect((await allAccountIds()).filter((id) => id === first.account.id)).toHaveLength(1);
  });

  it('refuses an unknown service with INVALID_SERVICE', async () => {
    const before = await allAccountIds();
    const result = await register('carol', 'no-such-service');
    expect(result).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_SERVICE', field: 'service' });
    expect(await allAccountIds()).toEqual(before);
  });

  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['too long', 'x'.repeat(201)],
  ])('refuses a %s username with INVALID on field username', async (_name, username) => {
    const before = await allAccountIds();
    const result = await register(username);
    expect(result).toMatchObject({ __typename: 'ValidationError', code: 'INVALID', field: 'username' });
    expect(await allAccountIds()).toEqual(before);
  });

  it('lets another organisation register the same username, separately', async () => {
    const mine = await register('shared-name');
    const otherToken = await createKey(server, 'accounts-other-org', 'ADMIN');
    const theirs = await register('shared-name', 'demo', otherToken);
    expect(theirs.__typename).toBe('RegisterAccountSuccess');
    expect(theirs.account.id).not.toBe(mine.account.id);
    expect(await allAccountIds(otherToken)).toEqual([theirs.account.id]);
    expect(await allAccountIds()).not.toContain(theirs.account.id);
    // Another organisation's account cannot be used, nor seen through node(id).
    const submitted = await submit(server, otherToken, fetchInput('alice-only-mine'));
    expect(submitted).toMatchObject({ __typename: 'ValidationError', code: 'NO_SUCH_ACCOUNT', field: 'account' });
    const node = await query(server, otherToken, `query ($id: ID!) { node(id: $id) { id } }`, { id: mine.account.id });
    expect(node.node).toBeNull();
  });
});

describe('accounts(service, first, after)', () => {
  it('pages through the accounts without duplicates', async () => {
    const pagingToken = await createKey(server, 'accounts-paging', 'ADMIN');
    const created: string[] = [];
    for (let n = 0; n < 5; n++) created.push((await register(`page-${n}`, 'demo', pagingToken)).account.id);

    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const data: any = await query(server, pagingToken, ACCOUNTS, { first: 2, after });
      const connection = data.accounts;
      pages += 1;
      expect(connection.edges.length).toBeLessThanOrEqual(2);
      expect(connection.pageInfo.hasPreviousPage).toBe(after !== null);
      seen.push(...connection.edges.map((edge: any) => edge.node.id));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(created);
    expect(new Set(seen).size).toBe(5);

    const usernames = (await query(server, pagingToken, ACCOUNTS, { first: 10 })).accounts.edges.map(
      (edge: any) => edge.node.username,
    );
    expect(usernames).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
  });

  it('filters by service', async () => {
    const serviceToken = await createKey(server, 'accounts-service', 'ADMIN');
    const created = await register('by-service', 'demo', serviceToken);
    expect(await allAccountIds(serviceToken, 'demo')).toEqual([created.account.id]);
    expect(await allAccountIds(serviceToken, 'other')).toEqual([]);
  });

  it('leaves deregistered accounts out', async () => {
    const listToken = await createKey(server, 'accounts-list', 'ADMIN');
    const kept = await register('kept', 'demo', listToken);
    const gone = await register('gone', 'demo', listToken);
    await deregister('gone', 'demo', listToken);
    expect(await allAccountIds(listToken)).toEqual([kept.account.id]);
    expect(gone.account.id).not.toBe(kept.account.id);
  });
});

describe('deregisterAccount', () => {
  it('returns the account, then NotFoundError the second time', async () => {
    const registered = await register('dave');
    const first = await deregister('dave');
    expect(first.__typename).toBe('DeregisterAccountSuccess');
    expect(first.account).toEqual(registered.account);
    const second = await deregister('dave');
    expect(second).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  it('answers an account that was never registered with NotFoundError', async () => {
    const result = await deregister('never-registered');
    expect(result).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  it('refuses an unknown service with INVALID_SERVICE', async () => {
    const result = await deregister('dave', 'no-such-service');
    expect(result).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_SERVICE', field: 'service' });
  });

  it('makes fetch-data with that account NO_SUCH_ACCOUNT, and registering again makes it usable', async () => {
    await register('erin');
    const before = await submit(server, token, { ...fetchInput('erin'), runAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(before.__typename).toBe('SubmitTaskSuccess');

    expect((await deregister('erin')).__typename).toBe('DeregisterAccountSuccess');
    const refused = await submit(server, token, fetchInput('erin'));
    expect(refused).toMatchObject({ __typename: 'ValidationError', code: 'NO_SUCH_ACCOUNT', field: 'account' });

    const again = await register('erin');
    expect(again.__typename).toBe('RegisterAccountSuccess');
    expect(again.account).toMatchObject({ service: 'demo', username: 'erin' });
    const accepted = await submit(server, token, fetchInput('erin'), 'id source { id username }');
    expect(accepted.__typename).toBe('SubmitTaskSuccess');
    expect(accepted.task.source).toEqual({ id: again.account.id, username: 'erin' });
    expect((await waitForTask(server, token, accepted.task.id)).state).toBe('SUCCEEDED');
  });

  it('gives each input of a batch its account, and names the input whose account is unknown', async () => {
    const [judy, mallory] = [(await register('judy')).account, (await register('mallory')).account];
    const batch = `mutation ($inputs: [SubmitTaskInput!]!) {
      submitTasks(inputs: $inputs) {
        __typename
        ... on SubmitTasksSuccess { tasks { source { id username } } }
        ... on ValidationError { code field index }
      }
    }`;
    const names = ['judy', 'mallory', 'judy', 'judy', 'mallory'];
    const accepted = (await query(server, token, batch, { inputs: names.map(fetchInput) })).submitTasks;
    expect(accepted.__typename).toBe('SubmitTasksSuccess');
    const byName = { judy, mallory } as Record<string, { id: string }>;
    expect(accepted.tasks.map((task: any) => task.source)).toEqual(names.map((name) => ({ id: byName[name]!.id, username: name })));

    const refused = (await query(server, token, batch, { inputs: [...names, 'oscar', 'judy'].map(fetchInput) })).submitTasks;
    expect(refused).toEqual({ __typename: 'ValidationError', code: 'NO_SUCH_ACCOUNT', field: 'account', index: 5 });
  });

  it('leaves the source of a task that ran against the account in place', async () => {
    const registered = await register('frank');
    const submitted = await submit(server, token, fetchInput('frank'));
    expect((await waitForTask(server, token, submitted.task.id)).state).toBe('SUCCEEDED');

    expect((await deregister('frank')).__typename).toBe('DeregisterAccountSuccess');
    const task = await query(
      server,
      token,
      `query ($id: ID!) { task(id: $id) { sourceType source { id service username dateCreated } } }`,
      { id: submitted.task.id },
    );
    expect(task.task.source).toEqual(registered.account);
    expect(task.task.sourceType).toBe('demo');
    const listed = await query(
      server,
      token,
      `query ($filter: TaskFilter) { tasks(filter: $filter) { edges { node { id } } } }`,
      { filter: { source: registered.account.id } },
    );
    expect(listed.tasks.edges.map((edge: any) => edge.node.id)).toEqual([submitted.task.id]);
  });
});

describe('node(id)', () => {
  it('resolves an Account', async () => {
    const registered = await register('grace');
    const data = await query(
      server,
      token,
      `query ($id: ID!) { node(id: $id) { __typename id ... on Account { service username dateCreated } } }`,
      { id: registered.account.id },
    );
    expect(data.node).toEqual({ __typename: 'Account', ...registered.account });
  });

  it('returns null for an Account id that does not exist', async () => {
    const data = await query(server, token, `query ($id: ID!) { node(id: $id) { id } }`, {
      id: encodeGlobalID('Account', 424242),
    });
    expect(data.node).toBeNull();
  });
});
