import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, graphql, query, startServer, submit, type TestServer } from './helpers.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.stop();
});

const CREATE_KEY = `
  mutation ($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      __typename
      ... on CreateApiKeySuccess { token apiKey { id role permissions } }
      ... on ValidationError { code field message }
    }
  }`;

async function createApiKey(token: string, input: Record<string, unknown>): Promise<Record<string, any>> {
  return (await query(server, token, CREATE_KEY, { input: { name: 'made', ...input } })).createApiKey;
}

async function adminLimitedTo(permissions: unknown): Promise<string> {
  const created = await createApiKey(server.adminToken, { role: 'ADMIN', permissions });
  expect(created.__typename).toBe('CreateApiKeySuccess');
  return created.token;
}

const ECHO_ONLY = { demo: { echo: {} } };

describe('keys created by a narrowed ADMIN key', () => {
  it('get the creator’s own permissions when they name none', async () => {
    const narrowed = await adminLimitedTo(ECHO_ONLY);
    for (const permissions of [undefined, null]) {
      const created = await createApiKey(narrowed, { role: 'ADMIN', permissions });
      expect(created).toMatchObject({
        __typename: 'CreateApiKeySuccess',
        apiKey: { role: 'ADMIN', permissions: ECHO_ONLY },
      });

      const token = created.token as string;
      for (const [action, params] of [
        ['fail', {}],
        ['sleep', { ms: 1 }],
      ] as const) {
        const refused = await submit(server, token, { service: 'demo', action, params });
        expect(refused, action).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_ACTION' });
      }
      const echo = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'hi' } });
      expect(echo.__typename).toBe('SubmitTaskSuccess');
      // Nor can the new ADMIN key escape by minting a key of its own.
      const grandchild = await createApiKey(token, { role: 'ADMIN' });
      expect(grandchild.apiKey.permissions).toEqual(ECHO_ONLY);
    }
  });

  it('may be narrowed further', async () => {
    const narrowed = await adminLimitedTo({ demo: { echo: {}, 'fetch-data': { data: ['sms', 'calls'] } } });
    const created = await createApiKey(narrowed, {
      role: 'MEMBER',
      permissions: { demo: { 'fetch-data': { data: ['sms'] } } },
    });
    expect(created).toMatchObject({
      __typename: 'CreateApiKeySuccess',
      apiKey: { permissions: { demo: { 'fetch-data': { data: ['sms'] } } } },
    });
  });

  it('are refused with PERMISSIONS_EXCEEDED, naming what exceeds, when they ask for more', async () => {
    const narrowed = await adminLimitedTo({ demo: { echo: {}, 'fetch-data': { data: ['sms'] } } });
    for (const [permissions, exceeding] of [
      [{ demo: '*' }, 'demo: "*"'],
      [{ demo: { echo: {}, fail: {} } }, 'demo.fail'],
      // No list for a permissioned parameter means every value the catalog allows.
      [{ demo: { 'fetch-data': {} } }, 'demo.fetch-data.data: calls'],
      [{ demo: { 'fetch-data': { data: ['sms', 'photos'] } } }, 'demo.fetch-data.data: photos'],
    ] as const) {
      for (const role of ['ADMIN', 'MEMBER']) {
        const refused = await createApiKey(narrowed, { role, permissions });
        expect(refused, JSON.stringify(permissions)).toMatchObject({
          __typename: 'ValidationError',
          code: 'PERMISSIONS_EXCEEDED',
          field: 'permissions',
        });
        expect(refused.message).toContain(exceeding);
      }
    }
    const keys = await query(server, narrowed, `{ apiKeys { permissions } }`);
    expect(keys.apiKeys.map((key: { permissions: unknown }) => key.permissions)).not.toContainEqual({ demo: '*' });
  });
});

describe('keys created by an unrestricted ADMIN key', () => {
  it('may have any permissions, or none', async () => {
    const wide = await createApiKey(server.adminToken, { role: 'ADMIN', permissions: { demo: '*' } });
    expect(wide).toMatchObject({ __typename: 'CreateApiKeySuccess', apiKey: { permissions: { demo: '*' } } });
    const unrestricted = await createApiKey(server.adminToken, { role: 'ADMIN' });
    expect(unrestricted).toMatchObject({ __typename: 'CreateApiKeySuccess', apiKey: { permissions: null } });
    const sleep = await submit(server, unrestricted.token, { service: 'demo', action: 'sleep', params: { ms: 1 } });
    expect(sleep.__typename).toBe('SubmitTaskSuccess');
  });
});

describe('what a MEMBER key sees of API keys', () => {
  let member: string;
  let memberKeyId: string;
  let otherKeyId: string;
  let otherTaskId: string;

  beforeAll(async () => {
    member = await createKey(server, 'default');
    const other = await createKey(server, 'default');
    memberKeyId = (await query(server, member, `{ viewer { key { id } } }`)).viewer.key.id;
    otherKeyId = (await query(server, other, `{ viewer { key { id } } }`)).viewer.key.id;
    otherTaskId = (await submit(server, other, { service: 'demo', action: 'echo', params: { message: 'hi' } })).task.id;
  });

  const NODE_KEY = `
    query ($id: ID!) { node(id: $id) { id ... on ApiKey { name role permissions revoked dateCreated } } }`;

  it('node(id:) of another key is null, as for an id that does not exist', async () => {
    const response = await graphql(server, member, NODE_KEY, { id: otherKeyId });
    expect(response.body).toEqual({ data: { node: null } });
    const admin = await query(server, server.adminToken, NODE_KEY, { id: otherKeyId });
    expect(admin.node).toMatchObject({ id: otherKeyId, role: 'MEMBER', revoked: false });
  });

  it('shows its own key in full through node(id:) and viewer', async () => {
    const own = await query(server, member, NODE_KEY, { id: memberKeyId });
    expect(own.node).toEqual({
      id: memberKeyId,
      name: 'default-MEMBER',
      role: 'MEMBER',
      permissions: null,
      revoked: false,
      dateCreated: expect.any(String),
    });
    const viewer = await query(server, member, `{ viewer { key { id name role permissions revoked dateCreated } } }`);
    expect(viewer.viewer.key).toEqual(own.node);
  });

  it('Task.key of another key’s task gives id and name, and FORBIDDEN for the rest', async () => {
    const taskKey = (selection: string) =>
      graphql(server, member, `query ($id: ID!) { node(id: $id) { ... on Task { id key { ${selection} } } } }`, {
        id: otherTaskId,
      });

    const named = await taskKey('id name');
    expect(named.body).toEqual({
      data: { node: { id: otherTaskId, key: { id: otherKeyId, name: 'default-MEMBER' } } },
    });

    for (const field of ['role', 'permissions', 'revoked', 'dateCreated']) {
      const refused = await taskKey(`id name ${field}`);
      expect(refused.body.errors, field).toHaveLength(1);
      expect(refused.body.errors![0]).toMatchObject({
        extensions: { code: 'FORBIDDEN' },
        path: ['node', 'key', field],
      });
      // role, revoked and dateCreated are non-null in the contract: their error nulls the nearest nullable parent.
      const expected =
        field === 'permissions'
          ? { id: otherTaskId, key: { id: otherKeyId, name: 'default-MEMBER', permissions: null } }
          : null;
      expect(refused.body.data, field).toEqual({ node: expected });
    }

    const listed = await query(server, member, `{ tasks(first: 50) { edges { node { id key { id name } } } } }`);
    const entry = listed.tasks.edges.find((edge: { node: { id: string } }) => edge.node.id === otherTaskId);
    expect(entry.node.key).toEqual({ id: otherKeyId, name: 'default-MEMBER' });
  });

  it('an ADMIN key still reads every key of a task in full', async () => {
    const data = await query(
      server,
      server.adminToken,
      `query ($id: ID!) { node(id: $id) { ... on Task { key { id role permissions revoked } } } }`,
      { id: otherTaskId },
    );
    expect(data.node.key).toEqual({ id: otherKeyId, role: 'MEMBER', permissions: null, revoked: false });
  });
});

describe('revoking keys', () => {
  const REVOKE = `mutation ($id: ID!) { revokeApiKey(id: $id) { __typename ... on RevokeApiKeySuccess { apiKey { revoked } } } }`;
  const keyIdOf = async (token: string) => (await query(server, token, '{ viewer { key { id } } }')).viewer.key.id as string;

  it('a narrowed ADMIN key may not revoke a key that may do more than it, and may revoke one within it', async () => {
    const narrowed = await adminLimitedTo(ECHO_ONLY);
    const unrestricted = await createApiKey(server.adminToken, { role: 'ADMIN' });
    const refused = await graphql(server, narrowed, REVOKE, { id: unrestricted.apiKey.id });
    expect(refused.body.errors).toEqual([
      expect.objectContaining({
        message: 'This key may not revoke a key whose permissions go beyond its own.',
        extensions: { code: 'FORBIDDEN' },
      }),
    ]);
    expect((await query(server, unrestricted.token, '{ viewer { key { revoked } } }')).viewer.key.revoked).toBe(false);

    const within = await createApiKey(narrowed, { role: 'MEMBER' });
    const revoked = await query(server, narrowed, REVOKE, { id: within.apiKey.id });
    expect(revoked.revokeApiKey).toEqual({ __typename: 'RevokeApiKeySuccess', apiKey: { revoked: true } });
  });

  it('an unrestricted ADMIN key may revoke any key of its organisation', async () => {
    const narrowed = await adminLimitedTo(ECHO_ONLY);
    const revoked = await query(server, server.adminToken, REVOKE, { id: await keyIdOf(narrowed) });
    expect(revoked.revokeApiKey.apiKey.revoked).toBe(true);
  });
});
