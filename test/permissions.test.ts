import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query, registerAccount, startServer, submit, type TestServer } from './helpers.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
  await registerAccount(server, server.adminToken, 'alice');
});

afterAll(async () => {
  await server.stop();
});

const CREATE_KEY = `
  mutation ($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      __typename
      ... on CreateApiKeySuccess { token apiKey { permissions } }
      ... on ValidationError { code field message }
    }
  }`;

async function keyWith(permissions: unknown): Promise<string> {
  const data = await query(server, server.adminToken, CREATE_KEY, {
    input: { name: 'narrow', role: 'MEMBER', permissions },
  });
  expect(data.createApiKey.__typename).toBe('CreateApiKeySuccess');
  expect(data.createApiKey.apiKey.permissions).toEqual(permissions);
  return data.createApiKey.token;
}

const CATALOG = `{ services { slug actions { slug permissions } } }`;

describe('per-key permissions', () => {
  it('shows a narrowed key only the actions and values it may use', async () => {
    const token = await keyWith({ demo: { echo: {}, 'fetch-data': { data: ['sms'] } } });
    const data = await query(server, token, CATALOG);
    expect(data.services).toEqual([
      {
        slug: 'demo',
        actions: [
          { slug: 'echo', permissions: {} },
          { slug: 'fetch-data', permissions: { data: ['sms'] } },
        ],
      },
    ]);
    const viewer = await query(server, token, `{ viewer { key { permissions } } }`);
    expect(viewer.viewer.key.permissions).toEqual({ demo: { echo: {}, 'fetch-data': { data: ['sms'] } } });
  });

  it('refuses what a narrowed key may not run, with the same codes as unknown names', async () => {
    const token = await keyWith({ demo: { 'fetch-data': { data: ['sms'] } } });
    const sleep = await submit(server, token, { service: 'demo', action: 'sleep', params: { ms: 1 } });
    expect(sleep).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_ACTION', field: 'action' });

    const calls = await submit(server, token, {
      service: 'demo',
      action: 'fetch-data',
      account: 'alice',
      params: { device: 'phone', data: ['sms', 'calls'] },
    });
    expect(calls).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_PARAMETER_VALUE', field: 'data' });

    const sms = await submit(server, token, {
      service: 'demo',
      action: 'fetch-data',
      account: 'alice',
      params: { device: 'phone', data: ['sms'] },
    });
    expect(sms.__typename).toBe('SubmitTaskSuccess');
  });

  it('lets "*" use every action of a service and nothing of the others', async () => {
    const token = await keyWith({ demo: '*' });
    const data = await query(server, token, CATALOG);
    expect(data.services[0].actions.map((action: { slug: string }) => action.slug)).toEqual([
      'echo',
      'sleep',
      'fail',
      'fraud-score',
      'fetch-data',
    ]);
    expect(data.services[0].actions[4].permissions).toEqual({ data: ['sms', 'calls', 'contacts', 'photos'] });

    const none = await keyWith({});
    expect((await query(server, none, CATALOG)).services).toEqual([]);
    const refused = await submit(server, none, { service: 'demo', action: 'echo', params: { message: 'hi' } });
    expect(refused).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_SERVICE', field: 'service' });
  });

  it('gives a key without permissions the whole catalog', async () => {
    const data = await query(server, server.adminToken, `{ viewer { key { permissions } } services { actions { slug } } }`);
    expect(data.viewer.key.permissions).toBeNull();
    expect(data.services[0].actions).toHaveLength(5);
  });

  it('refuses permissions that name what the catalog does not have', async () => {
    for (const permissions of [
      { nowhere: '*' },
      { demo: { teleport: {} } },
      { demo: { 'fetch-data': { data: ['sms', 'dreams'] } } },
      { demo: { echo: { message: ['hi'] } } },
      ['demo'],
      { demo: 'everything' },
    ]) {
      const data = await query(server, server.adminToken, CREATE_KEY, {
        input: { name: 'bad', role: 'MEMBER', permissions },
      });
      expect(data.createApiKey, JSON.stringify(permissions)).toMatchObject({
        __typename: 'ValidationError',
        code: 'INVALID',
        field: 'permissions',
      });
    }
  });
});
