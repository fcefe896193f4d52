import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, startServer, type TestServer } from './helpers.js';

// What a new user trips on in the first minutes: answers that say what to change.
let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

async function post(headers: Record<string, string>, body: string) {
  const response = await fetch(server.url, { method: 'POST', headers, body });
  return { status: response.status, text: await response.text() };
}

describe('a key sent the wrong way', () => {
  const viewer = JSON.stringify({ query: '{ viewer { organisation } }' });
  const messageFor = async (authorization: string) => {
    const answer = await post({ 'content-type': 'application/json', authorization }, viewer);
    expect(answer.status).toBe(401);
    return (JSON.parse(answer.text) as { errors: Array<{ message: string; extensions: { code: string } }> }).errors[0]!;
  };

  it('names the missing scheme when the token is sent alone', async () => {
    const error = await messageFor(server.adminToken);
    expect(error).toEqual({
      message: 'The API key needs its scheme in front: send "Authorization: Bearer <token>"',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it('names a scheme it does not accept', async () => {
    const error = await messageFor(`Basic ${server.adminToken}`);
    expect(error.message).toBe('The scheme "Basic" is not accepted: send "Authorization: Bearer <token>" (or "Token <token>")');
  });

  it('accepts the Token scheme the README documents', async () => {
    const answer = await post({ 'content-type': 'application/json', authorization: `Token ${server.adminToken}` }, viewer);
    expect(JSON.parse(answer.text)).toEqual({ data: { viewer: { organisation: 'default' } } });
  });
});

describe('a POST body of a type the API does not read', () => {
  it('is a 415 whose JSON body says what to send', async () => {
    const answer = await post(
      { 'content-type': 'text/plain', authorization: `Bearer ${server.adminToken}` },
      '{ viewer { organisation } }',
    );
    expect(answer.status).toBe(415);
    expect(JSON.parse(answer.text)).toEqual({
      errors: [
        {
          message: 'Content-Type text/plain is not supported: send the operation as application/json',
          extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' },
        },
      ],
    });
  });
});

describe('not-found messages', () => {
  // Global ids that decode to row numbers no row has: clients know the global id, never the number.
  const unknown = (typename: string) => encodeGlobalID(typename, 999_999);
  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    [
      'cancelTask',
      'mutation ($id: ID!) { result: cancelTask(id: $id) { ... on Error { code message } } }',
      { id: unknown('Task') },
      `no task ${unknown('Task')}`,
    ],
    [
      'submitTask with dependsOn',
      `mutation ($id: ID!) { result: submitTask(input: { service: "demo", action: "echo", params: { message: "x" }, dependsOn: [$id] }) {
        ... on Error { code message } } }`,
      { id: unknown('Task') },
      `dependsOn: no task ${unknown('Task')}`,
    ],
    [
      'revokeApiKey',
      'mutation ($id: ID!) { result: revokeApiKey(id: $id) { ... on Error { code message } } }',
      { id: unknown('ApiKey') },
      `no API key ${unknown('ApiKey')}`,
    ],
    [
      'deleteAllocation',
      'mutation ($id: ID!) { result: deleteAllocation(id: $id) { ... on Error { code message } } }',
      { id: unknown('Allocation') },
      `no allocation ${unknown('Allocation')}`,
    ],
  ];
  it.each(cases)('%s names the global id the client sent', async (_name, text, variables, message) => {
    const answer = await graphql(server, server.adminToken, text, variables);
    expect(answer.body).toEqual({ data: { result: { code: 'NOT_FOUND', message } } });
  });
});

describe('an input variable of the wrong type', () => {
  it('is named as the client sent it, $input, with the path to the field at fault', async () => {
    const answer = await graphql(
      server,
      server.adminToken,
      'mutation ($input: SubmitTaskInput!) { submitTask(input: $input) { __typename } }',
      { input: { service: 'demo', action: 'sleep', params: { ms: 10 }, priority: 'high' } },
    );
    expect(answer.body.errors).toEqual([
      expect.objectContaining({
        message: 'Variable "$input" got invalid value "high" at "input.priority"; Int cannot represent non-integer value: "high"',
      }),
    ]);
  });
});
