import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Catalog, defineAction, defineService, TaskFailure } from '../src/catalog/index.js';
import { createEngine, type Engine } from '../src/engine/index.js';
import { ValidationError } from '../src/domain/errors.js';
import type { Actor } from '../src/domain/types.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import {
  createKey,
  globalId,
  graphql,
  nextListen,
  query,
  startServer,
  temporaryDatabase,
  wsClient,
  type TestServer,
} from './helpers.js';

const CREATE_ALLOCATION = `
  mutation ($input: CreateAllocationInput!) {
    createAllocation(input: $input) {
      __typename
      ... on CreateAllocationSuccess {
        allocation { id name service action instances timeoutMs busy executions dateCreated }
      }
      ... on Error { code message }
      ... on ValidationError { field }
    }
  }`;

const GENERATE_URL = `
  mutation ($allocationId: ID!, $ttlSeconds: Int) {
    generateExecutionUrl(allocationId: $allocationId, ttlSeconds: $ttlSeconds) {
      __typename
      ... on GenerateExecutionUrlSuccess { executionUrl { url token tokenId expiresAt } }
      ... on Error { code message }
      ... on ValidationError { field }
    }
  }`;

const DELETE_ALLOCATION = `
  mutation ($id: ID!) {
    deleteAllocation(id: $id) {
      __typename
      ... on DeleteAllocationSuccess { allocation { id } }
      ... on Error { code message }
    }
  }`;

const REVOKE_TOKEN = `
  mutation ($id: ID!) {
    revokeExecutionToken(id: $id) {
      __typename
      ... on RevokeExecutionTokenSuccess { tokenId allocation { id } }
      ... on Error { code message }
    }
  }`;

const ALLOCATIONS = `{ allocations { id name service action instances timeoutMs busy executions dateCreated } }`;

const PAYMENT = { amount: 50, currency: 'EUR', country: 'FR', cardAgeDays: 400 };

interface ExecutionUrl {
  url: string;
  token: string;
  tokenId: string;
  expiresAt: string;
}

interface CallResponse {
  status: number;
  headers: Headers;
  body: any;
}

/** A POST to an execution URL, as a client of the issue would send it. */
async function call(
  url: string,
  token: string | null,
  params: unknown,
  init: { contentType?: string; rawBody?: string; method?: string } = {},
): Promise<CallResponse> {
  const headers: Record<string, string> = { 'content-type': init.contentType ?? 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const method = init.method ?? 'POST';
  const response = await fetch(url, {
    method,
    headers,
    body: method === 'GET' ? undefined : (init.rawBody ?? JSON.stringify(params)),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

function expectUnauthorized(response: CallResponse): void {
  expect(response.status, JSON.stringify(response.body)).toBe(401);
  expect(response.body.error.code).toBe('UNAUTHENTICATED');
}

describe('real-time execution over GraphQL and HTTP', () => {
  let server: TestServer;
  let admin: string;
  let member: string;
  let otherAdmin: string;

  beforeAll(async () => {
    server = await startServer();
    admin = server.adminToken;
    member = await createKey(server, 'default', 'MEMBER');
    otherAdmin = await createKey(server, 'globex', 'ADMIN');
  });

  afterAll(async () => {
    await server.stop();
  });

  async function createAllocation(input: Record<string, unknown>, token = admin): Promise<Record<string, any>> {
    return (await query(server, token, CREATE_ALLOCATION, { input })).createAllocation;
  }

  async function allocate(input: Record<string, unknown>): Promise<Record<string, any>> {
    const created = await createAllocation({ name: 'allocation', ...input });
    expect(created.__typename, JSON.stringify(created)).toBe('CreateAllocationSuccess');
    return created.allocation;
  }

  async function generateUrl(allocationId: string, ttlSeconds?: number, token = admin): Promise<Record<string, any>> {
    return (await query(server, token, GENERATE_URL, { allocationId, ttlSeconds })).generateExecutionUrl;
  }

  async function executionUrl(allocationId: string, ttlSeconds?: number): Promise<ExecutionUrl> {
    const generated = await generateUrl(allocationId, ttlSeconds);
    expect(generated.__typename, JSON.stringify(generated)).toBe('GenerateExecutionUrlSuccess');
    return generated.executionUrl;
  }

  async function fraudScoreUrl(): Promise<ExecutionUrl & { allocationId: string }> {
    const allocation = await allocate({ service: 'demo', action: 'fraud-score', instances: 2 });
    return { ...(await executionUrl(allocation.id)), allocationId: allocation.id };
  }

  /**
   * Listens on taskEvents before anything is called: a call is recorded (and its events published)
   * just after it was answered, so the event for its task id is the barrier to wait on.
   */
  async function listenForTaskEvents(token: string) {
    const client = wsClient(server, token);
    const listening = nextListen(server, 'organisation');
    const iterator = client.iterate<{ taskEvents: { kind: string; task: { id: string; state: string } } }>({
      query: `subscription { taskEvents { kind task { id state } } }`,
    });
    await listening;
    return {
      async until(taskId: string, kind?: string) {
        const seen: { kind: string; task: { id: string; state: string } }[] = [];
        for (;;) {
          const { value, done } = await iterator.next();
          if (done) throw new Error(`taskEvents ended early after ${JSON.stringify(seen)}`);
          expect(value.errors, JSON.stringify(value.errors)).toBeUndefined();
          const event = value.data!.taskEvents;
          seen.push(event);
          if (event.task.id === taskId && (kind === undefined || event.kind === kind)) return event;
        }
      },
      close: () => iterator.return?.(),
    };
  }

  describe('allocations', () => {
    test('an ADMIN creates an allocation of demo.fraud-score; allocations and node() show it idle', async () => {
      const before = Date.now();
      const created = await createAllocation({ name: 'checkout scoring', service: 'demo', action: 'fraud-score', instances: 8 });
      expect(created.__typename, JSON.stringify(created)).toBe('CreateAllocationSuccess');
      const allocation = created.allocation;
      expect(allocation).toMatchObject({
        name: 'checkout scoring',
        service: 'demo',
        action: 'fraud-score',
        instances: 8,
        timeoutMs: 30000,
        busy: 0,
        executions: 0,
      });
      const dateCreated = Date.parse(allocation.dateCreated);
      expect(dateCreated).toBeGreaterThanOrEqual(before - 1000);
      expect(dateCreated).toBeLessThanOrEqual(Date.now() + 1000);

      const listed = (await query(server, admin, ALLOCATIONS)).allocations;
      expect(listed).toContainEqual(allocation);

      const node = (
        await query(server, admin, `query ($id: ID!) { node(id: $id) { __typename ... on Allocation { id name instances } } }`, {
          id: allocation.id,
        })
      ).node;
      expect(node).toEqual({ __typename: 'Allocation', id: allocation.id, name: 'checkout scoring', instances: 8 });
    });

    test.each([
      ['an unknown service', { service: 'nope', action: 'echo' }, 'INVALID_SERVICE', 'service'],
      ['an unknown action', { service: 'demo', action: 'nope' }, 'INVALID_ACTION', 'action'],
      ['an action without REALTIME (demo.fetch-data)', { service: 'demo', action: 'fetch-data' }, 'INVALID_ACTION', 'action'],
      ['0 instances', { service: 'demo', action: 'echo', instances: 0 }, 'INVALID', 'instances'],
      ['65 instances', { service: 'demo', action: 'echo', instances: 65 }, 'INVALID', 'instances'],
    ])('createAllocation refuses %s', async (_case, input, code, field) => {
      const countBefore = (await query(server, admin, ALLOCATIONS)).allocations.length;
      const refused = await createAllocation({ name: 'refused', instances: 1, ...input });
      expect(refused).toMatchObject({ __typename: 'ValidationError', code, field });
      expect((await query(server, admin, ALLOCATIONS)).allocations).toHaveLength(countBefore);
    });

    test('a MEMBER key gets FORBIDDEN on every allocation operation', async () => {
      const allocation = await allocate({ service: 'demo', action: 'echo', instances: 1 });
      const { tokenId } = await executionUrl(allocation.id);
      const operations: [string, Record<string, unknown>][] = [
        [CREATE_ALLOCATION, { input: { name: 'm', service: 'demo', action: 'echo', instances: 1 } }],
        [ALLOCATIONS, {}],
        [GENERATE_URL, { allocationId: allocation.id }],
        [DELETE_ALLOCATION, { id: allocation.id }],
        [REVOKE_TOKEN, { id: tokenId }],
      ];
      for (const [text, variables] of operations) {
        const response = await graphql(server, member, text, variables);
        expect(response.body.errors?.map((error) => error.extensions?.code), text).toEqual(['FORBIDDEN']);
      }
      // None of them had an effect: the allocation is still there, as is its only execution token.
      const listed = (await query(server, admin, ALLOCATIONS)).allocations;
      expect(listed.map((entry: { id: string }) => entry.id)).toContain(allocation.id);
      expect(listed.filter((entry: { name: string }) => entry.name === 'm')).toEqual([]);
    });
  });

  describe('generateExecutionUrl', () => {
    test('gives an absolute URL on the server origin, a token and an expiry about ttlSeconds ahead', async () => {
      const allocation = await allocate({ service: 'demo', action: 'echo', instances: 1 });
      const before = Date.now();
      const generated = await executionUrl(allocation.id, 120);
      const origin = new URL(server.url).origin;
      expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(generated.url.startsWith(`${origin}/execute/`), generated.url).toBe(true);
      expect(generated.token.length).toBeGreaterThan(16);
      expect(generated.tokenId).toEqual(expect.any(String));
      const expiresAt = Date.parse(generated.expiresAt);
      expect(expiresAt).toBeGreaterThan(before);
      expect(expiresAt).toBeLessThan(before + 120_000 + 60_000);
      expect(expiresAt).toBeGreaterThan(before + 120_000 - 60_000);
    });

    test('without ttlSeconds the token lasts an hour', async () => {
      const allocation = await allocate({ service: 'demo', action: 'echo', instances: 1 });
      const before = Date.now();
      const expiresAt = Date.parse((await executionUrl(allocation.id)).expiresAt);
      expect(expiresAt).toBeGreaterThan(before + 3600_000 - 60_000);
      expect(expiresAt).toBeLessThan(before + 3600_000 + 60_000);
    });

    test.each([0, 30 * 24 * 3600 + 1])('refuses ttlSeconds %i', async (ttlSeconds) => {
      const allocation = await allocate({ service: 'demo', action: 'echo', instances: 1 });
      const refused = await generateUrl(allocation.id, ttlSeconds);
      expect(refused).toMatchObject({ __typename: 'ValidationError', code: 'INVALID', field: 'ttlSeconds' });
    });

    test('an unknown or malformed allocation id is not found', async () => {
      for (const allocationId of [globalId('Allocation', 999_999), 'not-an-id', globalId('Task', 1)]) {
        const refused = await generateUrl(allocationId);
        expect(refused, allocationId).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
      }
    });

    test('with publicUrl configured, the URL starts with it', async () => {
      const behindProxy = await startServer({ publicUrl: 'https://tasks.example.com' });
      try {
        const created = (
          await query(behindProxy, behindProxy.adminToken, CREATE_ALLOCATION, {
            input: { name: 'proxied', service: 'demo', action: 'echo', instances: 1 },
          })
        ).createAllocation;
        expect(created.__typename).toBe('CreateAllocationSuccess');
        const generated = (await query(behindProxy, behindProxy.adminToken, GENERATE_URL, { allocationId: created.allocation.id }))
          .generateExecutionUrl;
        expect(generated.__typename).toBe('GenerateExecutionUrlSuccess');
        expect(generated.executionUrl.url.startsWith('https://tasks.example.com/execute/'), generated.executionUrl.url).toBe(
          true,
        );
      } finally {
        await behindProxy.stop();
      }
    });
  });

  describe('calls to an execution URL', () => {
    test('demo.fraud-score answers 200 with its scored result, deterministically', async () => {
      const { url, token } = await fraudScoreUrl();
      const first = await call(url, token, PAYMENT);
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(first.headers.get('content-type')).toContain('application/json');
      expect(first.body).toEqual({
        taskId: expect.any(String),
        state: 'SUCCEEDED',
        results: [
          {
            name: 'result',
            contentType: 'application/json',
            data: { score: expect.any(Number), decision: expect.any(String), reasons: [] },
          },
        ],
        logs: [],
        durationMs: expect.any(Number),
      });
      const data = first.body.results[0].data;
      expect(data.score).toBeGreaterThanOrEqual(0);
      expect(data.score).toBeLessThanOrEqual(1);
      expect(['approve', 'review', 'decline']).toContain(data.decision);
      expect(first.body.durationMs).toBeGreaterThanOrEqual(0);

      const second = await call(url, token, PAYMENT);
      expect(second.status).toBe(200);
      expect(second.body.results[0].data).toEqual(data);
      expect(second.body.taskId).not.toBe(first.body.taskId);

      // A risky payment scores differently: the handler does read its params.
      const risky = await call(url, token, { amount: 9000, currency: 'USD', country: 'NG', cardAgeDays: 2 });
      expect(risky.status).toBe(200);
      expect(risky.body.results[0].data.decision).toBe('decline');
      expect(risky.body.results[0].data.reasons.length).toBeGreaterThan(0);
    });

    test.each([
      ['a missing amount', { currency: 'EUR', country: 'FR' }, 'MISSING_PARAM', 'amount'],
      ['currency XXX', { ...PAYMENT, currency: 'XXX' }, 'INVALID_PARAMETER_VALUE', 'currency'],
      ['an unknown parameter', { ...PAYMENT, colour: 'blue' }, 'INVALID', 'colour'],
      ['a JSON array', [PAYMENT], 'INVALID', 'params'],
    ])('%s is a 400 naming the field', async (_case, params, code, field) => {
      const { url, token } = await fraudScoreUrl();
      const refused = await call(url, token, params);
      expect(refused.status, JSON.stringify(refused.body)).toBe(400);
      expect(refused.body).toEqual({ error: { code, field, message: expect.any(String) } });
    });

    test('a body that is not JSON, or not sent as JSON, is a 400 INVALID', async () => {
      const { url, token } = await fraudScoreUrl();
      const broken = await call(url, token, null, { rawBody: '{"amount": 1,' });
      expect(broken.status).toBe(400);
      expect(broken.body.error.code).toBe('INVALID');
      const plain = await call(url, token, null, { rawBody: JSON.stringify(PAYMENT), contentType: 'text/plain' });
      expect(plain.status).toBe(400);
      expect(plain.body.error.code).toBe('INVALID');
      // The same body sent as JSON is fine: the refusals were about the body, not the token.
      expect((await call(url, token, PAYMENT)).status).toBe(200);
    });

    test('a body over 1 MiB is a 413', async () => {
      const { url, token } = await fraudScoreUrl();
      const padding = 'x'.repeat(1024 * 1024);
      const tooLarge = await call(url, token, null, { rawBody: JSON.stringify({ ...PAYMENT, padding }) });
      expect(tooLarge.status).toBe(413);
      expect(tooLarge.body.error.code).toBe('LIMIT_EXCEEDED');
    });

    test('GET on an execution URL is a 405', async () => {
      const { url, token } = await fraudScoreUrl();
      const response = await call(url, token, null, { method: 'GET' });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
    });

    test('401 without an Authorization header and with an unknown token', async () => {
      const { url, token } = await fraudScoreUrl();
      expectUnauthorized(await call(url, null, PAYMENT));
      expectUnauthorized(await call(url, 'tpx_not_a_real_token_000000000000', PAYMENT));
      expectUnauthorized(await call(url, admin, PAYMENT));
      expect((await call(url, token, PAYMENT)).status).toBe(200);
    });

    test('401 once the token has expired', async () => {
      const { allocationId } = await fraudScoreUrl();
      const { url, token, expiresAt } = await executionUrl(allocationId, 1);
      const first = await call(url, token, PAYMENT);
      // The token is valid at first (unless the machine stalled past its second of life).
      if (Date.now() < Date.parse(expiresAt)) expect(first.status).toBe(200);
      let last = first;
      for (let attempt = 0; attempt < 100 && last.status !== 401; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        last = await call(url, token, PAYMENT);
      }
      expectUnauthorized(last);
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
      expectUnauthorized(await call(url, token, PAYMENT));
    });

    test('401 once the token is revoked; another token of the allocation still works', async () => {
      const { url, token, tokenId, allocationId } = await fraudScoreUrl();
      const other = await executionUrl(allocationId);
      expect((await call(url, token, PAYMENT)).status).toBe(200);

      const revoked = (await query(server, admin, REVOKE_TOKEN, { id: tokenId })).revokeExecutionToken;
      expect(revoked).toEqual({ __typename: 'RevokeExecutionTokenSuccess', tokenId, allocation: { id: allocationId } });
      expectUnauthorized(await call(url, token, PAYMENT));
      expect((await call(other.url, other.token, PAYMENT)).status).toBe(200);
    });

    test('401 once the allocation is deleted, which allocations no longer lists', async () => {
      const { url, token, allocationId } = await fraudScoreUrl();
      expect((await call(url, token, PAYMENT)).status).toBe(200);

      const deleted = (await query(server, admin, DELETE_ALLOCATION, { id: allocationId })).deleteAllocation;
      expect(deleted).toEqual({ __typename: 'DeleteAllocationSuccess', allocation: { id: allocationId } });
      expectUnauthorized(await call(url, token, PAYMENT));
      const listed = (await query(server, admin, ALLOCATIONS)).allocations;
      expect(listed.map((entry: { id: string }) => entry.id)).not.toContain(allocationId);
      const again = (await query(server, admin, DELETE_ALLOCATION, { id: allocationId })).deleteAllocation;
      expect(again).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
      const newUrl = await generateUrl(allocationId);
      expect(newUrl).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    });

    test("401 for a token of allocation A sent to allocation B's URL", async () => {
      const a = await fraudScoreUrl();
      const b = await fraudScoreUrl();
      expect(a.url).not.toBe(b.url);
      expectUnauthorized(await call(b.url, a.token, PAYMENT));
      expectUnauthorized(await call(a.url, b.token, PAYMENT));
      expect((await call(a.url, a.token, PAYMENT)).status).toBe(200);
      expect((await call(b.url, b.token, PAYMENT)).status).toBe(200);
    });

    test("another organisation cannot see, delete or mint URLs for an allocation", async () => {
      const { allocationId, tokenId, url, token } = await fraudScoreUrl();

      const deleted = (await query(server, otherAdmin, DELETE_ALLOCATION, { id: allocationId })).deleteAllocation;
      expect(deleted).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
      const generated = await generateUrl(allocationId, undefined, otherAdmin);
      expect(generated).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
      const revoked = (await query(server, otherAdmin, REVOKE_TOKEN, { id: tokenId })).revokeExecutionToken;
      expect(revoked).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
      const node = (await query(server, otherAdmin, `query ($id: ID!) { node(id: $id) { id } }`, { id: allocationId })).node;
      expect(node).toBeNull();

      // globex has an allocation of its own, and only that one is listed.
      const own = (
        await query(server, otherAdmin, CREATE_ALLOCATION, {
          input: { name: 'globex', service: 'demo', action: 'echo', instances: 1 },
        })
      ).createAllocation;
      expect(own.__typename).toBe('CreateAllocationSuccess');
      const listed = (await query(server, otherAdmin, ALLOCATIONS)).allocations;
      expect(listed.map((entry: { id: string }) => entry.id)).toEqual([own.allocation.id]);

      // Nothing globex did touched the allocation: its token still opens it.
      expect((await call(url, token, PAYMENT)).status).toBe(200);
    });

    test('a handler that fails answers 422 with state FAILED and its error', async () => {
      const allocation = await allocate({ service: 'demo', action: 'fail', instances: 1 });
      const { url, token } = await executionUrl(allocation.id);
      const failed = await call(url, token, { code: 'CARD_DECLINED' });
      expect(failed.status).toBe(422);
      expect(failed.body).toMatchObject({
        state: 'FAILED',
        results: [],
        error: { code: 'CARD_DECLINED', message: 'The demo action failed as asked.' },
      });
      expect(typeof failed.body.taskId).toBe('string');
    });

    test('a busy allocation answers 503 with Retry-After once realtimeWaitMs has passed', async () => {
      const allocation = await allocate({ service: 'demo', action: 'sleep', instances: 1 });
      const { url, token } = await executionUrl(allocation.id);
      const responses = await Promise.all([
        call(url, token, { ms: 1000, steps: 1 }),
        call(url, token, { ms: 1000, steps: 1 }),
      ]);
      const statuses = responses.map((response) => response.status).sort();
      expect(statuses, JSON.stringify(responses.map((response) => response.body))).toEqual([200, 503]);
      const busy = responses.find((response) => response.status === 503)!;
      expect(busy.body.error.code).toBe('BUSY');
      expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const ran = responses.find((response) => response.status === 200)!;
      expect(ran.body.results).toEqual([{ name: 'result', contentType: 'application/json', data: { sleptMs: 1000 } }]);
      expect(ran.body.logs).toEqual([expect.objectContaining({ level: 'INFO', message: 'step 1 of 1' })]);
    });

    test('a call past timeoutMs is a 504 TIMEOUT, and the handler saw its AbortSignal', async () => {
      const allocation = await allocate({ service: 'demo', action: 'sleep', instances: 1, timeoutMs: 200 });
      expect(allocation.timeoutMs).toBe(200);
      const { url, token } = await executionUrl(allocation.id);
      const events = await listenForTaskEvents(admin);

      const timedOut = await call(url, token, { ms: 5000, steps: 1 });
      expect(timedOut.status, JSON.stringify(timedOut.body)).toBe(504);
      expect(timedOut.body).toMatchObject({ state: 'FAILED', error: { code: 'TIMEOUT' }, results: [] });
      const taskId = timedOut.body.taskId as string;

      // A timed-out call is recorded once its handler settled: its CREATED event is the barrier.
      await events.until(taskId);
      await events.close();
      const task = (
        await query(
          server,
          admin,
          `query ($id: ID!) { task(id: $id) { id execution state error { code } logs { edges { node { level message } } } } }`,
          { id: taskId },
        )
      ).task;
      expect(task).toMatchObject({ id: taskId, execution: 'REALTIME', state: 'FAILED', error: { code: 'TIMEOUT' } });
      expect(task.logs.edges.map((edge: { node: unknown }) => edge.node)).toContainEqual({
        level: 'WARN',
        message: 'interrupted during step 1 of 1: TIMEOUT',
      });

      // The instance is free again once the handler stopped.
      const next = await call(url, token, { ms: 0, steps: 1 });
      expect(next.status, JSON.stringify(next.body)).toBe(200);
    });

    test('a call is recorded as a REALTIME task, listed, announced on taskEvents and counted', async () => {
      const { url, token, allocationId } = await fraudScoreUrl();
      const events = await listenForTaskEvents(admin);

      const answered = await call(url, token, PAYMENT);
      expect(answered.status).toBe(200);
      const taskId = answered.body.taskId as string;
      const event = await events.until(taskId);
      await events.close();
      expect(['CREATED', 'STATE_CHANGED']).toContain(event.kind);

      const task = (
        await query(
          server,
          admin,
          `query ($id: ID!) {
            task(id: $id) {
              id execution state type service params
              results { name contentType retrieved }
              allocation { id executions }
            }
          }`,
          { id: taskId },
        )
      ).task;
      expect(task).toEqual({
        id: taskId,
        execution: 'REALTIME',
        state: 'SUCCEEDED',
        type: 'fraud-score',
        service: 'demo',
        params: PAYMENT,
        results: [{ name: 'result', contentType: 'application/json', retrieved: true }],
        allocation: { id: allocationId, executions: 1 },
      });

      const tasks = (await query(server, admin, `{ tasks(first: 50) { edges { node { id execution } } } }`)).tasks;
      expect(tasks.edges.map((edge: { node: unknown }) => edge.node)).toContainEqual({ id: taskId, execution: 'REALTIME' });

      const listed = (await query(server, admin, ALLOCATIONS)).allocations;
      expect(listed.find((entry: { id: string }) => entry.id === allocationId)).toMatchObject({ executions: 1, busy: 0 });
    });
  });
});

describe('real-time execution in the engine', () => {
  let prepareCalls = 0;
  const catalog = new Catalog([
    defineService({
      slug: 'model',
      name: 'Model',
      actions: [
        defineAction({
          slug: 'predict',
          name: 'Predict',
          execution: ['REALTIME'],
          parameters: [],
          prepare: () => ({ instance: ++prepareCalls }),
          handler: ({ prepared }) => prepared,
        }),
        defineAction({
          slug: 'broken',
          name: 'Broken',
          execution: ['REALTIME'],
          parameters: [],
          prepare: () => {
            throw new Error('model file missing');
          },
          handler: () => null,
        }),
        defineAction({
          slug: 'refuse',
          name: 'Refuse',
          execution: ['REALTIME'],
          parameters: [],
          handler: () => {
            throw new TaskFailure('NOPE', 'refused on purpose');
          },
        }),
      ],
    }),
  ]);

  let databasePath: Promise<string> | null = null;
  let storage: Storage | null = null;
  let engine: Engine | null = null;

  /** One database for every open() of the describe: what one engine recorded, the next one reads. */
  async function open(realtimeWaitMs = 250): Promise<{ engine: Engine; actor: Actor }> {
    databasePath ??= temporaryDatabase();
    storage = await openStorage(await databasePath);
    engine = createEngine({ storage, catalog, realtimeWaitMs });
    const { apiKey, organisation } = await engine.provisionApiKey({ organisation: 'acme', role: 'ADMIN', name: `admin-${Date.now()}` });
    await engine.start();
    return { engine, actor: { organisationId: organisation.id, keyId: apiKey.id, role: 'ADMIN' } };
  }

  async function close(): Promise<void> {
    await engine?.stop(100);
    await storage?.close();
    engine = null;
    storage = null;
  }

  afterAll(close);

  test('prepare() runs once per instance, not per call, and again after a restart', async () => {
    const first = await open();
    const allocation = await first.engine.createAllocation(first.actor, {
      name: 'predictor',
      service: 'model',
      action: 'predict',
      instances: 3,
    });
    expect(prepareCalls).toBe(3);
    const { token } = await first.engine.generateExecutionToken(first.actor, allocation.id, 60);
    const revoked = await first.engine.generateExecutionToken(first.actor, allocation.id, 60);
    await first.engine.revokeExecutionToken(first.actor, revoked.executionToken.id);

    const seenInstances = new Set<number>();
    for (let index = 0; index < 5; index++) {
      const outcome = await first.engine.execute(allocation.id, token, {});
      expect(outcome).toMatchObject({ kind: 'finished', state: 'SUCCEEDED', error: null, timedOut: false });
      if (outcome.kind !== 'finished') throw new Error('unreachable');
      seenInstances.add((outcome.results[0]!.data as { instance: number }).instance);
    }
    expect(prepareCalls).toBe(3);
    for (const instance of seenInstances) expect([1, 2, 3]).toContain(instance);
    await close();

    const second = await open();
    expect(prepareCalls).toBe(6);
    const outcome = await second.engine.execute(allocation.id, token, {});
    expect(outcome).toMatchObject({ kind: 'finished', state: 'SUCCEEDED' });
    if (outcome.kind !== 'finished') throw new Error('unreachable');
    expect([4, 5, 6]).toContain((outcome.results[0]!.data as { instance: number }).instance);
    expect(prepareCalls).toBe(6);
    // A token revoked before the restart stays revoked after it.
    expect(await second.engine.execute(allocation.id, revoked.token, {})).toEqual({ kind: 'unauthorized' });
    const [status] = await second.engine.getAllocations(second.actor, [allocation.id]);
    expect(status?.executions).toBe(6);
    await close();
  });

  test('a call that waits for task ids holds no instance: calls at once, past a block of ids, on one instance that none may wait for', async () => {
    const { engine: running, actor } = await open(0);
    const allocation = await running.createAllocation(actor, { name: 'one', service: 'model', action: 'predict', instances: 1 });
    const { token } = await running.generateExecutionToken(actor, allocation.id, 60);
    // A handler that returns at once frees its instance in the same turn; only a wait between
    // taking the instance and running it could leave a call behind it without one.
    const outcomes = await Promise.all(Array.from({ length: 1_200 }, () => running.execute(allocation.id, token, {})));
    expect(outcomes.filter((outcome) => outcome.kind !== 'finished')).toEqual([]);
    const ids = outcomes.map((outcome) => (outcome.kind === 'finished' ? outcome.taskId : 0));
    expect(new Set(ids).size).toBe(ids.length);
    await close();
  });

  test('a prepare() that throws makes createAllocation a ValidationError with the reason', async () => {
    const { engine: running, actor } = await open();
    const creating = running.createAllocation(actor, { name: 'broken', service: 'model', action: 'broken', instances: 2 });
    await expect(creating).rejects.toBeInstanceOf(ValidationError);
    await expect(creating).rejects.toThrow(/model file missing/);
    expect((await running.listAllocations(actor)).filter((allocation) => allocation.name === 'broken')).toEqual([]);
    await close();
  });

  test('a handler that throws TaskFailure ends FAILED with its code (the 422 case)', async () => {
    const { engine: running, actor } = await open();
    const allocation = await running.createAllocation(actor, { name: 'refuser', service: 'model', action: 'refuse', instances: 1 });
    const { token } = await running.generateExecutionToken(actor, allocation.id, 60);
    const outcome = await running.execute(allocation.id, token, {});
    expect(outcome).toMatchObject({
      kind: 'finished',
      state: 'FAILED',
      timedOut: false,
      results: [],
      error: { code: 'NOPE', message: 'refused on purpose' },
    });
    await close();
  });
});
