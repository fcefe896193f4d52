import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { createKey, globalId, graphql, query, startServer, subscribeOverWebSocket, wsClient, type TestServer } from './helpers.js';

const VIEWER = '{ viewer { organisation key { id role } } }';

/** A POST with the Authorization header exactly as given. */
async function postWith(server: TestServer, authorization: string | null, text: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (authorization !== null) headers.authorization = authorization;
  const response = await fetch(server.url, { method: 'POST', headers, body: JSON.stringify({ query: text }) });
  return { status: response.status, body: (await response.json()) as { data?: any; errors?: any[] } };
}

function codes(body: { errors?: { extensions?: Record<string, unknown> }[] }): unknown[] {
  return (body.errors ?? []).map((error) => error.extensions?.code);
}

interface Outcome {
  results: FormattedExecutionResult<any, unknown>[];
  ended: 'complete' | 'error';
  error?: unknown;
}

/** Settles on complete and on error alike, so that a refused subscription can be inspected. */
function outcomeOf(client: Client, text: string, variables: Record<string, unknown> = {}): Promise<Outcome> {
  const results: FormattedExecutionResult<any, unknown>[] = [];
  return new Promise((resolve) => {
    client.subscribe(
      { query: text, variables },
      {
        next: (result) => results.push(result),
        error: (error) => resolve({ results, ended: 'error', error }),
        complete: () => resolve({ results, ended: 'complete' }),
      },
    );
  });
}

/** graphql-ws reports an operation refused in onSubscribe as an error carrying GraphQL errors. */
function expectRefusedWith(outcome: Outcome, code: string): void {
  expect(outcome.ended, JSON.stringify(outcome)).toBe('error');
  // Not a CloseEvent (4500 would be an internal server error): a list of GraphQL errors.
  expect(Array.isArray(outcome.error), `got ${JSON.stringify(outcome.error)} (close code ${(outcome.error as { code?: number })?.code})`).toBe(true);
  expect((outcome.error as { extensions?: { code?: string } }[]).map((error) => error.extensions?.code)).toEqual([code]);
  expect(outcome.results).toEqual([]);
}

/** graphql-ws refuses a connection_init without a valid key: the socket closes with 4403 and the reason. */
function expectForbiddenAtConnect(outcome: Outcome, reason: RegExp): void {
  expect(outcome.ended, JSON.stringify(outcome)).toBe('error');
  expect(outcome.error).toMatchObject({ code: 4403, reason: expect.stringMatching(reason) });
  expect(outcome.results).toEqual([]);
}

async function createMemberKey(server: TestServer, admin: string, name = 'member'): Promise<{ token: string; id: string }> {
  const data = await query(
    server,
    admin,
    `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) {
      __typename ... on CreateApiKeySuccess { token apiKey { id name role revoked } } } }`,
    { input: { name, role: 'MEMBER' } },
  );
  expect(data.createApiKey.__typename).toBe('CreateApiKeySuccess');
  return { token: data.createApiKey.token, id: data.createApiKey.apiKey.id };
}

describe('authentication and roles', () => {
  let server: TestServer;
  let admin: string;

  beforeAll(async () => {
    server = await startServer();
    admin = server.adminToken;
  });

  afterAll(async () => {
    await server.stop();
  });

  test('a request without an Authorization header gets HTTP 401 and UNAUTHENTICATED', async () => {
    const response = await graphql(server, null, VIEWER);
    expect(response.status).toBe(401);
    expect(codes(response.body)).toEqual(['UNAUTHENTICATED']);
    expect(response.body.data ?? null).toBeNull();
  });

  test('an unknown token gets HTTP 401 and UNAUTHENTICATED', async () => {
    const response = await graphql(server, 'tp_not_a_real_key_0000000000', VIEWER);
    expect(response.status).toBe(401);
    expect(codes(response.body)).toEqual(['UNAUTHENTICATED']);
  });

  test('malformed Authorization headers get HTTP 401 and UNAUTHENTICATED', async () => {
    for (const header of [admin, `Basic ${admin}`, 'Bearer', 'Bearer ', `Bearer ${admin} extra`]) {
      const response = await postWith(server, header, VIEWER);
      expect(response.status, header).toBe(401);
      expect(codes(response.body), header).toEqual(['UNAUTHENTICATED']);
    }
  });

  test('a mutation without a key is refused before it runs', async () => {
    const response = await postWith(server, null, 'mutation { setRetrievalProtocol(protocol: CHANNEL) { organisation } }');
    expect(response.status).toBe(401);
    expect(codes(response.body)).toEqual(['UNAUTHENTICATED']);
    expect((await query(server, admin, '{ viewer { retrievalProtocol } }')).viewer.retrievalProtocol).toBe('STORE');
  });

  test('the "Bearer" and "Token" forms are accepted, with the scheme in any case', async () => {
    for (const header of [`Bearer ${admin}`, `Token ${admin}`, `bearer ${admin}`, `TOKEN ${admin}`, `  Bearer   ${admin}  `]) {
      const response = await postWith(server, header, VIEWER);
      expect(response.status, header).toBe(200);
      expect(response.body.errors, header).toBeUndefined();
      expect(response.body.data.viewer).toMatchObject({ organisation: 'default', key: { role: 'ADMIN' } });
    }
  });

  test('introspection runs without a key, but not when it is mixed with data', async () => {
    const introspection = await graphql(server, null, '{ __schema { queryType { name } } }');
    expect(introspection.status).toBe(200);
    expect(introspection.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });

    const typename = await graphql(server, null, '{ __typename }');
    expect(typename.body).toEqual({ data: { __typename: 'Query' } });

    const mixed = await graphql(server, null, '{ __typename viewer { organisation } }');
    expect(mixed.status).toBe(401);
    expect(codes(mixed.body)).toEqual(['UNAUTHENTICATED']);

    const throughFragment = await graphql(server, null, 'query { ...F } fragment F on Query { viewer { organisation } }');
    expect(throughFragment.status).toBe(401);
    expect(codes(throughFragment.body)).toEqual(['UNAUTHENTICATED']);
  });

  test('a revoked key gets 401 UNAUTHENTICATED at once, over HTTP and graphql-ws', async () => {
    const member = await createMemberKey(server, admin, 'to revoke');
    expect((await query(server, member.token, VIEWER)).viewer.key).toEqual({ id: member.id, role: 'MEMBER' });

    const revoked = await query(
      server,
      admin,
      `mutation ($id: ID!) { revokeApiKey(id: $id) { __typename ... on RevokeApiKeySuccess { apiKey { id revoked } } } }`,
      { id: member.id },
    );
    expect(revoked.revokeApiKey).toEqual({ __typename: 'RevokeApiKeySuccess', apiKey: { id: member.id, revoked: true } });

    const response = await graphql(server, member.token, VIEWER);
    expect(response.status).toBe(401);
    expect(codes(response.body)).toEqual(['UNAUTHENTICATED']);
    expectForbiddenAtConnect(await outcomeOf(wsClient(server, member.token), VIEWER), /unknown or revoked/);

    const keys = await query(server, admin, '{ apiKeys { id revoked } }');
    expect(keys.apiKeys).toContainEqual({ id: member.id, revoked: true });
  });

  test('on an open graphql-ws connection, the operations after a revocation are refused', async () => {
    const member = await createMemberKey(server, admin, 'revoked while connected');
    // Not lazy: the socket stays open between operations, as the key was checked on it once.
    const client = createClient({
      url: server.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${member.token}` },
      retryAttempts: 0,
      lazy: false,
    });
    try {
      const before = await subscribeOverWebSocket(client, VIEWER);
      expect(before).toEqual([{ data: { viewer: { organisation: 'default', key: { id: member.id, role: 'MEMBER' } } } }]);
      await query(server, admin, 'mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: member.id });
      expectRefusedWith(await outcomeOf(client, VIEWER), 'UNAUTHENTICATED');
    } finally {
      await client.dispose();
    }
  });

  test('graphql-ws without authorization in connection_init: the socket closes with 4403, saying what to send', async () => {
    const subscription = 'subscription { taskEvents { kind } }';
    expectForbiddenAtConnect(await outcomeOf(wsClient(server, null), subscription), /API key is required/);
    expectForbiddenAtConnect(await outcomeOf(wsClient(server, null), VIEWER), /API key is required/);
  });

  test('graphql-ws with an unknown token: the socket closes with 4403', async () => {
    expectForbiddenAtConnect(
      await outcomeOf(wsClient(server, 'tp_not_a_real_key_0000000000'), 'subscription { taskEvents { kind } }'),
      /unknown or revoked/,
    );
  });

  test('graphql-ws accepts the key of connection_init; introspection needs a key there, unlike over HTTP', async () => {
    const results = await subscribeOverWebSocket(wsClient(server, admin), VIEWER);
    expect(results).toHaveLength(1);
    expect(results[0]!.data).toMatchObject({ viewer: { organisation: 'default', key: { role: 'ADMIN' } } });

    const introspection = '{ __schema { queryType { name } } }';
    expectForbiddenAtConnect(await outcomeOf(wsClient(server, null), introspection), /API key is required/);
    expect(await subscribeOverWebSocket(wsClient(server, admin), introspection)).toEqual([
      { data: { __schema: { queryType: { name: 'Query' } } } },
    ]);
    expect((await graphql(server, null, introspection)).body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
  });

  test('a MEMBER key gets FORBIDDEN on the ADMIN operations, which then have no effect', async () => {
    const member = await createMemberKey(server, admin, 'plain member');
    const { id: adminKeyId } = (await query(server, admin, VIEWER)).viewer.key;
    const operations: [string, Record<string, unknown>?][] = [
      ['{ apiKeys { id } }'],
      ['mutation { createApiKey(input: { name: "sneaky", role: ADMIN }) { __typename } }'],
      ['mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: adminKeyId }],
      ['mutation { setRetrievalProtocol(protocol: CHANNEL) { organisation } }'],
    ];
    for (const [text, variables] of operations) {
      const response = await graphql(server, member.token, text, variables);
      expect(codes(response.body), text).toEqual(['FORBIDDEN']);
      expect(response.body.data ?? null, text).toBeNull();
    }

    // The admin key still works, no key named "sneaky" exists and the protocol is unchanged.
    const state = await query(server, admin, '{ viewer { retrievalProtocol } apiKeys { name } }');
    expect(state.viewer.retrievalProtocol).toBe('STORE');
    expect(state.apiKeys.map((key: { name: string }) => key.name)).not.toContain('sneaky');

    // A MEMBER may still do ordinary work.
    expect((await query(server, member.token, VIEWER)).viewer.key.role).toBe('MEMBER');
  });

  test('an ADMIN creates a MEMBER key whose token works at once', async () => {
    const data = await query(
      server,
      admin,
      `mutation { createApiKey(input: { name: "ci runner", role: MEMBER }) {
        __typename ... on CreateApiKeySuccess { token apiKey { id name role revoked dateCreated } } } }`,
    );
    const { token, apiKey } = data.createApiKey;
    expect(apiKey).toMatchObject({ name: 'ci runner', role: 'MEMBER', revoked: false });
    expect(typeof token).toBe('string');
    expect(token.length).toBeGreaterThanOrEqual(16);
    expect(Number.isNaN(Date.parse(apiKey.dateCreated))).toBe(false);

    const viewer = (await query(server, token, VIEWER)).viewer;
    expect(viewer).toEqual({ organisation: 'default', key: { id: apiKey.id, role: 'MEMBER' } });
    // The token is not stored as given: two keys never share one.
    const another = await createMemberKey(server, admin, 'ci runner 2');
    expect(another.token).not.toBe(token);
  });

  test('createApiKey with an empty or blank name is a ValidationError INVALID', async () => {
    for (const name of ['', '   ', 'x'.repeat(201)]) {
      const data = await query(
        server,
        admin,
        `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) {
          __typename ... on ValidationError { code field message } } }`,
        { input: { name, role: 'MEMBER' } },
      );
      expect(data.createApiKey, JSON.stringify(name)).toMatchObject({ __typename: 'ValidationError', code: 'INVALID', field: 'name' });
      expect(data.createApiKey.message.length).toBeGreaterThan(0);
    }
    const keys = await query(server, admin, '{ apiKeys { name } }');
    expect(keys.apiKeys.some((key: { name: string }) => key.name.trim() === '' || key.name.length > 200)).toBe(false);
  });

  test('apiKeys lists the organisation keys, and the ApiKey type exposes no token or hash', async () => {
    const created = await createMemberKey(server, admin, 'listed');
    const { id: adminKeyId } = (await query(server, admin, VIEWER)).viewer.key;
    const keys = (await query(server, admin, '{ apiKeys { id name role revoked } }')).apiKeys as { id: string }[];
    expect(keys).toContainEqual({ id: created.id, name: 'listed', role: 'MEMBER', revoked: false });
    expect(keys).toContainEqual(expect.objectContaining({ id: adminKeyId, role: 'ADMIN' }));
    expect(new Set(keys.map((key) => key.id)).size).toBe(keys.length);

    const type = await query(server, admin, '{ __type(name: "ApiKey") { fields { name } } }');
    const fields = (type.__type.fields as { name: string }[]).map((field) => field.name.toLowerCase());
    expect(fields).toContain('name');
    expect(fields.filter((field) => field.includes('token') || field.includes('hash'))).toEqual([]);
  });

  test('revokeApiKey of an unknown or malformed id is a NotFoundError', async () => {
    for (const id of [globalId('ApiKey', 987_654), 'garbage', globalId('Task', 1)]) {
      const data = await query(
        server,
        admin,
        `mutation ($id: ID!) { revokeApiKey(id: $id) { __typename ... on Error { code } } }`,
        { id },
      );
      expect(data.revokeApiKey, id).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    }
  });

  test('a GET whose variables or extensions are not JSON is a 400 with a message, not a 500', async () => {
    for (const parameter of ['variables', 'extensions']) {
      const url = new URL(server.url);
      url.searchParams.set('query', '{ __typename }');
      url.searchParams.set(parameter, 'notjson');
      const response = await fetch(url, { headers: { authorization: `Bearer ${admin}`, accept: 'application/json' } });
      expect(response.status, parameter).toBe(400);
      const body = (await response.json()) as { errors: { message: string }[] };
      expect(body.errors.length).toBeGreaterThan(0);
      expect(body.errors[0]!.message, parameter).not.toBe('Unexpected error.');
      expect(body.errors[0]!.message.length).toBeGreaterThan(0);
    }
  });

  test('a GET with valid query parameters works', async () => {
    const url = new URL(server.url);
    url.searchParams.set('query', 'query ($n: Int) { tasks(first: $n) { edges { cursor } } }');
    url.searchParams.set('variables', JSON.stringify({ n: 1 }));
    const response = await fetch(url, { headers: { authorization: `Bearer ${admin}`, accept: 'application/json' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { tasks: { edges: [] } } });
  });

  test('a POST whose body is not JSON is a 400 with a message, not a 500', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: '{ this is not json',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message.length).toBeGreaterThan(0);
  });

  test('GET /healthz answers 200 without a key', async () => {
    const response = await fetch(new URL('/healthz', server.url));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  test('keys of another role or organisation made by the CLI path authenticate as such', async () => {
    const other = await createKey(server, 'elsewhere', 'ADMIN');
    const viewer = (await query(server, other, VIEWER)).viewer;
    expect(viewer).toMatchObject({ organisation: 'elsewhere', key: { role: 'ADMIN' } });
  });
});
