import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import { pino, type Logger } from 'pino';
import pg from 'pg';
import { afterAll, afterEach, expect, inject } from 'vitest';
import WebSocket from 'ws';

type Result<Data> = FormattedExecutionResult<Data, unknown>;
import type { Catalog } from '../src/catalog/index.js';
import { loadConfig, type Config } from '../src/config.js';
import type { Role } from '../src/domain/types.js';
import { startTaskport, type RunningTaskport } from '../src/main.js';

export interface TestServer {
  url: string;
  wsUrl: string;
  /** Token of the ADMIN key of organisation `default`. */
  adminToken: string;
  database: string;
  taskport: RunningTaskport;
  /** Stops this server, as SIGTERM would; the database file stays for a restart. */
  stop(): Promise<void>;
}

const running = new Set<TestServer>();
const temporaryFolders: string[] = [];

/** The store this run of the suite tests: its vitest project sets it (see vitest.config.ts). */
export const testStore: 'sqlite' | 'postgres' = process.env.TASKPORT_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

/** A fresh, empty database of the store under test: a SQLite file in a temporary folder, or a PostgreSQL database. */
export async function temporaryDatabase(): Promise<string> {
  return testStore === 'postgres' ? createPostgresDatabase() : temporaryDatabasePath();
}

/** A new database on the run's PostgreSQL server (test/postgres-setup.ts starts it). */
export async function createPostgresDatabase(): Promise<string> {
  const serverUrl = inject('postgresUrl');
  if (!serverUrl) throw new Error('no PostgreSQL server: run this file in the postgres project of vitest.config.ts');
  const name = `taskport_${randomBytes(8).toString('hex')}`;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export function temporaryDatabasePath(): string {
  const folder = mkdtempSync(join(tmpdir(), 'taskport-test-'));
  temporaryFolders.push(folder);
  return join(folder, 'taskport.db');
}

/**
 * The rate limits of test servers: tests submit far faster than the defaults allow. A test of the
 * limits themselves passes its own `rateLimits` (loadConfig({}).rateLimits for the defaults).
 */
export const GENEROUS_RATE_LIMITS = loadConfig({
  TASKPORT_RATE_SUBMIT: '1000000/s',
  TASKPORT_RATE_OTHER: '1000000/s',
  TASKPORT_RATE_EXECUTE: '1000000/s',
}).rateLimits;

export function testConfig(overrides: Partial<Config> = {}): Config {
  const defaults = loadConfig({});
  return {
    port: 0,
    host: '127.0.0.1',
    database: overrides.database ?? temporaryDatabasePath(),
    concurrency: 4,
    bootstrapToken: `tp_test_${randomBytes(12).toString('hex')}`,
    retryBaseMs: 20,
    shutdownGraceMs: 2000,
    logLevel: 'silent',
    realtimeWaitMs: 250,
    publicUrl: undefined,
    graphiql: true,
    services: [],
    demo: true,
    leaseMs: 30_000,
    poolSize: 4,
    maxSocketsPerKey: defaults.maxSocketsPerKey,
    maxSubscriptionsPerKey: defaults.maxSubscriptionsPerKey,
    maxConnections: defaults.maxConnections,
    requestTimeoutMs: defaults.requestTimeoutMs,
    headersTimeoutMs: defaults.headersTimeoutMs,
    keepAliveTimeoutMs: defaults.keepAliveTimeoutMs,
    introspection: defaults.introspection,
    // Test servers keep every task; a test of retention gives its own.
    retentionDays: 0,
    synchronous: 'NORMAL',
    metricsToken: undefined,
    metricsPort: undefined,
    rateLimits: GENEROUS_RATE_LIMITS,
    // Receivers of test webhooks listen on 127.0.0.1, and retries should not take minutes.
    webhooks: { ...defaults.webhooks, allowPrivate: true, retryScheduleMs: [0, 100, 200], timeoutMs: 2000 },
    ...overrides,
  };
}

/**
 * The real server on an ephemeral port over a SQLite file in a temporary folder; `catalog`
 * replaces the built-in services, and `logger` the silent one, for a test that reads the server's log.
 */
export async function startServer(
  overrides: Partial<Config> = {},
  options: { catalog?: Catalog; logger?: Logger; dashboardFolder?: string; role?: 'all' | 'api' } = {},
): Promise<TestServer> {
  const config = testConfig({ ...overrides, database: overrides.database ?? (await temporaryDatabase()) });
  const { logger = pino({ level: 'silent' }), ...startOptions } = options;
  const taskport = await startTaskport(config, logger, startOptions);
  const server: TestServer = {
    url: taskport.url,
    wsUrl: taskport.url.replace(/^http/, 'ws'),
    adminToken: config.bootstrapToken!,
    database: config.database,
    taskport,
    stop: async () => {
      running.delete(server);
      await taskport.stop();
    },
  };
  running.add(server);
  return server;
}

afterAll(async () => {
  const leaked = [...running];
  await Promise.all(leaked.map((server) => server.stop()));
  for (const folder of temporaryFolders.splice(0)) rmSync(folder, { recursive: true, force: true });
  // A test that leaves its server running would hide a shutdown bug: fail the file.
  expect(leaked.length, 'servers left running by the tests of this file').toBe(0);
});

const openClients = new Set<Client>();
afterEach(async () => {
  await Promise.all([...openClients].map((client) => client.dispose()));
  openClients.clear();
});

/** A key of another role or another organisation, made as `taskport key create` makes it. */
export async function createKey(server: TestServer, organisation: string, role: Role = 'MEMBER'): Promise<string> {
  const created = await server.taskport.engine.provisionApiKey({ organisation, role, name: `${organisation}-${role}` });
  return created.token;
}

export interface GraphQLResponse<Data = any> {
  status: number;
  headers: Headers;
  body: Result<Data> & { errors?: { message: string; extensions?: Record<string, any>; path?: unknown[] }[] };
}

export async function graphql<Data = any>(
  server: Pick<TestServer, 'url'>,
  token: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphQLResponse<Data>> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(server.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return { status: response.status, headers: response.headers, body: (await response.json()) as never };
}

/** graphql() for operations that must succeed: fails the test on any GraphQL error. */
export async function query<Data = any>(
  server: Pick<TestServer, 'url'>,
  token: string,
  text: string,
  variables?: Record<string, unknown>,
): Promise<Data> {
  const response = await graphql<Data>(server, token, text, variables);
  expect(response.body.errors, JSON.stringify(response.body.errors)).toBeUndefined();
  return response.body.data as Data;
}

export function wsClient(server: Pick<TestServer, 'wsUrl'>, token: string | null): Client {
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token === null ? {} : { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  openClients.add(client);
  return client;
}

/** Every message of a subscription over graphql-ws, until the server completes it. */
export function subscribeOverWebSocket<Data = any>(
  client: Client,
  text: string,
  variables?: Record<string, unknown>,
  onNext?: (result: Result<Data>) => void,
): Promise<Result<Data>[]> {
  return new Promise((resolve, reject) => {
    const results: Result<Data>[] = [];
    client.subscribe<Data>(
      { query: text, variables },
      {
        next: (result) => {
          results.push(result);
          onNext?.(result);
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => resolve(results),
      },
    );
  });
}

/** Every message of a subscription over yoga's server-sent events, until the stream completes. */
export async function subscribeOverSse<Data = any>(
  server: Pick<TestServer, 'url'>,
  token: string | null,
  text: string,
  variables?: Record<string, unknown>,
  onNext?: (result: Result<Data>) => void,
): Promise<Result<Data>[]> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(server.url, { method: 'POST', headers, body: JSON.stringify({ query: text, variables }) });
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const results: Result<Data>[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let boundary: number;
    while ((boundary = buffered.indexOf('\n\n')) >= 0) {
      const message = buffered.slice(0, boundary);
      buffered = buffered.slice(boundary + 2);
      const event = /^event: (.*)$/m.exec(message)?.[1];
      const data = message
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (event === 'complete') return results;
      if (data) {
        const result = JSON.parse(data) as Result<Data>;
        results.push(result);
        onNext?.(result);
      }
    }
  }
  return results;
}

/** Waits, on the taskUpdated subscription, until the task has reached a terminal state. */
export async function waitForTask(server: TestServer, token: string, id: string): Promise<Record<string, any>> {
  const results = await subscribeOverWebSocket(
    wsClient(server, token),
    `subscription ($id: ID!) { taskUpdated(id: $id) { id state attempts error { code message } } }`,
    { id },
  );
  const last = results.at(-1);
  expect(last?.errors, JSON.stringify(last?.errors)).toBeUndefined();
  return (last!.data as { taskUpdated: Record<string, any> }).taskUpdated;
}

export async function submit(
  server: TestServer,
  token: string,
  input: Record<string, unknown>,
  selection = 'id state',
): Promise<Record<string, any>> {
  const data = await query(
    server,
    token,
    `mutation ($input: SubmitTaskInput!) {
      submitTask(input: $input) {
        __typename
        ... on SubmitTaskSuccess { task { ${selection} } }
        ... on Error { code message }
        ... on ValidationError { field }
      }
    }`,
    { input },
  );
  return data.submitTask;
}

/** Registers a demo account, failing the test unless it succeeds; returns the account's global id. */
export async function registerAccount(server: TestServer, token: string, username: string): Promise<string> {
  const data = await query(
    server,
    token,
    `mutation ($input: AccountInput!) {
      registerAccount(input: $input) { __typename ... on RegisterAccountSuccess { account { id } } ... on Error { code } }
    }`,
    { input: { service: 'demo', username } },
  );
  expect(data.registerAccount.__typename).toBe('RegisterAccountSuccess');
  return data.registerAccount.account.id;
}

export const RETRIEVE = `
  mutation ($id: ID!) {
    retrieveResults(taskId: $id) {
      __typename
      ... on RetrieveResultsSuccess { results { data result { id name contentType size retrieved } } }
      ... on Error { code message }
    }
  }`;

/** A relay global id made by hand, as a client could forge one. */
export function globalId(typename: string, id: number | string): string {
  return Buffer.from(`${typename}:${id}`).toString('base64');
}

/**
 * Resolves once the server listens on `channel` of the event bus: a graphql-ws subscription has
 * no acknowledgement of its own, and an event published before that would be missed by design.
 */
export function nextListen(server: TestServer, channel: 'organisation' | 'task' | 'keyRevoked'): Promise<void> {
  const events = server.taskport.engine.events as unknown as { listen: (...args: unknown[]) => () => void };
  const original = events.listen;
  return new Promise((resolve) => {
    events.listen = function (this: unknown, ...args: unknown[]) {
      const stop = original.apply(this, args);
      if (args[0] === channel) {
        Reflect.deleteProperty(events, 'listen');
        resolve();
      }
      return stop;
    };
  });
}
