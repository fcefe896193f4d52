import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startTaskport } from '../src/main.js';
import { graphql, startServer, submit, temporaryDatabase, testConfig, testStore, waitForTask, wsClient, type TestServer } from './helpers.js';

const servers: TestServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

/** startServer, stopped after the test. */
async function started(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const server = await startServer(...args);
  servers.push(server);
  return server;
}

function origin(server: TestServer): string {
  return new URL(server.url).origin;
}

async function scrape(server: TestServer, headers: Record<string, string> = {}): Promise<{ status: number; text: string; type: string | null }> {
  const response = await fetch(`${origin(server)}/metrics`, { headers });
  return { status: response.status, text: await response.text(), type: response.headers.get('content-type') };
}

/** The value of the sample `name{labels}` in a Prometheus text exposition; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

/** Scrapes until `ready` accepts the exposition: counters of terminal tasks are read back in batches, and gauges cached. */
async function scrapeUntil(server: TestServer, ready: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 12_000;
  for (;;) {
    const { text } = await scrape(server);
    if (ready(text) || Date.now() > deadline) return text;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function readiness(server: TestServer): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const response = await fetch(`${origin(server)}/readyz`);
  return { status: response.status, body: (await response.json()) as never };
}

/** Forgets the newest applied migration, as a database left behind by a newer release's rollback would be. */
async function forgetNewestMigration(database: string): Promise<void> {
  if (testStore === 'postgres') {
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    try {
      await client.query('DELETE FROM drizzle.__drizzle_migrations WHERE created_at = (SELECT max(created_at) FROM drizzle.__drizzle_migrations)');
    } finally {
      await client.end();
    }
    return;
  }
  const sqlite = new Database(database);
  try {
    sqlite.pragma('busy_timeout = 5000');
    sqlite.prepare('DELETE FROM __drizzle_migrations WHERE created_at = (SELECT max(created_at) FROM __drizzle_migrations)').run();
  } finally {
    sqlite.close();
  }
}

function capturedLogger() {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, any>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('GET /readyz', () => {
  it('is 200 once started, and 503 with the reason when the worker stops or a migration is missing', async () => {
    const server = await started();
    expect(await readiness(server)).toEqual({ status: 200, body: { status: 'ready' } });

    await forgetNewestMigration(server.database);
    // The last answer is kept for a second, so that probes of any frequency cost one read a second.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const missing = await readiness(server);
    expect(missing.status).toBe(503);
    expect(missing.body.reason).toMatch(/1 migration\(s\) not applied/);

    await server.taskport.engine.stop(0);
    const draining = await readiness(server);
    expect(draining.status).toBe(503);
    expect(draining.body).toEqual({ status: 'not-ready', reason: expect.stringMatching(/worker is not running/) });
    // Liveness is another question: the process still serves.
    expect((await fetch(`${origin(server)}/healthz`)).status).toBe(200);
  });

  it('is ready without a worker on an API-only process', async () => {
    const api = await startTaskport(testConfig({ database: await temporaryDatabase() }), pino({ level: 'silent' }), { role: 'api' });
    try {
      const response = await fetch(`${new URL(api.url).origin}/readyz`);
      expect(response.status).toBe(200);
    } finally {
      await api.stop();
    }
  });
});

describe('a worker-only process', () => {
  it('serves /readyz and /metrics on TASKPORT_METRICS_PORT, and nothing else there', async () => {
    const worker = await startTaskport(testConfig({ database: await temporaryDatabase(), metricsPort: 0 }), pino({ level: 'silent' }), {
      role: 'worker',
    });
    try {
      expect(worker.metricsPort).toEqual(expect.any(Number));
      const base = `http://127.0.0.1:${worker.metricsPort}`;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('taskport_tasks_processed_total');
      expect((await fetch(`${base}/graphql`)).status).toBe(404);
    } finally {
      await worker.stop();
    }
  });
});

describe('GET /metrics', () => {
  it('reports tasks by state, queues, processed tasks and their durations, operations and the event loop', async () => {
    const server = await started();
    const done = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'hi' } });
    expect((await waitForTask(server, server.adminToken, done.task.id)).state).toBe('SUCCEEDED');
    const failed = await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {}, maxAttempts: 1 });
    expect((await waitForTask(server, server.adminToken, failed.task.id)).state).toBe('FAILED');
    // A task that waits: due in an hour, it is in the queue but not overdue.
    await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'later' }, runAt: new Date(Date.now() + 3_600_000).toISOString() });

    const text = await scrapeUntil(
      server,
      (exposition) =>
        sample(exposition, 'taskport_tasks_processed_total', { service: 'demo', action: 'fail', outcome: 'FAILED' }) === 1 &&
        sample(exposition, 'taskport_tasks', { state: 'PENDING' }) === 1,
    );
    expect(sample(text, 'taskport_tasks', { state: 'SUCCEEDED' })).toBe(1);
    expect(sample(text, 'taskport_tasks', { state: 'FAILED' })).toBe(1);
    expect(sample(text, 'taskport_tasks', { state: 'PENDING' })).toBe(1);
    expect(sample(text, 'taskport_tasks', { state: 'PROCESSING' })).toBe(0);
    expect(sample(text, 'taskport_queue_depth', { service: 'demo', action: 'echo' })).toBe(1);
    expect(sample(text, 'taskport_queue_oldest_pending_age_seconds', { service: 'demo', action: 'echo' })).toBe(0);
    expect(sample(text, 'taskport_tasks_processed_total', { service: 'demo', action: 'echo', outcome: 'SUCCEEDED' })).toBe(1);
    expect(sample(text, 'taskport_task_duration_seconds_count', { service: 'demo', action: 'echo' })).toBe(1);
    expect(sample(text, 'taskport_graphql_operation_duration_seconds_count', { type: 'mutation', operation: 'submitTask' })).toBe(3);
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).toContain('# TYPE taskport_rate_limit_rejections_total counter');
    expect(text).toContain('# TYPE taskport_realtime_calls_total counter');
  });

  it('labels operations by their root fields, never by the name a client chose', async () => {
    const server = await started();
    for (let index = 0; index < 5; index += 1) {
      const response = await graphql(server, server.adminToken, `query Probe${index}x${Date.now()} { __typename viewer: viewer { __typename } }`);
      expect(response.status).toBe(200);
    }
    const { text } = await scrape(server);
    expect(sample(text, 'taskport_graphql_operation_duration_seconds_count', { type: 'query', operation: '__typename,viewer' })).toBe(5);
    expect(text).not.toMatch(/Probe\d/);
  });

  it('counts open subscriptions', async () => {
    const server = await started();
    const client = wsClient(server, server.adminToken);
    const later = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'x' }, runAt: new Date(Date.now() + 3_600_000).toISOString() });
    const before = sample((await scrape(server)).text, 'taskport_open_subscriptions') ?? 0;
    const unsubscribe = client.subscribe({ query: 'subscription ($id: ID!) { taskUpdated(id: $id) { state } }', variables: { id: later.task.id } }, {
      next: () => {},
      error: () => {},
      complete: () => {},
    });
    const open = await scrapeUntil(server, (text) => sample(text, 'taskport_open_subscriptions') === before + 1);
    expect(sample(open, 'taskport_open_subscriptions')).toBe(before + 1);
    unsubscribe();
    const closed = await scrapeUntil(server, (text) => sample(text, 'taskport_open_subscriptions') === before);
    expect(sample(closed, 'taskport_open_subscriptions')).toBe(before);
  });

  it('requires the bearer token when TASKPORT_METRICS_TOKEN is set', async () => {
    const token = 'metrics-secret-0123456789';
    const server = await started({ metricsToken: token });
    expect((await scrape(server)).status).toBe(401);
    expect((await scrape(server, { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
    expect((await scrape(server, { authorization: `Bearer ${server.adminToken}` })).status).toBe(401);
    const allowed = await scrape(server, { authorization: `Bearer ${token}` });
    expect(allowed.status).toBe(200);
    expect(allowed.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(allowed.text).toContain('taskport_tasks{state="PENDING"}');
  });

  it('answers 405 to other methods', async () => {
    const server = await started();
    const response = await fetch(`${origin(server)}/metrics`, { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('request logs', () => {
  it('logs one line per operation with its request id, key, organisation, operation, duration and outcome', async () => {
    const { logger, lines } = capturedLogger();
    const server = await started({}, { logger });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` };
    const ok = await fetch(server.url, {
      method: 'POST',
      headers: { ...headers, 'x-request-id': 'trace-42.abc' },
      body: JSON.stringify({ query: 'query Mine { viewer { __typename } }', operationName: 'Mine' }),
    });
    expect(ok.headers.get('x-request-id')).toBe('trace-42.abc');
    const refused = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'not a sane id' },
      body: JSON.stringify({ query: '{ viewer { __typename } }' }),
    });
    const generated = refused.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);

    const operations = lines.filter((line) => line.msg === 'graphql operation');
    const mine = operations.find((line) => line.requestId === 'trace-42.abc');
    expect(mine).toMatchObject({
      level: 30,
      transport: 'http',
      status: 200,
      operationType: 'query',
      operationName: 'Mine',
      fields: 'viewer',
      keyId: expect.any(Number),
      organisationId: expect.any(Number),
      outcome: 'ok',
    });
    expect(mine!.durationMs).toBeGreaterThanOrEqual(0);
    expect(operations.find((line) => line.requestId === generated)).toMatchObject({ keyId: null, outcome: 'UNAUTHENTICATED' });
  });

  it('logs operations over graphql-ws too', async () => {
    const { logger, lines } = capturedLogger();
    const server = await started({}, { logger });
    const client = wsClient(server, server.adminToken);
    await new Promise<void>((resolve, reject) =>
      client.subscribe({ query: 'query OverSocket { viewer { __typename } }' }, { next: () => {}, error: reject, complete: resolve }),
    );
    expect(lines.find((line) => line.msg === 'graphql operation' && line.operationName === 'OverSocket')).toMatchObject({
      transport: 'ws',
      outcome: 'ok',
      keyId: expect.any(Number),
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });
});
