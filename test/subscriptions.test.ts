import type { Client, FormattedExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import WebSocket from 'ws';
import { MAX_BATCH_SUBMIT } from '../src/domain/api.js';
import { MAX_BUFFERED_EVENTS } from '../src/domain/events.js';
import {
  createKey,
  globalId,
  graphql,
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

type Result = FormattedExecutionResult<any, unknown>;

const TASK_UPDATED = `subscription ($id: ID!) {
  taskUpdated(id: $id) { id state progress retrievalProtocol }
}`;

const TASK_EVENTS = `subscription ($filter: TaskFilter) {
  taskEvents(filter: $filter) {
    kind
    at
    task { id state service type poll }
    log { message level }
    result { data result { name retrieved } }
  }
}`;

const STATE_ORDER = ['PENDING', 'PROCESSING', 'SUCCEEDED'];

let pollCounter = 0;
function uniquePoll(): string {
  pollCounter += 1;
  return `poll-${process.pid}-${pollCounter}`;
}

interface Outcome {
  results: Result[];
  ended: 'complete' | 'error';
  error?: unknown;
}

/** A graphql-ws subscription whose outcome settles on complete and on error alike. */
function follow(client: Client, text: string, variables: Record<string, unknown>) {
  const results: Result[] = [];
  let firstResolve: (result: Result) => void;
  const first = new Promise<Result>((resolve) => (firstResolve = resolve));
  const outcome = new Promise<Outcome>((resolve) => {
    client.subscribe(
      { query: text, variables },
      {
        next: (result) => {
          results.push(result);
          if (results.length === 1) firstResolve(result);
        },
        error: (error) => resolve({ results, ended: 'error', error }),
        complete: () => resolve({ results, ended: 'complete' }),
      },
    );
  });
  return { first, outcome };
}

/** A server-sent events subscription that the test reads message by message and closes itself. */
async function openSse(server: TestServer, token: string, text: string, variables: Record<string, unknown>) {
  const controller = new AbortController();
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: text, variables }),
    signal: controller.signal,
  });
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const reader = response.body!.getReader();
  reader.closed.catch(() => undefined);
  const decoder = new TextDecoder();
  let buffered = '';
  /** The next message, or null once the server has completed or closed the stream. */
  async function next(): Promise<Result | null> {
    for (;;) {
      const boundary = buffered.indexOf('\n\n');
      if (boundary >= 0) {
        const message = buffered.slice(0, boundary);
        buffered = buffered.slice(boundary + 2);
        const event = /^event: (.*)$/m.exec(message)?.[1];
        if (event === 'complete') return null;
        const data = message
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (data) return JSON.parse(data) as Result;
        continue;
      }
      const { value, done } = await reader.read();
      if (done) return null;
      buffered += decoder.decode(value, { stream: true });
    }
  }
  return { response, next, close: () => controller.abort() };
}

interface EventMessage {
  kind: string;
  at: string;
  task: { id: string; state: string; service: string; type: string; poll: string | null };
  log: { message: string; level: string; timestamp?: string } | null;
  result: { data: any; result: { name: string; retrieved: boolean } } | null;
}

/** Reads events until `done` says so; the caller closes the subscription. */
async function collectUntil(
  next: () => Promise<Result | null | undefined>,
  done: (events: EventMessage[]) => boolean,
): Promise<EventMessage[]> {
  const events: EventMessage[] = [];
  while (!done(events)) {
    const result = await next();
    if (!result) throw new Error(`the stream ended early after ${JSON.stringify(events)}`);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    events.push((result.data as { taskEvents: EventMessage }).taskEvents);
  }
  return events;
}

function succeeded(events: EventMessage[], id: string): boolean {
  return events.some((event) => event.task.id === id && event.kind === 'STATE_CHANGED' && event.task.state === 'SUCCEEDED');
}

function checkTaskUpdatedOfSleep(results: Result[], id: string): void {
  for (const result of results) expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  const tasks = results.map((result) => (result.data as { taskUpdated: { id: string; state: string; progress: number | null } }).taskUpdated);
  expect(tasks.every((task) => task.id === id)).toBe(true);
  expect(['PENDING', 'PROCESSING']).toContain(tasks[0]!.state);
  expect(tasks.at(-1)!.state).toBe('SUCCEEDED');
  expect(tasks.at(-1)!.progress).toBe(1);
  // Only the last message is terminal, and states never go back.
  expect(tasks.slice(0, -1).every((task) => task.state !== 'SUCCEEDED')).toBe(true);
  const order = tasks.map((task) => STATE_ORDER.indexOf(task.state));
  expect(order.every((rank, index) => rank >= 0 && (index === 0 || rank >= order[index - 1]!))).toBe(true);
  const progress = tasks.map((task) => task.progress ?? 0);
  expect(progress.every((value, index) => index === 0 || value >= progress[index - 1]!)).toBe(true);
  // A step in between was reported before the end.
  expect(progress.some((value) => value > 0 && value < 1)).toBe(true);
}

describe('subscriptions', () => {
  let server: TestServer;
  let admin: string;

  beforeAll(async () => {
    server = await startServer();
    admin = server.adminToken;
  });

  afterAll(async () => {
    await server.stop();
  });

  test('taskUpdated over graphql-ws follows a sleep task to SUCCEEDED and completes', async () => {
    const submitted = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 300, steps: 3 } });
    expect(submitted.__typename).toBe('SubmitTaskSuccess');
    const id = submitted.task.id as string;
    const results = await subscribeOverWebSocket(wsClient(server, admin), TASK_UPDATED, { id });
    checkTaskUpdatedOfSleep(results, id);
  });

  test('taskUpdated over SSE follows a sleep task to SUCCEEDED and completes', async () => {
    const submitted = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 300, steps: 3 } });
    const id = submitted.task.id as string;
    const results = await subscribeOverSse(server, admin, TASK_UPDATED, { id });
    checkTaskUpdatedOfSleep(results, id);
  });

  test('taskUpdated sends one message for the changes of one worker turn, not one per event', async () => {
    const submitted = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 300, steps: 3 } });
    const id = submitted.task.id as string;
    const results = await subscribeOverWebSocket(wsClient(server, admin), TASK_UPDATED, { id });
    // Each step logs and reports progress in the same turn: both must come as one message.
    const seen = results.map((result) => JSON.stringify(result.data));
    for (let index = 1; index < seen.length; index++) expect(seen[index]).not.toBe(seen[index - 1]);
  });

  test('taskUpdated of a finished task sends it once and completes, on both transports', async () => {
    const submitted = await submit(server, admin, { service: 'demo', action: 'echo', params: { message: 'done' } });
    const id = submitted.task.id as string;
    expect((await waitForTask(server, admin, id)).state).toBe('SUCCEEDED');

    const overWebSocket = await subscribeOverWebSocket(wsClient(server, admin), TASK_UPDATED, { id });
    const overSse = await subscribeOverSse(server, admin, TASK_UPDATED, { id });
    for (const results of [overWebSocket, overSse]) {
      expect(results).toHaveLength(1);
      expect(results[0]!.errors).toBeUndefined();
      expect(results[0]!.data).toMatchObject({ taskUpdated: { id, state: 'SUCCEEDED', progress: 1 } });
    }
  });

  test('taskUpdated of an unknown, a malformed or a non-task id is a NOT_FOUND error on both transports', async () => {
    const { id: keyId } = (await query(server, admin, '{ viewer { key { id } } }')).viewer.key;
    for (const id of [globalId('Task', 987_654), 'garbage', '', keyId]) {
      const overWebSocket = await subscribeOverWebSocket(wsClient(server, admin), TASK_UPDATED, { id });
      const overSse = await subscribeOverSse(server, admin, TASK_UPDATED, { id });
      for (const results of [overWebSocket, overSse]) {
        expect(results, `${id}: ${JSON.stringify(results)}`).toHaveLength(1);
        expect(results[0]!.data ?? null).toBeNull();
        expect(results[0]!.errors?.map((error) => error.extensions?.code), `${id}: ${JSON.stringify(results)}`).toEqual([
          'NOT_FOUND',
        ]);
      }
    }
  });

  test('taskEvents over graphql-ws delivers the events of matching tasks only, then closes on return', async () => {
    const poll = uniquePoll();
    const listenersBefore = server.taskport.engine.events.listenerCount();
    const client = wsClient(server, admin);
    const listening = nextListen(server, 'organisation');
    const iterator = client.iterate<{ taskEvents: EventMessage }>({ query: TASK_EVENTS, variables: { filter: { poll } } });
    await listening;

    // Finished before the matching tasks exist: any of its events would arrive before theirs.
    const other = await submit(server, admin, { service: 'demo', action: 'echo', params: { message: 'other' }, poll: `${poll}-other` });
    expect((await waitForTask(server, admin, other.task.id)).state).toBe('SUCCEEDED');

    const echo = await submit(server, admin, { service: 'demo', action: 'echo', params: { message: 'hi' }, poll });
    const sleep = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 200, steps: 2 }, poll });
    const echoId = echo.task.id as string;
    const sleepId = sleep.task.id as string;

    const events = await collectUntil(
      async () => (await iterator.next()).value,
      (seen) => succeeded(seen, echoId) && succeeded(seen, sleepId),
    );
    await iterator.return?.();

    expect(events.every((event) => event.task.poll === poll)).toBe(true);
    expect(events.map((event) => event.task.id).filter((id) => id !== echoId && id !== sleepId)).toEqual([]);
    for (const id of [echoId, sleepId]) {
      const own = events.filter((event) => event.task.id === id);
      expect(own[0]!.kind).toBe('CREATED');
      expect(own.filter((event) => event.kind === 'STATE_CHANGED').length).toBeGreaterThanOrEqual(2);
      // STORE protocol: the event says a result exists, the payload stays for retrieveResults.
      const results = own.filter((event) => event.kind === 'RESULT');
      expect(results).toHaveLength(1);
      expect(results[0]!.result).toBeNull();
    }
    const sleepEvents = events.filter((event) => event.task.id === sleepId);
    expect(sleepEvents.some((event) => event.kind === 'STATE_CHANGED' && event.task.state === 'PROCESSING')).toBe(true);
    const logs = sleepEvents.filter((event) => event.kind === 'LOG').map((event) => event.log);
    expect(logs).toEqual([
      { message: 'step 1 of 2', level: 'INFO' },
      { message: 'step 2 of 2', level: 'INFO' },
    ]);
    expect(events.filter((event) => event.kind !== 'LOG').every((event) => event.log === null)).toBe(true);
    expect(sleepEvents.some((event) => event.kind === 'PROGRESS')).toBe(true);

    // The payload is still there: nobody consumed it.
    const retrieved = await query(
      server,
      admin,
      `mutation ($id: ID!) { retrieveResults(taskId: $id) {
        __typename ... on RetrieveResultsSuccess { results { data result { name } } } } }`,
      { id: echoId },
    );
    expect(retrieved.retrieveResults).toEqual({
      __typename: 'RetrieveResultsSuccess',
      results: [{ data: { message: 'hi' }, result: { name: 'result' } }],
    });

    // Returning from the iterator ends the subscription on the server, which keeps answering.
    await vi.waitFor(() => expect(server.taskport.engine.events.listenerCount()).toBe(listenersBefore));
    expect((await query(server, admin, '{ viewer { organisation } }')).viewer.organisation).toBe('default');
  });

  test('taskEvents arrive in the order of their timestamps, with each log line keeping its own time', async () => {
    const poll = uniquePoll();
    const client = wsClient(server, admin);
    const listening = nextListen(server, 'organisation');
    const iterator = client.iterate<{ taskEvents: EventMessage }>({
      query: `subscription ($filter: TaskFilter) { taskEvents(filter: $filter) { kind at task { id state } log { timestamp } } }`,
      variables: { filter: { poll } },
    });
    await listening;
    // Two tasks at once, each logging and reporting progress at every step: many writes to interleave.
    const ids: string[] = [];
    for (const steps of [5, 8]) {
      const submitted = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 200, steps }, poll });
      ids.push(submitted.task.id as string);
    }
    const events = await collectUntil(
      async () => (await iterator.next()).value,
      (seen) => ids.every((id) => succeeded(seen, id)),
    );
    await iterator.return?.();

    const times = events.map((event) => Date.parse(event.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const logs = events.filter((event) => event.kind === 'LOG');
    expect(logs.length).toBeGreaterThanOrEqual(13);
    for (const event of logs) {
      expect(Date.parse(event.log!.timestamp!)).toBeLessThanOrEqual(Date.parse(event.at));
    }
  });

  test('taskEvents over SSE with a service/type filter delivers matching tasks only, then closes on abort', async () => {
    const listenersBefore = server.taskport.engine.events.listenerCount();
    // The response starts only once the subscription is set up, so nothing after this is missed.
    const stream = await openSse(server, admin, TASK_EVENTS, { filter: { service: 'demo', type: 'echo' } });
    expect(stream.response.status).toBe(200);

    const other = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 0, steps: 1 } });
    expect((await waitForTask(server, admin, other.task.id)).state).toBe('SUCCEEDED');
    const echo = await submit(server, admin, { service: 'demo', action: 'echo', params: { message: 'sse' } });
    const echoId = echo.task.id as string;

    const events = await collectUntil(stream.next, (seen) => succeeded(seen, echoId));
    stream.close();

    expect(events.every((event) => event.task.id === echoId && event.task.type === 'echo')).toBe(true);
    expect(events[0]!.kind).toBe('CREATED');
    expect(events.some((event) => event.kind === 'RESULT')).toBe(true);
    expect(events.filter((event) => event.kind === 'STATE_CHANGED').length).toBeGreaterThanOrEqual(2);

    await vi.waitFor(() => expect(server.taskport.engine.events.listenerCount()).toBe(listenersBefore));
    expect((await query(server, admin, '{ viewer { organisation } }')).viewer.organisation).toBe('default');
  });

  test('taskEvents over SSE reports PROCESSING, LOG and SUCCEEDED of a sleep task', async () => {
    const poll = uniquePoll();
    const stream = await openSse(server, admin, TASK_EVENTS, { filter: { poll } });
    const sleep = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 200, steps: 2 }, poll });
    const id = sleep.task.id as string;
    const events = await collectUntil(stream.next, (seen) => succeeded(seen, id));
    stream.close();

    expect(events.map((event) => event.kind)).toContain('CREATED');
    expect(events.some((event) => event.kind === 'STATE_CHANGED' && event.task.state === 'PROCESSING')).toBe(true);
    expect(events.filter((event) => event.kind === 'LOG').map((event) => event.log!.message)).toEqual([
      'step 1 of 2',
      'step 2 of 2',
    ]);
  });

  describe('CHANNEL retrieval protocol', () => {
    let channelAdmin: string;

    beforeAll(async () => {
      channelAdmin = await createKey(server, 'channel-org', 'ADMIN');
      const set = await query(server, channelAdmin, 'mutation { setRetrievalProtocol(protocol: CHANNEL) { organisation retrievalProtocol } }');
      expect(set.setRetrievalProtocol).toEqual({ organisation: 'channel-org', retrievalProtocol: 'CHANNEL' });
      // The other organisation keeps its own protocol.
      expect((await query(server, admin, '{ viewer { retrievalProtocol } }')).viewer.retrievalProtocol).toBe('STORE');
    });

    test('a result is pushed with its payload over taskEvents and consumed by that delivery', async () => {
      const poll = uniquePoll();
      const client = wsClient(server, channelAdmin);
      const listening = nextListen(server, 'organisation');
      const iterator = client.iterate<{ taskEvents: EventMessage }>({ query: TASK_EVENTS, variables: { filter: { poll } } });
      await listening;

      const echo = await submit(
        server,
        channelAdmin,
        { service: 'demo', action: 'echo', params: { message: 'pushed' }, poll },
        'id retrievalProtocol',
      );
      expect(echo.task.retrievalProtocol).toBe('CHANNEL');
      const id = echo.task.id as string;
      const events = await collectUntil(async () => (await iterator.next()).value, (seen) => succeeded(seen, id));
      await iterator.return?.();

      const delivered = events.filter((event) => event.kind === 'RESULT');
      expect(delivered).toHaveLength(1);
      expect(delivered[0]!.result).toEqual({ data: { message: 'pushed' }, result: { name: 'result', retrieved: true } });

      const after = await query(
        server,
        channelAdmin,
        `query ($id: ID!) { task(id: $id) { state resultRetrieved retrievalProtocol results { name retrieved } } }`,
        { id },
      );
      expect(after.task).toEqual({
        state: 'SUCCEEDED',
        resultRetrieved: true,
        retrievalProtocol: 'CHANNEL',
        results: [{ name: 'result', retrieved: true }],
      });
      const statuses = await query(server, channelAdmin, 'query ($ids: [ID!]!) { taskStatuses(ids: $ids) { resultRetrieved } }', {
        ids: [id],
      });
      expect(statuses.taskStatuses).toEqual([{ resultRetrieved: true }]);

      const retrieved = await query(
        server,
        channelAdmin,
        `mutation ($id: ID!) { retrieveResults(taskId: $id) {
          __typename ... on Error { code } ... on RetrieveResultsSuccess { results { data } } } }`,
        { id },
      );
      // Consumed: no payload comes back a second time, whichever way the server says so.
      const outcome = retrieved.retrieveResults;
      if (outcome.__typename === 'RetrieveResultsSuccess') expect(outcome.results).toEqual([]);
      else expect(outcome).toEqual({ __typename: 'ConflictError', code: 'ALREADY_RETRIEVED' });
    });

    test('with two subscribers, a result payload is delivered to exactly one of them', async () => {
      const poll = uniquePoll();
      const iterators = [];
      for (let index = 0; index < 2; index++) {
        const listening = nextListen(server, 'organisation');
        iterators.push(
          wsClient(server, channelAdmin).iterate<{ taskEvents: EventMessage }>({ query: TASK_EVENTS, variables: { filter: { poll } } }),
        );
        await listening;
      }
      const echo = await submit(server, channelAdmin, { service: 'demo', action: 'echo', params: { message: 'once' }, poll });
      const id = echo.task.id as string;
      const delivered = [];
      for (const iterator of iterators) {
        const events = await collectUntil(async () => (await iterator.next()).value, (seen) => succeeded(seen, id));
        await iterator.return?.();
        const results = events.filter((event) => event.kind === 'RESULT');
        expect(results).toHaveLength(1);
        delivered.push(results[0]!.result);
      }
      expect(delivered.filter((payload) => payload !== null)).toEqual([
        { data: { message: 'once' }, result: { name: 'result', retrieved: true } },
      ]);
    });

    test('every result of a task that publishes several is delivered, then the task counts as retrieved', async () => {
      const registered = await query(
        server,
        channelAdmin,
        `mutation { registerAccount(input: { service: "demo", username: "channel-user" }) { __typename } }`,
      );
      expect(registered.registerAccount.__typename).toBe('RegisterAccountSuccess');
      const poll = uniquePoll();
      const stream = await openSse(server, channelAdmin, TASK_EVENTS, { filter: { poll } });
      const fetch = await submit(server, channelAdmin, {
        service: 'demo',
        action: 'fetch-data',
        account: 'channel-user',
        params: { device: 'phone-1', data: ['sms', 'calls'] },
        poll,
      });
      expect(fetch.__typename).toBe('SubmitTaskSuccess');
      const id = fetch.task.id as string;
      const events = await collectUntil(stream.next, (seen) => succeeded(seen, id));
      stream.close();

      const delivered = events.filter((event) => event.kind === 'RESULT').map((event) => event.result);
      expect(delivered.map((payload) => payload?.result.name).sort()).toEqual(['calls', 'sms']);
      for (const payload of delivered) {
        expect(payload!.data.device).toBe('phone-1');
        expect(payload!.data.records.length).toBeGreaterThan(0);
      }
      const after = await query(server, channelAdmin, `query ($id: ID!) { task(id: $id) { resultRetrieved results { retrieved } } }`, {
        id,
      });
      expect(after.task).toEqual({ resultRetrieved: true, results: [{ retrieved: true }, { retrieved: true }] });
    });
  });

  test('subscriptions of a revoked key end with UNAUTHENTICATED, on both transports', async () => {
    const created = await query(
      server,
      admin,
      `mutation { createApiKey(input: { name: "soon revoked", role: MEMBER }) {
        ... on CreateApiKeySuccess { token apiKey { id } } } }`,
    );
    const member = created.createApiKey.token as string;
    const memberKeyId = created.createApiKey.apiKey.id as string;
    const long = await submit(server, member, { service: 'demo', action: 'sleep', params: { ms: 5000, steps: 1 } });
    const id = long.task.id as string;

    const overWebSocket = follow(wsClient(server, member), TASK_UPDATED, { id });
    const sse = await openSse(server, member, TASK_UPDATED, { id });
    // The first message proves the subscription is live, and so is its watch on the key.
    expect((await overWebSocket.first).data).toMatchObject({ taskUpdated: { id } });
    expect((await sse.next())?.data).toMatchObject({ taskUpdated: { id } });

    const revoked = await query(
      server,
      admin,
      `mutation ($id: ID!) { revokeApiKey(id: $id) { __typename ... on RevokeApiKeySuccess { apiKey { revoked } } } }`,
      { id: memberKeyId },
    );
    expect(revoked.revokeApiKey).toEqual({ __typename: 'RevokeApiKeySuccess', apiKey: { revoked: true } });

    const codesOf = (outcome: Outcome) => {
      const fromResults = outcome.results.flatMap((result) => result.errors ?? []).map((error) => error.extensions?.code);
      const fromError = Array.isArray(outcome.error) ? outcome.error.map((error) => error.extensions?.code) : [];
      return [...fromResults, ...fromError];
    };
    const wsOutcome = await overWebSocket.outcome;
    expect(codesOf(wsOutcome), JSON.stringify(wsOutcome)).toContain('UNAUTHENTICATED');

    const sseMessages: Result[] = [];
    for (let message = await sse.next(); message; message = await sse.next()) sseMessages.push(message);
    expect(sseMessages.flatMap((message) => message.errors ?? []).map((error) => error.extensions?.code)).toContain(
      'UNAUTHENTICATED',
    );
    sse.close();

    // The task itself carries on; the revoked key just stopped watching it.
    const cancelled = await query(server, admin, `mutation ($id: ID!) { cancelTask(id: $id) { __typename } }`, { id });
    expect(cancelled.cancelTask.__typename).toBe('CancelTaskSuccess');
    expect((await waitForTask(server, admin, id)).state).toBe('CANCELLED');
  });

  test('taskEvents of a revoked key ends with UNAUTHENTICATED', async () => {
    const created = await query(
      server,
      admin,
      `mutation { createApiKey(input: { name: "events revoked", role: MEMBER }) {
        ... on CreateApiKeySuccess { token apiKey { id } } } }`,
    );
    const member = created.createApiKey.token as string;
    const listening = nextListen(server, 'organisation');
    const events = follow(wsClient(server, member), TASK_EVENTS, {});
    await listening;
    await query(server, admin, `mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }`, {
      id: created.createApiKey.apiKey.id,
    });
    const outcome = await events.outcome;
    const codes = [
      ...outcome.results.flatMap((result) => result.errors ?? []).map((error) => error.extensions?.code),
      ...(Array.isArray(outcome.error) ? outcome.error.map((error) => error.extensions?.code) : []),
    ];
    expect(codes, JSON.stringify(outcome)).toContain('UNAUTHENTICATED');
  });

  test('a query over graphql-ws runs with the key of connection_init', async () => {
    const results = await subscribeOverWebSocket(wsClient(server, admin), '{ viewer { organisation key { role } } }');
    expect(results).toEqual([{ data: { viewer: { organisation: 'default', key: { role: 'ADMIN' } } } }]);
  });
});

test('stopping the server completes open subscriptions on both transports', async () => {
  const server = await startServer({ shutdownGraceMs: 0 });
  const admin = server.adminToken;
  const long = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 5000, steps: 1 } });
  const id = long.task.id as string;
  const overWebSocket = follow(wsClient(server, admin), TASK_UPDATED, { id });
  await overWebSocket.first;
  const sse = await openSse(server, admin, TASK_UPDATED, { id });
  expect(await sse.next()).not.toBeNull();
  const sseEnd = (async () => {
    for (let message = await sse.next(); message; message = await sse.next());
    return 'ended';
  })();

  await server.stop();

  const outcome = await overWebSocket.outcome;
  // Completed, or at worst the clean close of a going-away server, never an internal error.
  if (outcome.ended === 'error') expect((outcome.error as { code?: number }).code).toBe(1001);
  else expect(outcome.ended).toBe('complete');
  // The only error is the last message, SHUTTING_DOWN, which tells the client why the stream ended.
  expect(outcome.results.slice(0, -1).every((result) => result.errors === undefined)).toBe(true);
  const last = outcome.results.at(-1)!;
  if (last.errors) expect(last.errors.map((error) => error.extensions?.code)).toEqual(['SHUTTING_DOWN']);
  await expect(sseEnd).resolves.toBe('ended');
  const unreachable = await graphql(server, admin, '{ __typename }').then(
    () => 'answered',
    () => 'refused',
  );
  expect(unreachable).toBe('refused');
});

describe('a subscriber that stops reading', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ concurrency: 1 });
  });

  afterAll(async () => {
    await server.stop();
  });

  test(`gets SLOW_CONSUMER once it leaves ${MAX_BUFFERED_EVENTS} events unread, and the stream completes`, async () => {
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    const messages: { type: string; payload?: any }[] = [];
    const acknowledged = new Promise((resolve) => socket.once('message', resolve));
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${server.adminToken}` } }));
    await acknowledged;
    // Large messages, so that the connection's buffers fill after a few hundred of them.
    const wide = Array.from({ length: 19 }, (_, index) => `p${index}: params`).join(' ');
    const listening = nextListen(server, 'organisation');
    socket.send(
      JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `subscription { taskEvents { kind task { id ${wide} } } }` } }),
    );
    await listening;
    // The client stops reading: the server's writes back up, and the subscription stops being pulled.
    (socket as unknown as { _socket: import('node:net').Socket })._socket.pause();

    const params = { message: 'x'.repeat(500) };
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const inputs = Array.from({ length: MAX_BATCH_SUBMIT }, () => ({ service: 'demo', action: 'echo', params, runAt }));
    const batches = Math.ceil((MAX_BUFFERED_EVENTS * 1.5) / MAX_BATCH_SUBMIT);
    for (let batch = 0; batch < batches; batch += 1) {
      const data = await query(server, server.adminToken, 'mutation ($inputs: [SubmitTaskInput!]!) { submitTasks(inputs: $inputs) { __typename } }', {
        inputs,
      });
      expect(data.submitTasks.__typename).toBe('SubmitTasksSuccess');
    }

    (socket as unknown as { _socket: import('node:net').Socket })._socket.resume();
    await expect.poll(() => messages.some((message) => message.type === 'complete'), { timeout: 15_000 }).toBe(true);
    const nexts = messages.filter((message) => message.type === 'next');
    const last = nexts.at(-1)!;
    expect(last.payload.errors?.[0]?.extensions).toMatchObject({ code: 'SLOW_CONSUMER', limit: MAX_BUFFERED_EVENTS });
    // The events between the stall and the end were dropped, not sent.
    expect(nexts.length).toBeLessThan(batches * MAX_BATCH_SUBMIT);
    socket.close();
  }, 60_000);
});
