import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { builtInCatalog } from '../src/catalog/services.js';
import { MAX_RETRIEVAL_KEY_LENGTH } from '../src/domain/api.js';
import { createEngine } from '../src/engine/index.js';
import { createServer } from '../src/http/server.js';
import { isPostgresUrl, openStorage } from '../src/storage/index.js';
import {
  createKey,
  graphql,
  nextListen,
  query,
  startServer,
  submit,
  temporaryDatabase,
  waitForTask,
  type TestServer,
} from './helpers.js';

const RETRIEVE_WITH_KEY = `
  mutation ($id: ID!, $key: String) {
    retrieveResults(taskId: $id, retrievalKey: $key) {
      __typename
      ... on RetrieveResultsSuccess { results { data result { name retrieved } } }
      ... on Error { code message }
      ... on ValidationError { field }
    }
  }`;

function retrieve(server: Pick<TestServer, 'url'>, token: string, id: string, key?: string) {
  return query(server, token, RETRIEVE_WITH_KEY, { id, key }).then((data) => data.retrieveResults);
}

/** The client asks, then drops the connection as soon as the answer starts, without reading it. */
function retrieveDroppingTheAnswer(server: Pick<TestServer, 'url'>, token: string, id: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(server.url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}` },
    });
    request.on('response', (response) => {
      response.socket.destroy();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', reject);
    request.end(JSON.stringify({ query: RETRIEVE_WITH_KEY, variables: { id, key } }));
  });
}

async function finishedEcho(server: TestServer, token: string, message: string, poll?: string): Promise<string> {
  const submitted = await submit(server, token, { service: 'demo', action: 'echo', params: { message }, poll });
  const id = submitted.task.id as string;
  expect((await waitForTask(server, token, id)).state).toBe('SUCCEEDED');
  return id;
}

function numericId(globalId: string): number {
  return Number(Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]);
}

/** What the database holds of a task's payloads, read beside the server as an operator would. */
async function storedPayloads(location: string, taskId: string): Promise<(string | null)[]> {
  const statement = 'SELECT data FROM task_results WHERE task_id = $1 ORDER BY id';
  if (isPostgresUrl(location)) {
    const client = new pg.Client({ connectionString: location });
    await client.connect();
    try {
      return (await client.query<{ data: string | null }>(statement, [numericId(taskId)])).rows.map((row) => row.data);
    } finally {
      await client.end();
    }
  }
  const database = new Database(location, { readonly: true });
  try {
    return database.prepare(statement.replace('$1', '?')).pluck().all(numericId(taskId)) as (string | null)[];
  } finally {
    database.close();
  }
}

describe('retrieveResults with a retrievalKey', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  test('a retry with the same retrievalKey gets the payloads whose answer was lost; another key or none gets ALREADY_RETRIEVED', async () => {
    const id = await finishedEcho(server, server.adminToken, 'lost on the way');
    const key = `retrieval-${randomBytes(8).toString('hex')}`;

    expect(await retrieveDroppingTheAnswer(server, server.adminToken, id, key)).toBe(200);
    const task = await query(server, server.adminToken, 'query ($id: ID!) { task(id: $id) { resultRetrieved } }', { id });
    expect(task.task.resultRetrieved).toBe(true);

    const expected = {
      __typename: 'RetrieveResultsSuccess',
      results: [{ data: { message: 'lost on the way' }, result: { name: 'result', retrieved: true } }],
    };
    expect(await retrieve(server, server.adminToken, id, key)).toEqual(expected);
    // Still within the window: a client that lost the retry's answer too can ask once more.
    expect(await retrieve(server, server.adminToken, id, key)).toEqual(expected);

    expect(await retrieve(server, server.adminToken, id, `${key}-other`)).toMatchObject({
      __typename: 'ConflictError',
      code: 'ALREADY_RETRIEVED',
    });
    expect(await retrieve(server, server.adminToken, id)).toMatchObject({ __typename: 'ConflictError', code: 'ALREADY_RETRIEVED' });
    const member = await createKey(server, 'default');
    expect(await retrieve(server, member, id, key)).toEqual(expected);
  });

  test('without a retrievalKey a retrieval is one-shot: its payloads leave the database with the answer', async () => {
    const id = await finishedEcho(server, server.adminToken, 'once only');
    expect(await storedPayloads(server.database, id)).toEqual([JSON.stringify({ message: 'once only' })]);

    expect(await retrieve(server, server.adminToken, id)).toMatchObject({
      __typename: 'RetrieveResultsSuccess',
      results: [{ data: { message: 'once only' } }],
    });
    expect(await storedPayloads(server.database, id)).toEqual([null]);
    expect(await retrieve(server, server.adminToken, id)).toMatchObject({ code: 'ALREADY_RETRIEVED' });
  });

  test(`a retrievalKey must be 1 to ${MAX_RETRIEVAL_KEY_LENGTH} characters, and a refused one retrieves nothing`, async () => {
    const id = await finishedEcho(server, server.adminToken, 'not yet');
    for (const key of ['', 'k'.repeat(MAX_RETRIEVAL_KEY_LENGTH + 1)]) {
      expect(await retrieve(server, server.adminToken, id, key)).toMatchObject({
        __typename: 'ValidationError',
        code: 'INVALID',
        field: 'retrievalKey',
      });
    }
    expect(await retrieve(server, server.adminToken, id, 'k'.repeat(MAX_RETRIEVAL_KEY_LENGTH))).toMatchObject({
      __typename: 'RetrieveResultsSuccess',
      results: [{ data: { message: 'not yet' } }],
    });
  });
});

interface ComposedServer {
  url: string;
  token: string;
  database: string;
  stop(): Promise<void>;
}

/** The real server, composed as main.ts does, with an engine option that Config does not carry. */
async function startWithRetryWindow(resultRetryWindowMs: number, databasePath: string, token: string): Promise<ComposedServer> {
  const storage = await openStorage(databasePath);
  const engine = createEngine({ storage, catalog: builtInCatalog(), resultRetryWindowMs, retryBaseMs: 20 });
  await engine.bootstrap(token);
  await engine.start();
  const http = await createServer({ engine, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }) });
  return {
    url: http.url,
    token,
    database: databasePath,
    stop: async () => {
      await engine.stop(0);
      await http.close();
      await storage.close();
    },
  };
}

describe('after the retry window', () => {
  const token = `tp_test_${randomBytes(12).toString('hex')}`;
  let databasePath: string;
  let server: ComposedServer;

  beforeAll(async () => {
    databasePath = await temporaryDatabase();
    // A window of 0: every retry comes after it.
    server = await startWithRetryWindow(0, databasePath, token);
  });
  afterAll(async () => {
    await server.stop();
  });

  async function finished(message: string): Promise<string> {
    const submitted = await query(
      server,
      token,
      `mutation ($input: SubmitTaskInput!) { submitTask(input: $input) { ... on SubmitTaskSuccess { task { id } } } }`,
      { input: { service: 'demo', action: 'echo', params: { message } } },
    );
    const id = submitted.submitTask.task.id as string;
    const updates = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    await new Promise<void>((resolve, reject) => {
      updates.on('open', () => updates.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      updates.on('message', (raw) => {
        const message = JSON.parse(String(raw));
        if (message.type === 'connection_ack') {
          updates.send(
            JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`, variables: { id } } }),
          );
        }
        if (message.type === 'complete') resolve();
        if (message.type === 'error') reject(new Error(JSON.stringify(message.payload)));
      });
      updates.on('error', reject);
    });
    updates.close();
    return id;
  }

  test('a retry with the key gets ALREADY_RETRIEVED, and the payloads are gone from the database', async () => {
    const id = await finished('expired');
    expect(await retrieve(server, token, id, 'late-key')).toMatchObject({
      __typename: 'RetrieveResultsSuccess',
      results: [{ data: { message: 'expired' } }],
    });
    expect(await retrieve(server, token, id, 'late-key')).toMatchObject({ __typename: 'ConflictError', code: 'ALREADY_RETRIEVED' });
    expect(await storedPayloads(databasePath, id)).toEqual([null]);
  });

  test('payloads nobody asks for again are deleted too: here by the sweep at the next start', async () => {
    const id = await finished('never asked again');
    expect(await retrieve(server, token, id, 'forgotten-key')).toMatchObject({ __typename: 'RetrieveResultsSuccess' });
    await server.stop();
    server = await startWithRetryWindow(0, databasePath, token);
    expect(await storedPayloads(databasePath, id)).toEqual([null]);
  });
});

describe('the retrieval protocol a submission takes', () => {
  let server: TestServer;
  let admin: string;
  const SUBMIT_ONE = `submitTask(input: { service: "demo", action: "echo", params: { message: "one" } }) {
    __typename ... on SubmitTaskSuccess { task { retrievalProtocol } } }`;
  const SUBMIT_BATCH = `submitTasks(inputs: [{ service: "demo", action: "echo", params: { message: "batch" } }]) {
    __typename ... on SubmitTasksSuccess { tasks { retrievalProtocol } } }`;

  beforeAll(async () => {
    server = await startServer();
    admin = await createKey(server, 'protocol-changes', 'ADMIN');
  });
  afterAll(async () => {
    await server.stop();
  });

  test("is the organisation's at the time, also right after setRetrievalProtocol in the same operation", async () => {
    expect((await query(server, admin, `mutation { ${SUBMIT_ONE} }`)).submitTask.task.retrievalProtocol).toBe('STORE');

    const changed = await query(server, admin, `mutation { setRetrievalProtocol(protocol: CHANNEL) { retrievalProtocol } ${SUBMIT_ONE} ${SUBMIT_BATCH} }`);
    expect(changed.setRetrievalProtocol.retrievalProtocol).toBe('CHANNEL');
    expect(changed.submitTask.task.retrievalProtocol).toBe('CHANNEL');
    expect(changed.submitTasks.tasks.map((task: { retrievalProtocol: string }) => task.retrievalProtocol)).toEqual(['CHANNEL']);

    const later = await query(server, admin, `mutation { ${SUBMIT_ONE} ${SUBMIT_BATCH} }`);
    expect(later.submitTask.task.retrievalProtocol).toBe('CHANNEL');
    expect(later.submitTasks.tasks[0].retrievalProtocol).toBe('CHANNEL');

    const back = await query(server, admin, `mutation { ${SUBMIT_BATCH} setRetrievalProtocol(protocol: STORE) { retrievalProtocol } ${SUBMIT_ONE} }`);
    expect(back.submitTasks.tasks[0].retrievalProtocol).toBe('CHANNEL');
    expect(back.submitTask.task.retrievalProtocol).toBe('STORE');
  });
});

describe('CHANNEL delivery', () => {
  let server: TestServer;
  let channelAdmin: string;
  // Within the 1 MiB that params may take, and repeated so that the RESULT message is far larger
  // than what the kernel's socket buffers hold for a receiver that does not read (a few MB on loopback).
  // As large as a request to /graphql can carry.
  const message = 'x'.repeat(1024 * 1024 - 1024);
  const copies = 12;
  // Each alias repeats the payload in the message.
  const TASK_EVENTS = `subscription ($filter: TaskFilter) {
    taskEvents(filter: $filter) { kind ${Array.from({ length: copies }, (_, index) => `r${index}: result { data }`).join(' ')} }
  }`;

  beforeAll(async () => {
    server = await startServer();
    channelAdmin = await createKey(server, 'channel-delivery', 'ADMIN');
    await query(server, channelAdmin, 'mutation { setRetrievalProtocol(protocol: CHANNEL) { organisation } }');
  });
  afterAll(async () => {
    await server.stop();
  });

  /** Calls `onResultStarts` when the first bytes of a RESULT message arrive, within the chunk that holds them. */
  function watchForResult(onResultStarts: () => void): (chunk: Buffer) => void {
    let tail = '';
    let seen = false;
    return (chunk) => {
      if (seen) return;
      const text = tail + chunk.toString('latin1');
      if (text.includes('"kind":"RESULT"')) {
        seen = true;
        onResultStarts();
      }
      tail = text.slice(-32);
    };
  }

  async function expectStillRetrievable(id: string): Promise<void> {
    const retrieved = await retrieve(server, channelAdmin, id);
    expect(retrieved.__typename).toBe('RetrieveResultsSuccess');
    expect(retrieved.results).toHaveLength(1);
    expect(retrieved.results[0].data).toEqual({ message });
  }

  test('a graphql-ws subscriber that stops reading does not consume the result it was never sent; retrieveResults returns it', async () => {
    const poll = `poll-ws-${randomBytes(6).toString('hex')}`;
    let socket: Socket | null = null;
    const client = new WebSocket(server.wsUrl, 'graphql-transport-ws', {
      createConnection: (options: object) => (socket = connect(options as never)),
    });
    const resultStarted = new Promise<void>((resolve) => {
      client.on('open', () => {
        socket!.on('data', watchForResult(() => {
          client.pause();
          resolve();
        }));
        client.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${channelAdmin}` } }));
      });
    });
    const listening = nextListen(server, 'organisation');
    client.on('message', (raw) => {
      if (JSON.parse(String(raw)).type === 'connection_ack') {
        client.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: TASK_EVENTS, variables: { filter: { poll } } } }));
      }
    });
    await listening;

    const id = await finishedEcho(server, channelAdmin, message, poll);
    await resultStarted;
    // The server is now writing the RESULT message into a connection nobody reads; the client goes away.
    client.terminate();

    await expectStillRetrievable(id);
  });

  test('an SSE subscriber that stops reading does not consume the result it was never sent; retrieveResults returns it', async () => {
    const poll = `poll-sse-${randomBytes(6).toString('hex')}`;
    const listening = nextListen(server, 'organisation');
    let dropConnection = () => {};
    const resultStarted = new Promise<void>((resolve, reject) => {
      const request = httpRequest(server.url, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${channelAdmin}` },
      });
      request.on('response', (response) => {
        dropConnection = () => response.socket.destroy();
        response.on(
          'data',
          watchForResult(() => {
            response.pause();
            response.socket.pause();
            resolve();
          }),
        );
      });
      request.on('error', reject);
      request.end(JSON.stringify({ query: TASK_EVENTS, variables: { filter: { poll } } }));
    });
    await listening;

    const id = await finishedEcho(server, channelAdmin, message, poll);
    await resultStarted;
    dropConnection();

    await expectStillRetrievable(id);
  });
});
