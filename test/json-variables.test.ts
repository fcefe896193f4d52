import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  graphql,
  registerAccount,
  RETRIEVE,
  startServer,
  subscribeOverWebSocket,
  waitForTask,
  wsClient,
  type TestServer,
} from './helpers.js';

// Variables inside a JSON literal (`params: { message: $m }`) are read by the JSON scalar's
// parseLiteral; every document must get the answer graphql-js gives, on both transports.

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startServer();
  token = server.adminToken;
  await registerAccount(server, token, 'json-variables');
});

afterAll(async () => {
  await server.stop();
});

const RESULT = `
  __typename
  ... on SubmitTaskSuccess { task { id params } }
  ... on Error { code message }
  ... on ValidationError { field }
`;

const submitWith = (variables: string, input: string) =>
  `mutation ${variables} { submitTask(input: { ${input} }) { ${RESULT} } }`;

const ECHO = submitWith('($m: String)', 'service: "demo", action: "echo", params: { message: $m }');
const ECHO_WITH_DEFAULT = submitWith(
  '($m: String = "from the default")',
  'service: "demo", action: "echo", params: { message: $m }',
);
const FRAUD_SCORE = submitWith(
  '($d: Int)',
  'service: "demo", action: "fraud-score", params: { amount: 100, currency: "USD", country: "US", cardAgeDays: $d }',
);
const FETCH_DATA = submitWith(
  '($device: String, $kind: String)',
  'service: "demo", action: "fetch-data", account: "json-variables", params: { device: $device, data: [$kind, "calls"] }',
);

type Transport = 'HTTP' | 'graphql-ws';

async function submitTask(transport: Transport, text: string, variables?: Record<string, unknown>) {
  if (transport === 'HTTP') {
    const response = await graphql(server, token, text, variables);
    expect(response.body.errors, JSON.stringify(response.body.errors)).toBeUndefined();
    return response.body.data.submitTask;
  }
  const [result, ...rest] = await subscribeOverWebSocket(wsClient(server, token), text, variables);
  expect(rest).toEqual([]);
  expect(result?.errors, JSON.stringify(result?.errors)).toBeUndefined();
  return (result!.data as { submitTask: Record<string, any> }).submitTask;
}

describe.each<Transport>(['HTTP', 'graphql-ws'])('a variable inside a JSON literal over %s', (transport) => {
  it('reaches the params, and the echo task returns it', async () => {
    const submitted = await submitTask(transport, ECHO, { m: 'hello from a variable' });
    expect(submitted).toMatchObject({ __typename: 'SubmitTaskSuccess', task: { params: { message: 'hello from a variable' } } });
    expect((await waitForTask(server, token, submitted.task.id)).state).toBe('SUCCEEDED');
    const retrieved = await graphql(server, token, RETRIEVE, { id: submitted.task.id });
    expect(retrieved.body.data.retrieveResults.results.map((result: { data: unknown }) => result.data)).toEqual([
      { message: 'hello from a variable' },
    ]);
  });

  it('sits beside literal fields of the same object', async () => {
    const submitted = await submitTask(transport, FRAUD_SCORE, { d: 3 });
    expect(submitted.task.params).toEqual({ amount: 100, currency: 'USD', country: 'US', cardAgeDays: 3 });
  });

  it('sits inside a list inside the object', async () => {
    const submitted = await submitTask(transport, FETCH_DATA, { device: 'phone-1', kind: 'sms' });
    expect(submitted.task.params).toEqual({ device: 'phone-1', data: ['sms', 'calls'] });
  });

  it('takes its default when the client sends none', async () => {
    const submitted = await submitTask(transport, ECHO_WITH_DEFAULT);
    expect(submitted.task.params).toEqual({ message: 'from the default' });
  });

  it('is null when sent as null: an optional parameter is then absent, a required one missing', async () => {
    const optional = await submitTask(transport, FRAUD_SCORE, { d: null });
    expect(optional.task.params).toEqual({ amount: 100, currency: 'USD', country: 'US' });
    const required = await submitTask(transport, ECHO, { m: null });
    expect(required).toMatchObject({ __typename: 'ValidationError', code: 'MISSING_PARAM', field: 'message' });
  });

  it('is absent when omitted: an optional parameter is left out', async () => {
    const submitted = await submitTask(transport, FRAUD_SCORE, {});
    expect(submitted.task.params).toEqual({ amount: 100, currency: 'USD', country: 'US' });
  });

  it('is null inside a list when sent as null, which the parameter refuses', async () => {
    const submitted = await submitTask(transport, FETCH_DATA, { device: 'phone-1', kind: null });
    expect(submitted).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_PARAMETER_VALUE', field: 'data' });
  });
});
