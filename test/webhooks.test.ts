import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { readyUrl, spawnNode, spawnTaskport } from './children.js';
import { createKey, query, startServer, submit, temporaryDatabase, testConfig, testStore, waitForTask, type TestServer } from './helpers.js';

// Webhooks end to end: a real server delivers to real HTTP receivers on 127.0.0.1, which verify
// every signature with the specification's own library, as a user's receiver would.

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Resolves once `count` deliveries have arrived. */
  waitFor(count: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

type Answer = (delivery: Delivery, response: ServerResponse, request: IncomingMessage) => void;

const answerOk: Answer = (_delivery, response) => {
  response.writeHead(204).end();
};

async function startReceiver(answer: Answer = answerOk, path = '/hooks'): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const waiters: { count: number; resolve: (deliveries: Delivery[]) => void }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const delivery = { headers: request.headers, body, json: body ? JSON.parse(body) : null };
      deliveries.push(delivery);
      answer(delivery, response, request);
      for (const waiter of [...waiters]) {
        if (deliveries.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(deliveries.slice());
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    deliveries,
    waitFor: (count) =>
      deliveries.length >= count
        ? Promise.resolve(deliveries.slice())
        : new Promise((resolve) => waiters.push({ count, resolve })),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  receivers.push(receiver);
  return receiver;
}

/** Throws unless the delivery carries a valid signature by one of `secret`'s keys. */
function verified(secret: string, delivery: Delivery): any {
  return new Webhook(secret).verify(delivery.body, {
    'webhook-id': String(delivery.headers['webhook-id']),
    'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
    'webhook-signature': String(delivery.headers['webhook-signature']),
  });
}

async function signingSecret(server: TestServer, token: string): Promise<string> {
  return (await query(server, token, `{ webhookSigningSecret }`)).webhookSigningSecret;
}

const DELIVERIES = `query ($id: ID!) {
  node(id: $id) {
    ... on Task {
      webhookDeliveries(first: 20) {
        edges { node { webhookId event url attempt outcome httpStatus durationMs error nextAttemptAt endpoint { id } } }
      }
    }
  }
}`;

async function deliveriesOf(server: TestServer, token: string, taskId: string): Promise<any[]> {
  const data = await query(server, token, DELIVERIES, { id: taskId });
  return data.node.webhookDeliveries.edges.map((edge: any) => edge.node);
}

/** A demo.echo task telling `url` of its end. */
async function echoWithWebhook(server: TestServer, url: string): Promise<string> {
  const submitted = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'x' }, webhook: { url } });
  return submitted.task.id;
}

/** The task's delivery attempts, newest first, once there are `count` of them. */
function attemptsOnceThere(server: TestServer, taskId: string, count: number): Promise<any[]> {
  return eventually(
    () => deliveriesOf(server, server.adminToken, taskId),
    (list) => list.length === count,
  );
}

/** Polls until `check` passes: deliveries are recorded just after the receiver answers. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('webhooks named at submission', () => {
  it('tells the URL that the task completed, signed with the organisation secret, and records the attempt', async () => {
    const server = await startServer();
    const receiver = await startReceiver();
    const secret = await signingSecret(server, server.adminToken);
    const submitted = await submit(server, server.adminToken, {
      service: 'demo',
      action: 'echo',
      params: { message: 'hi' },
      poll: 'poll-1',
      webhook: { url: receiver.url },
    });
    const taskId = submitted.task.id;
    const [delivery] = await receiver.waitFor(1);
    const payload = verified(secret, delivery!);
    expect(payload).toMatchObject({
      type: 'task.completed',
      data: {
        task: { id: taskId, state: 'SUCCEEDED', status: 'COMPLETED', service: 'demo', action: 'echo', poll: 'poll-1', error: null },
      },
    });
    expect(new Date(payload.timestamp).getTime()).not.toBeNaN();
    expect(payload.data.task.dateCompleted).toEqual(expect.any(String));
    // Results' metadata only: the payloads stay behind the retrieval protocol.
    for (const result of payload.data.results) expect(Object.keys(result).sort()).toEqual(['contentType', 'name']);
    expect(delivery!.headers['content-type']).toBe('application/json');
    expect(String(delivery!.headers['webhook-id'])).toMatch(/^msg_\d+$/);

    const attempts = await eventually(
      () => deliveriesOf(server, server.adminToken, taskId),
      (list) => list.length === 1,
    );
    expect(attempts).toEqual([
      expect.objectContaining({
        webhookId: delivery!.headers['webhook-id'],
        event: 'COMPLETED',
        url: receiver.url,
        attempt: 1,
        outcome: 'SUCCEEDED',
        httpStatus: 204,
        error: null,
        nextAttemptAt: null,
        endpoint: null,
      }),
    ]);
    await server.stop();
  });

  it('tells of the start, the progress and the end of one task, in that order', async () => {
    const server = await startServer();
    const receiver = await startReceiver();
    const submitted = await submit(server, server.adminToken, {
      service: 'demo',
      action: 'sleep',
      params: { ms: 300, steps: 3 },
      webhook: { url: receiver.url, events: ['STARTED', 'PROGRESS', 'COMPLETED'] },
    });
    await waitForTask(server, server.adminToken, submitted.task.id);
    const deliveries = await eventually(
      async () => receiver.deliveries,
      (list) => list.some((delivery) => delivery.json.type === 'task.completed'),
    );
    const types = deliveries.map((delivery) => delivery.json.type);
    expect(types[0]).toBe('task.started');
    expect(types.at(-1)).toBe('task.completed');
    expect(types.filter((type) => type === 'task.progress').length).toBeGreaterThanOrEqual(1);
    const progress = deliveries.filter((d) => d.json.type === 'task.progress').map((d) => d.json.data.task.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const ids = deliveries.map((delivery) => Number(String(delivery.headers['webhook-id']).slice(4)));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    await server.stop();
  });

  it('retries a failing receiver with the same webhook-id, in order, and records each attempt', async () => {
    const server = await startServer();
    let calls = 0;
    const receiver = await startReceiver((_delivery, response) => {
      calls += 1;
      response.writeHead(calls <= 2 ? 500 : 200).end('ok');
    });
    const submitted = await submit(server, server.adminToken, {
      service: 'demo',
      action: 'fail',
      params: { code: 'NOPE' },
      maxAttempts: 1,
      webhook: { url: receiver.url },
    });
    const deliveries = await receiver.waitFor(3);
    expect(new Set(deliveries.map((delivery) => delivery.headers['webhook-id'])).size).toBe(1);
    // The same message: the same bytes each time, only the timestamp and signature are new.
    expect(new Set(deliveries.map((delivery) => delivery.body)).size).toBe(1);
    expect(deliveries[0]!.json).toMatchObject({ type: 'task.completed', data: { task: { state: 'FAILED', error: { code: 'NOPE' } } } });
    const attempts = await eventually(
      () => deliveriesOf(server, server.adminToken, submitted.task.id),
      (list) => list.length === 3,
    );
    expect(attempts.map((attempt) => [attempt.attempt, attempt.outcome, attempt.httpStatus])).toEqual([
      [3, 'SUCCEEDED', 200],
      [2, 'FAILED', 500],
      [1, 'FAILED', 500],
    ]);
    expect(attempts[1].nextAttemptAt).toEqual(expect.any(String));
    expect(attempts[0].nextAttemptAt).toBeNull();
    expect(attempts[2].error).toMatch(/500/);
    await server.stop();
  });

  it('gives up after the last delay of the schedule', async () => {
    const server = await startServer({ webhooks: { ...testConfig().webhooks, retryScheduleMs: [0, 50] } });
    const receiver = await startReceiver((_delivery, response) => response.writeHead(503).end());
    const attempts = await attemptsOnceThere(server, await echoWithWebhook(server, receiver.url), 2);
    expect(attempts.map((attempt) => [attempt.attempt, attempt.outcome, attempt.nextAttemptAt])).toEqual([
      [2, 'FAILED', null],
      [1, 'FAILED', expect.any(String)],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.deliveries).toHaveLength(2);
    await server.stop();
  });

  it('ends an attempt at its timeout and records why', async () => {
    const server = await startServer({ webhooks: { ...testConfig().webhooks, timeoutMs: 300, retryScheduleMs: [0] } });
    const receiver = await startReceiver(() => {});
    const attempts = await attemptsOnceThere(server, await echoWithWebhook(server, receiver.url), 1);
    expect(attempts[0]).toMatchObject({ outcome: 'FAILED', httpStatus: null, nextAttemptAt: null });
    expect(attempts[0].error).toMatch(/timed out/);
    await server.stop();
  });

  it('does not follow a redirect to another origin', async () => {
    const server = await startServer({ webhooks: { ...testConfig().webhooks, retryScheduleMs: [0] } });
    const elsewhere = await startReceiver();
    const receiver = await startReceiver((_delivery, response) => response.writeHead(307, { location: elsewhere.url }).end());
    const attempts = await attemptsOnceThere(server, await echoWithWebhook(server, receiver.url), 1);
    expect(attempts[0]).toMatchObject({ outcome: 'FAILED', httpStatus: 307 });
    expect(attempts[0].error).toMatch(/another origin/);
    expect(elsewhere.deliveries).toHaveLength(0);
    await server.stop();
  });

  it('refuses a URL that resolves to a loopback address while private addresses are not allowed, and records it', async () => {
    const server = await startServer({ webhooks: { ...testConfig().webhooks, allowPrivate: false, retryScheduleMs: [0] } });
    const receiver = await startReceiver();
    const url = receiver.url.replace('127.0.0.1', 'localhost');
    const attempts = await attemptsOnceThere(server, await echoWithWebhook(server, url), 1);
    expect(attempts[0]).toMatchObject({ outcome: 'REFUSED', httpStatus: null });
    expect(attempts[0].error).toMatch(/loopback/);
    expect(receiver.deliveries).toHaveLength(0);
    await server.stop();
  });

  it('sends a message again on redeliverWebhook, with the same webhook-id', async () => {
    const server = await startServer();
    const receiver = await startReceiver();
    const submitted = await submit(server, server.adminToken, {
      service: 'demo',
      action: 'echo',
      params: { message: 'again' },
      webhook: { url: receiver.url },
    });
    const [first] = await receiver.waitFor(1);
    const [attempt] = await eventually(
      async () => {
        const data = await query(server, server.adminToken, `query ($id: ID!) { node(id: $id) { ... on Task { webhookDeliveries(first: 5) { edges { node { id } } } } } }`, {
          id: submitted.task.id,
        });
        return data.node.webhookDeliveries.edges.map((edge: any) => edge.node);
      },
      (list) => list.length === 1,
    );
    const redelivered = await query(
      server,
      server.adminToken,
      `mutation ($id: ID!) { redeliverWebhook(id: $id) { __typename ... on Error { message } } }`,
      { id: attempt.id },
    );
    expect(redelivered.redeliverWebhook.__typename).toBe('RedeliverWebhookSuccess');
    const [, second] = await receiver.waitFor(2);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(second!.body).toBe(first!.body);
    await server.stop();
  });
});

describe("the README's receiver", () => {
  it('verifies with node:crypto alone what the server signs, and refuses a forged message', async () => {
    const server = await startServer();
    const secret = await signingSecret(server, server.adminToken);
    const receiver = spawnNode(['examples/webhook-receiver/receiver.mjs'], { WEBHOOK_SECRET: secret, PORT: '0' });
    const url = await eventually(
      async () => /listening on (\S+)/.exec(receiver.stdout())?.[1] ?? null,
      (found) => found !== null,
    );
    const submitted = await submit(server, server.adminToken, {
      service: 'demo',
      action: 'echo',
      params: { message: 'to the example' },
      webhook: { url: url! },
    });
    const printed = await eventually(
      async () => receiver.stdout(),
      (text) => text.includes(submitted.task.id),
    );
    expect(printed).toContain(`task.completed ${submitted.task.id} SUCCEEDED`);
    const forged = await fetch(url!, {
      method: 'POST',
      headers: { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' },
      body: '{}',
    });
    expect(forged.status).toBe(401);
    receiver.process.kill('SIGTERM');
    await receiver.exited;
    await server.stop();
  });
});

describe('webhook endpoints', () => {
  const CREATE = `mutation ($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) {
      __typename
      ... on CreateWebhookEndpointSuccess { secret endpoint { id enabled disabledReason } }
      ... on Error { message }
    }
  }`;

  it("tells an endpoint of its organisation's tasks, signed with its own secret, and of no other organisation's", async () => {
    const server = await startServer();
    const receiver = await startReceiver();
    const created = (await query(server, server.adminToken, CREATE, { input: { url: receiver.url, events: ['COMPLETED'] } }))
      .createWebhookEndpoint;
    expect(created.__typename).toBe('CreateWebhookEndpointSuccess');
    const other = await createKey(server, 'other-organisation', 'ADMIN');
    const foreign = await submit(server, other, { service: 'demo', action: 'echo', params: { message: 'not yours' } });
    const own = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'yours' } });
    await waitForTask(server, other, foreign.task.id);
    const [delivery] = await receiver.waitFor(1);
    expect(verified(created.secret, delivery!).data.task.id).toBe(own.task.id);
    await waitForTask(server, server.adminToken, own.task.id);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver.deliveries).toHaveLength(1);
    const data = await query(
      server,
      server.adminToken,
      `query ($id: ID!) { node(id: $id) { ... on WebhookEndpoint { deliveries(first: 5) { edges { node { outcome endpoint { id } } } } } } }`,
      { id: created.endpoint.id },
    );
    expect(data.node.deliveries.edges).toEqual([{ node: { outcome: 'SUCCEEDED', endpoint: { id: created.endpoint.id } } }]);
    await server.stop();
  });

  it('disables an endpoint that answers 410 Gone, and sends it nothing more', async () => {
    const server = await startServer();
    const receiver = await startReceiver((_delivery, response) => response.writeHead(410).end());
    const created = (await query(server, server.adminToken, CREATE, { input: { url: receiver.url } })).createWebhookEndpoint;
    const first = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: '1' } });
    await receiver.waitFor(1);
    const endpoint = await eventually(
      async () =>
        (await query(server, server.adminToken, `query ($id: ID!) { node(id: $id) { ... on WebhookEndpoint { enabled disabledReason } } }`, {
          id: created.endpoint.id,
        })).node,
      (value) => value.enabled === false,
    );
    expect(endpoint).toEqual({ enabled: false, disabledReason: 'GONE' });
    await waitForTask(server, server.adminToken, first.task.id);
    const second = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: '2' } });
    await waitForTask(server, server.adminToken, second.task.id);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.deliveries).toHaveLength(1);
    await server.stop();
  });
});

describe('webhooks across a crash', () => {
  it('delivers, after a kill -9 and a restart, a message written before the kill, once per attempt record', async () => {
    const database = await temporaryDatabase();
    const receiver = await startReceiver();
    const token = `tp_webhook_${Date.now().toString(36)}`;
    const environment = {
      TASKPORT_DB: database,
      TASKPORT_BOOTSTRAP_TOKEN: token,
      TASKPORT_WEBHOOK_ALLOW_PRIVATE: 'true',
      TASKPORT_LEASE_SECONDS: '1',
    };
    // This process sends no webhooks: the task ends, its message waits in the outbox, and the process dies.
    const first = spawnTaskport(['serve'], { ...environment, TASKPORT_WEBHOOK_MAX_IN_FLIGHT: '0' });
    const firstUrl = await readyUrl(first);
    const firstServer = { url: firstUrl } as TestServer;
    const submitted = await submit(firstServer, token, {
      service: 'demo',
      action: 'echo',
      params: { message: 'before the kill' },
      webhook: { url: receiver.url },
    });
    await eventually(
      async () => (await query(firstServer, token, `query ($id: ID!) { node(id: $id) { ... on Task { state } } }`, { id: submitted.task.id })).node.state,
      (state) => state === 'SUCCEEDED',
    );
    first.process.kill('SIGKILL');
    await first.exited;
    expect(receiver.deliveries).toHaveLength(0);

    const second = spawnTaskport(['serve'], environment);
    const secondServer = { url: await readyUrl(second) } as TestServer;
    const [delivery] = await receiver.waitFor(1);
    expect(delivery!.json.data.task.id).toBe(submitted.task.id);
    const attempts = await eventually(
      () => deliveriesOf(secondServer, token, submitted.task.id),
      (list) => list.length >= 1,
    );
    expect(attempts).toHaveLength(receiver.deliveries.length);
    expect(attempts[0]).toMatchObject({ outcome: 'SUCCEEDED', attempt: 1 });
    second.process.kill('SIGTERM');
    await second.exited;
  });
});

describe('webhook configuration', () => {
  it('reads the retry schedule and the limits, and stops the start on a bad value, naming the variable', () => {
    const defaults = loadConfig({}).webhooks;
    expect(defaults).toEqual({
      retryScheduleMs: [0, 5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000],
      allowPrivate: false,
      maxInFlight: 16,
      timeoutMs: 15_000,
    });
    const chosen = loadConfig({
      TASKPORT_WEBHOOK_RETRY_SCHEDULE: '0s,1s,2m',
      TASKPORT_WEBHOOK_ALLOW_PRIVATE: 'true',
      TASKPORT_WEBHOOK_MAX_IN_FLIGHT: '0',
    }).webhooks;
    expect(chosen).toMatchObject({ retryScheduleMs: [0, 1000, 120_000], allowPrivate: true, maxInFlight: 0 });
    for (const [name, value] of [
      ['TASKPORT_WEBHOOK_RETRY_SCHEDULE', '5s,10s'],
      ['TASKPORT_WEBHOOK_RETRY_SCHEDULE', '0s,soon'],
      ['TASKPORT_WEBHOOK_ALLOW_PRIVATE', 'perhaps'],
      ['TASKPORT_WEBHOOK_MAX_IN_FLIGHT', '-1'],
      ['TASKPORT_WEBHOOK_TIMEOUT_MS', '10'],
    ] as const) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(name);
    }
  });
});

describe.runIf(testStore === 'postgres')('webhooks from several processes', () => {
  it('sends each message once when two processes deliver from one database', { timeout: 60_000 }, async () => {
    const database = await temporaryDatabase();
    const receiver = await startReceiver();
    const token = `tp_webhooks_${Date.now().toString(36)}`;
    const environment = { TASKPORT_DB: database, TASKPORT_BOOTSTRAP_TOKEN: token, TASKPORT_WEBHOOK_ALLOW_PRIVATE: 'true' };
    const first = spawnTaskport(['serve'], environment);
    const firstServer = { url: await readyUrl(first) } as TestServer;
    const second = spawnTaskport(['serve'], environment);
    await readyUrl(second);
    const inputs = Array.from({ length: 60 }, (_, index) => ({
      service: 'demo',
      action: 'echo',
      params: { message: `m${index}` },
      webhook: { url: receiver.url, events: ['STARTED', 'COMPLETED'] },
    }));
    const batch = await query(
      firstServer,
      token,
      `mutation ($inputs: [SubmitTaskInput!]!) { submitTasks(inputs: $inputs) { ... on SubmitTasksSuccess { tasks { id } } } }`,
      { inputs },
    );
    expect(batch.submitTasks.tasks).toHaveLength(60);
    const deliveries = await receiver.waitFor(120);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.deliveries).toHaveLength(120);
    expect(new Set(deliveries.map((delivery) => delivery.headers['webhook-id'])).size).toBe(120);
    // Each task's start reached the receiver before its end, whichever process sent each.
    const order = new Map<string, string[]>();
    for (const delivery of receiver.deliveries) {
      const id = delivery.json.data.task.id as string;
      order.set(id, [...(order.get(id) ?? []), delivery.json.type]);
    }
    for (const types of order.values()) expect(types).toEqual(['task.started', 'task.completed']);
    for (const child of [first, second]) child.process.kill('SIGTERM');
    await Promise.all([first.exited, second.exited]);
  });
});
