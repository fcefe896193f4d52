import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LIMITS } from '../src/catalog/index.js';
import { query, startServer, type TestServer } from './helpers.js';
import { misbehavingCatalog } from './misbehaving.js';

// The real-time twin of handlers.test.ts: whatever a handler does in a call, that call fails with
// a clear code and the server answers the next one.

const CREATE_ALLOCATION = `
  mutation ($input: CreateAllocationInput!) {
    createAllocation(input: $input) { __typename ... on CreateAllocationSuccess { allocation { id } } ... on Error { code message } }
  }`;

const GENERATE_URL = `
  mutation ($allocationId: ID!) {
    generateExecutionUrl(allocationId: $allocationId) { ... on GenerateExecutionUrlSuccess { executionUrl { url token } } }
  }`;

let server: TestServer;
const urls = new Map<string, { url: string; token: string }>();

beforeAll(async () => {
  server = await startServer({}, { catalog: misbehavingCatalog() });
});

afterAll(() => server.stop());

/** An execution URL of `service.action`, made once per action. */
async function executionUrl(service: string, action: string): Promise<{ url: string; token: string }> {
  const key = `${service}.${action}`;
  const known = urls.get(key);
  if (known) return known;
  const created = await query(server, server.adminToken, CREATE_ALLOCATION, {
    input: { name: key, service, action, instances: 1, timeoutMs: 300 },
  });
  expect(created.createAllocation.__typename, JSON.stringify(created)).toBe('CreateAllocationSuccess');
  const generated = await query(server, server.adminToken, GENERATE_URL, {
    allocationId: created.createAllocation.allocation.id,
  });
  const url = generated.generateExecutionUrl.executionUrl as { url: string; token: string };
  urls.set(key, url);
  return url;
}

async function call(service: string, action: string, params: Record<string, unknown>) {
  const { url, token } = await executionUrl(service, action);
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** The server still runs calls: the misbehaving one failed alone. */
async function expectServing(): Promise<void> {
  const echo = await call('demo', 'echo', { message: 'still here' });
  expect(echo).toMatchObject({ status: 200, body: { state: 'SUCCEEDED', results: [{ data: { message: 'still here' } }] } });
}

describe('a real-time call whose handler misbehaves', () => {
  const failures: Array<[string, string, Record<string, unknown>, number, string, string | RegExp]> = [
    ['returns more than one result may hold', 'return-large', { bytes: LIMITS.resultBytes + 10 }, 422, 'RESULT_TOO_LARGE', /one result may have at most/],
    ['publishes more results than a task may have', 'publish', { count: LIMITS.taskResults + 1, bytes: 1 }, 422, 'TOO_MANY_RESULTS', /at most 1000 results/],
    ['returns a BigInt', 'return', { kind: 'bigint' }, 422, 'RESULT_NOT_SERIALISABLE', /cannot be written as JSON/],
    ['returns a cycle', 'return', { kind: 'cycle' }, 422, 'RESULT_NOT_SERIALISABLE', /cannot be written as JSON/],
    ['returns a function', 'return', { kind: 'function' }, 422, 'RESULT_NOT_SERIALISABLE', /which JSON cannot hold/],
    ['publishes a revoked proxy', 'return', { kind: 'revoked-proxy' }, 422, 'RESULT_NOT_SERIALISABLE', /cannot be written as JSON/],
    ['throws a string', 'throw', { kind: 'string' }, 422, 'HANDLER_ERROR', 'The handler threw a string, not an Error: a plain string'],
    ['throws undefined', 'throw', { kind: 'undefined' }, 422, 'HANDLER_ERROR', 'The handler threw undefined, not an Error'],
    ['throws synchronously', 'throw-sync', {}, 422, 'HANDLER_ERROR', 'The handler threw a string, not an Error: thrown synchronously'],
    ['publishes with a name that is no string', 'bad-publish', { kind: 'name' }, 422, 'INVALID_RESULT', /needs a name/],
    ['never settles', 'hang', {}, 504, 'TIMEOUT', /ran past the allocation's limit of 300 ms/],
  ];
  test.each(failures)('%s: the call fails with its code and the server serves on', async (_name, action, params, status, code, message) => {
    const answer = await call('misbehave', action, params);
    expect(answer.status, JSON.stringify(answer.body).slice(0, 500)).toBe(status);
    expect(answer.body.state).toBe('FAILED');
    expect(answer.body.error.code).toBe(code);
    if (typeof message === 'string') expect(answer.body.error.message).toBe(message);
    else expect(answer.body.error.message).toMatch(message);
    await expectServing();
  });

  test('logging a megabyte per line keeps each line within its limit', async () => {
    const answer = await call('misbehave', 'log', { kind: 'huge-line' });
    expect(answer.status).toBe(200);
    const [line] = answer.body.logs as Array<{ message: string }>;
    expect(Buffer.byteLength(line!.message)).toBeLessThanOrEqual(LIMITS.logLineBytes);
    expect(line!.message).toMatch(/bytes cut: a log line holds at most/);
  });

  test('a flood of log lines stops at the limit of one run, with one note saying so', async () => {
    const answer = await call('misbehave', 'log', { kind: 'flood' });
    expect(answer.status).toBe(200);
    const logs = answer.body.logs as Array<{ level: string; message: string }>;
    const bytes = logs.reduce((sum, log) => sum + Buffer.byteLength(log.message), 0);
    expect(bytes).toBeLessThanOrEqual(LIMITS.attemptLogBytes + 1024);
    expect(logs.at(-1)).toMatchObject({ level: 'WARN', message: expect.stringContaining('are dropped') });
    await expectServing();
  });

  test('garbage levels and messages are logged as text', async () => {
    const answer = await call('misbehave', 'log', { kind: 'garbage' });
    expect(answer.status).toBe(200);
    const logs = answer.body.logs as Array<{ level: string; message: string }>;
    expect(logs[0]).toEqual(expect.objectContaining({ level: 'INFO', message: 'an unknown level' }));
    expect(logs.every((log) => typeof log.message === 'string')).toBe(true);
  });
});
