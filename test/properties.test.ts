import { connect } from 'node:net';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { query, startServer, type TestServer } from './helpers.js';

// Random input at every door of a real server: each answer is a typed error or a success, never
// a 5xx; the process serves on (an unhandled rejection would fail the run); and every submission
// that was answered with success can be read back afterwards.

const RUNS = 40;

let server: TestServer;
let origin: string;
let executeUrl: string;
let executeToken: string;
/** Ids of the tasks whose submission was answered with success. */
const accepted: string[] = [];
/** What the server logged at warn or above: a client's bad input is no fault of the server's. */
const serverFaults: Record<string, unknown>[] = [];

beforeAll(async () => {
  const faults = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) serverFaults.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  server = await startServer({}, { logger: pino({ level: 'warn' }, faults) });
  origin = new URL(server.url).origin;
  const created = await query(
    server,
    server.adminToken,
    `mutation { createAllocation(input: { name: "fuzz", service: "demo", action: "echo", instances: 2 }) {
      __typename ... on CreateAllocationSuccess { allocation { id } } } }`,
  );
  const generated = await query(
    server,
    server.adminToken,
    `mutation ($id: ID!) { generateExecutionUrl(allocationId: $id) { ... on GenerateExecutionUrlSuccess { executionUrl { url token } } } }`,
    { id: created.createAllocation.allocation.id },
  );
  executeUrl = generated.generateExecutionUrl.executionUrl.url;
  executeToken = generated.generateExecutionUrl.executionUrl.token;
});

afterAll(async () => {
  await server?.stop();
});

interface Answer {
  status: number;
  text: string;
  json: any;
}

async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}`, ...headers },
    body: typeof body === 'string' ? body : new Blob([new Uint8Array(body)]),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Some answers (yoga's to a body that is not JSON, say) may not be JSON; the status says enough.
  }
  return { status: response.status, text, json };
}

function graphqlPost(queryText: string, variables: unknown): Promise<Answer> {
  return post(server.url, JSON.stringify({ query: queryText, variables }));
}

/**
 * A GraphQL answer: no 5xx, no masked unexpected error (a bug), and every error of execution
 * carries a code. graphql-js's own request errors (a variable that does not coerce, a document
 * that does not validate) come before execution, as the spec has them, with a message and no code.
 */
function expectTypedAnswer(answer: Answer): void {
  expect(answer.status, answer.text).toBeLessThan(500);
  const errors = (answer.json?.errors ?? []) as { message: string; path?: unknown[]; extensions?: { code?: string } }[];
  for (const error of errors) {
    expect(error.message, answer.text).not.toBe('Unexpected error.');
    expect(error.extensions?.code ?? null, answer.text).not.toBe('INTERNAL_SERVER_ERROR');
    if (error.path) expect(error.extensions?.code, answer.text).toEqual(expect.any(String));
  }
}

const anyJson = fc.jsonValue({ maxDepth: 4 });
/** Strings as a fuzzer would send them: any code points, some of them close to what is expected. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('', '0', '-1', 'VGFzazox', 'VGFzazotMQ==', 'Task:1', 'null', '1e309', '2026-13-45T99:99:99Z', '\u0000', 'PENDING'),
  fc.base64String({ maxLength: 40 }),
);

const SUBMIT = `mutation ($params: JSON) {
  submitTask(input: { service: "demo", action: "echo", params: $params }) {
    __typename ... on SubmitTaskSuccess { task { id } } ... on Error { code }
  }
}`;

describe('GraphQL arguments', () => {
  it('answers random JSON in params with a success or a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyJson, fc.record({ message: anyJson })), async (params) => {
        const answer = await graphqlPost(SUBMIT, { params });
        expectTypedAnswer(answer);
        const result = answer.json?.data?.submitTask;
        if (result) {
          expect(['SubmitTaskSuccess', 'ValidationError', 'LimitExceededError', 'NotFoundError']).toContain(result.__typename);
          if (result.__typename === 'SubmitTaskSuccess') accepted.push(result.task.id);
        }
      }),
      { numRuns: RUNS },
    );
  });

  // Each operation takes its variables as JSON, so that any value reaches the coercion of any argument.
  const OPERATIONS: { name: string; text: string }[] = [
    { name: 'task(id)', text: 'query ($v: ID!) { task(id: $v) { id state } }' },
    { name: 'node(id)', text: 'query ($v: ID!) { node(id: $v) { id } }' },
    { name: 'taskStatuses(ids)', text: 'query ($v: [ID!]!) { taskStatuses(ids: $v) { id found state } }' },
    { name: 'cancelTask(id)', text: 'mutation ($v: ID!) { cancelTask(id: $v) { __typename } }' },
    { name: 'tasks(after)', text: 'query ($v: String) { tasks(first: 2, after: $v) { edges { cursor } } }' },
    { name: 'tasks(first)', text: 'query ($v: Int) { tasks(first: $v) { edges { cursor } } }' },
    { name: 'tasks(filter.state)', text: 'query ($v: TaskState) { tasks(first: 2, filter: { state: $v }) { edges { cursor } } }' },
    { name: 'tasks(filter)', text: 'query ($v: TaskFilter) { tasks(first: 2, filter: $v) { edges { cursor } } }' },
    { name: 'accounts(after)', text: 'query ($v: String) { accounts(first: 2, after: $v) { edges { cursor } } }' },
    {
      name: 'submitTask(runAt)',
      text: `mutation ($v: DateTime) { submitTask(input: { service: "demo", action: "echo", params: { message: "x" }, runAt: $v }) {
        __typename ... on SubmitTaskSuccess { task { id } } } }`,
    },
    {
      name: 'submitTask(dependsOn)',
      text: `mutation ($v: [ID!]) { submitTask(input: { service: "demo", action: "echo", params: { message: "x" }, dependsOn: $v }) {
        __typename ... on SubmitTaskSuccess { task { id } } } }`,
    },
    {
      name: 'submitTask(priority, maxAttempts)',
      text: `mutation ($v: Int) { submitTask(input: { service: "demo", action: "echo", params: { message: "x" }, priority: $v, maxAttempts: $v }) {
        __typename ... on SubmitTaskSuccess { task { id } } } }`,
    },
    {
      name: 'submitTask(input)',
      text: `mutation ($v: SubmitTaskInput!) { submitTask(input: $v) { __typename ... on SubmitTaskSuccess { task { id } } } }`,
    },
    { name: 'setRetrievalProtocol', text: 'mutation ($v: RetrievalProtocol!) { setRetrievalProtocol(protocol: $v) { __typename } }' },
    { name: 'task.logs(after, minLevel)', text: 'query ($v: String) { tasks(first: 1) { edges { node { logs(after: $v, first: 2) { edges { cursor } } } } } }' },
    { name: 'logs(minLevel)', text: 'query ($v: LogLevel) { tasks(first: 1) { edges { node { logs(minLevel: $v) { edges { cursor } } } } } }' },
    { name: 'retrieveResults(taskId, retrievalKey)', text: 'mutation ($v: ID!) { retrieveResults(taskId: $v, retrievalKey: $v) { __typename } }' },
    { name: 'retryTask(id)', text: 'mutation ($v: ID!) { retryTask(id: $v) { __typename } }' },
    { name: 'cancelTasks(filter, limit)', text: 'mutation ($v: TaskFilter!, $n: Int) { cancelTasks(filter: $v, limit: $n) { __typename } }' },
    { name: 'generateExecutionUrl(allocationId, ttlSeconds)', text: 'mutation ($v: ID!) { generateExecutionUrl(allocationId: $v, ttlSeconds: 60) { __typename } }' },
    {
      name: 'createApiKey(input)',
      text: `mutation ($v: CreateApiKeyInput!) { createApiKey(input: $v) { __typename } }`,
    },
    { name: 'registerAccount(input)', text: 'mutation ($v: AccountInput!) { registerAccount(input: $v) { __typename } }' },
  ];

  it.each(OPERATIONS)('answers random values at $name with a success or a typed error', async ({ text }) => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyString, anyJson, fc.array(anyString, { maxLength: 5 }), fc.integer(), fc.double()), async (value) => {
        const answer = await graphqlPost(text, { v: value, n: value });
        expectTypedAnswer(answer);
        const submitted = answer.json?.data?.submitTask;
        if (submitted?.__typename === 'SubmitTaskSuccess') accepted.push(submitted.task.id);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });
});

describe('request bodies', () => {
  const validBody = JSON.stringify({ query: SUBMIT, variables: { params: { message: 'truncated' } } });

  it('answers random bytes and truncated bodies at /graphql without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.nat({ max: validBody.length }).map((length) => validBody.slice(0, length)),
          fc.string({ unit: 'binary', maxLength: 200 }),
        ),
        fc.constantFrom('application/json', 'application/graphql+json', 'application/x-www-form-urlencoded', 'text/plain'),
        async (body, contentType) => {
          const answer = await post(server.url, body, { 'content-type': contentType });
          expect(answer.status, answer.text).toBeLessThan(500);
          const submitted = answer.json?.data?.submitTask;
          if (submitted?.__typename === 'SubmitTaskSuccess') accepted.push(submitted.task.id);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('answers random bytes, truncated bodies and random paths at the execution route without a 5xx', async () => {
    const validCall = JSON.stringify({ message: 'hello' });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.nat({ max: validCall.length }).map((length) => validCall.slice(0, length)),
          anyJson.map((value) => JSON.stringify(value)),
        ),
        fc.oneof(fc.constant(executeUrl), anyString.map((path) => `${origin}/execute/${encodeURIComponent(path)}`)),
        fc.oneof(fc.constant(executeToken), anyString),
        async (body, url, token) => {
          const answer = await post(url, body, { authorization: `Bearer ${encodeURIComponent(token) || 'x'}` });
          expect(answer.status, answer.text).toBeLessThan(500);
          if (answer.status >= 400) expect(answer.json?.error?.code, answer.text).toEqual(expect.any(String));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('survives a body cut off mid-request by a client that goes away', async () => {
    const { port } = new URL(server.url);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: validBody.length - 1 }), fc.constantFrom('/graphql', new URL(executeUrl).pathname), async (length, path) => {
        await new Promise<void>((resolve, reject) => {
          const socket = connect(Number(port), '127.0.0.1', () => {
            socket.write(
              `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
                `Authorization: Bearer ${path === '/graphql' ? server.adminToken : executeToken}\r\nContent-Length: ${validBody.length}\r\n\r\n` +
                validBody.slice(0, length),
            );
            setTimeout(() => socket.destroy(), 20);
          });
          socket.on('close', () => resolve());
          socket.on('error', reject);
        });
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });
});

describe('graphql-ws frames', () => {
  /** Opens a socket, sends `frames`, and resolves with what came back: messages, and the close code if it closed. */
  function exchange(frames: (string | Buffer)[]): Promise<{ messages: string[]; closeCode: number | null }> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
      const messages: string[] = [];
      let settled = false;
      const finish = (closeCode: number | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (closeCode === null) socket.terminate();
        resolve({ messages, closeCode });
      };
      const timer = setTimeout(() => finish(null), 300);
      socket.on('open', () => {
        for (const frame of frames) socket.send(frame);
      });
      socket.on('message', (data) => messages.push(data.toString()));
      socket.on('close', (code) => finish(code));
      socket.on('error', (error) => (settled ? undefined : reject(error)));
    });
  }

  const frame = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 100 }),
    anyJson.map((value) => JSON.stringify(value)),
    fc
      .record({
        type: fc.constantFrom('connection_init', 'subscribe', 'complete', 'next', 'ping', 'pong', 'error', 'connection_ack', 'bogus'),
        id: fc.oneof(anyString, fc.integer()),
        payload: fc.oneof(anyJson, fc.record({ query: fc.oneof(anyString, fc.constant('{ __typename }')), variables: anyJson })),
      }, { requiredKeys: ['type'] })
      .map((value) => JSON.stringify(value)),
    fc.uint8Array({ maxLength: 100 }).map((bytes) => Buffer.from(bytes)),
  );

  it('answers random frames, or closes with a protocol code, and never with an internal error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(frame, { minLength: 1, maxLength: 4 }), async (authenticated, frames) => {
        const init = JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${server.adminToken}` } });
        const { closeCode } = await exchange([...(authenticated ? [init] : []), ...frames]);
        if (closeCode === null) return;
        // 4500 and 1011 are the server's own failures; the protocol's refusals are 4xxx, the transport's 1xxx.
        expect([4500, 1011]).not.toContain(closeCode);
        expect(closeCode >= 4000 || (closeCode >= 1000 && closeCode < 2000), String(closeCode)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('afterwards', () => {
  it('still serves, and every submission answered with success exists', async () => {
    expect((await fetch(`${origin}/healthz`)).status).toBe(200);
    expect(accepted.length).toBeGreaterThan(0);
    const statuses = await query(server, server.adminToken, 'query ($ids: [ID!]!) { taskStatuses(ids: $ids) { id found } }', {
      ids: accepted,
    });
    expect(statuses.taskStatuses.filter((status: { found: boolean }) => !status.found)).toEqual([]);
    expect(serverFaults.filter((line) => (line['level'] as number) >= 50)).toEqual([]);
  });
});
