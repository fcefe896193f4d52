import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { spawnTaskport, readyUrl } from './children.js';
import { ConfigError, loadConfig, type RateLimitSettings } from '../src/config.js';
import {
  createKey,
  createPostgresDatabase,
  GENEROUS_RATE_LIMITS,
  graphql,
  query,
  startServer,
  testStore,
  wsClient,
  type TestServer,
} from './helpers.js';

// Per-key rate limits (two tiers), the per-token limit of execution URLs, and on PostgreSQL the
// limits of several processes on one database. Windows are an hour long, so that counts, not
// timings, decide every assertion.

const HOUR = 3600;
const SUBMIT = `mutation { submitTask(input: { service: "demo", action: "echo", params: { message: "hi" } }) {
  __typename ... on SubmitTaskSuccess { task { id } } } }`;
const VIEWER = `{ viewer { key { id } } }`;

function limits(overrides: Partial<RateLimitSettings>): RateLimitSettings {
  return { ...GENEROUS_RATE_LIMITS, ...overrides };
}

async function times<T>(count: number, run: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let index = 0; index < count; index += 1) results.push(await run());
  return results;
}

function expectRateLimited(response: Awaited<ReturnType<typeof graphql>>): void {
  expect(response.status, JSON.stringify(response.body)).toBe(429);
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`).toBe(true);
  const [error] = response.body.errors ?? [];
  expect(error?.extensions?.code).toBe('RATE_LIMITED');
  expect(error?.extensions?.retryAfter).toBe(retryAfter);
  expect(response.body.data ?? null).toBeNull();
}

describe('per-key rate limits', () => {
  it('refuses a key over its submit tier with 429 and Retry-After, while its other operations pass', async () => {
    const server = await startServer({ rateLimits: limits({ submit: [{ points: 3, perSeconds: HOUR }] }) });
    const token = await createKey(server, 'default', 'MEMBER');
    const submitted = await times(3, () => graphql(server, token, SUBMIT));
    for (const response of submitted) expect(response.body.data?.submitTask.__typename).toBe('SubmitTaskSuccess');

    expectRateLimited(await graphql(server, token, SUBMIT));
    // submitTasks is in the same tier, and so is a mutation that names it through a fragment.
    expectRateLimited(
      await graphql(server, token, `mutation { submitTasks(inputs: []) { __typename } }`),
    );
    expectRateLimited(
      await graphql(
        server,
        token,
        `mutation { ...Submit } fragment Submit on Mutation { submitTask(input: { service: "demo", action: "echo", params: {} }) { __typename } }`,
      ),
    );
    expect((await query(server, token, VIEWER)).viewer.key.id).toBeTruthy();

    // Another key of the organisation has its own count.
    const other = await createKey(server, 'default', 'MEMBER');
    expect((await graphql(server, other, SUBMIT)).body.data?.submitTask.__typename).toBe('SubmitTaskSuccess');
    await server.stop();
  });

  it('refuses the operation over graphql-ws with RATE_LIMITED and retryAfter, and the socket stays open', async () => {
    const server = await startServer({ rateLimits: limits({ submit: [{ points: 1, perSeconds: HOUR }] }) });
    const token = await createKey(server, 'default', 'MEMBER');
    const client = wsClient(server, token);
    const first = await client.iterate({ query: SUBMIT }).next();
    expect(first.value?.data?.submitTask.__typename).toBe('SubmitTaskSuccess');

    const refused = await client.iterate({ query: SUBMIT }).next();
    const error = refused.value?.errors?.[0];
    expect(error?.extensions?.code, JSON.stringify(refused.value)).toBe('RATE_LIMITED');
    expect(error?.extensions?.retryAfter).toBeGreaterThanOrEqual(1);

    const after = await client.iterate({ query: VIEWER }).next();
    expect(after.value?.data?.viewer.key.id, JSON.stringify(after.value)).toBeTruthy();
    await server.stop();
  });

  it('counts every other operation, subscriptions included, in the other tier', async () => {
    const server = await startServer({ rateLimits: limits({ other: [{ points: 2, perSeconds: HOUR }] }) });
    const token = await createKey(server, 'default', 'MEMBER');
    await times(2, () => query(server, token, VIEWER));
    const client = wsClient(server, token);
    const refused = await client.iterate({ query: `subscription { taskEvents { __typename } }` }).next();
    expect(refused.value?.errors?.[0]?.extensions?.code, JSON.stringify(refused.value)).toBe('RATE_LIMITED');
    expectRateLimited(await graphql(server, token, VIEWER));
    // The submit tier is apart.
    expect((await graphql(server, token, SUBMIT)).body.data?.submitTask.__typename).toBe('SubmitTaskSuccess');
    await server.stop();
  });

  it('limits nothing with TASKPORT_RATE_LIMITS=false', async () => {
    expect(loadConfig({ TASKPORT_RATE_LIMITS: 'false' }).rateLimits.enabled).toBe(false);
    const server = await startServer({ rateLimits: limits({ enabled: false, submit: [{ points: 1, perSeconds: HOUR }] }) });
    const submitted = await times(3, () => graphql(server, server.adminToken, SUBMIT));
    expect(submitted.map((response) => response.status)).toEqual([200, 200, 200]);
    await server.stop();
  });

  it('limits introspection without a key per client address, with the other tier', async () => {
    const server = await startServer({ rateLimits: limits({ other: [{ points: 2, perSeconds: HOUR }] }) });
    const introspect = `{ __schema { queryType { name } } }`;
    for (let index = 0; index < 2; index += 1) {
      expect((await graphql(server, null, introspect)).body.data?.__schema.queryType.name).toBe('Query');
    }
    expectRateLimited(await graphql(server, null, introspect));
    await server.stop();
  });
});

describe('a key’s own limits', () => {
  const KEY_FIELDS = `id name rateLimits { submit { isDefault windows { points perSeconds } } other { isDefault windows { points perSeconds } } }`;

  it('reports the server defaults of TASKPORT_RATE_SUBMIT and TASKPORT_RATE_OTHER', async () => {
    const server = await startServer({ rateLimits: loadConfig({}).rateLimits });
    const data = await query(server, server.adminToken, `{ viewer { key { ${KEY_FIELDS} } } }`);
    expect(data.viewer.key.rateLimits).toEqual({
      submit: { isDefault: true, windows: [{ points: 10, perSeconds: 1 }, { points: 100, perSeconds: 60 }] },
      other: { isDefault: true, windows: [{ points: 100, perSeconds: 1 }, { points: 1800, perSeconds: 60 }] },
    });
    await server.stop();
  });

  it('applies limits set by createApiKey and changed by updateApiKey', async () => {
    const server = await startServer();
    const created = await query(
      server,
      server.adminToken,
      `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) {
        __typename ... on CreateApiKeySuccess { token apiKey { ${KEY_FIELDS} } } ... on Error { code message } } }`,
      { input: { name: 'limited', role: 'MEMBER', rateLimits: { other: [{ points: 2, perSeconds: HOUR }] } } },
    );
    expect(created.createApiKey.__typename).toBe('CreateApiKeySuccess');
    const { token, apiKey } = created.createApiKey;
    expect(apiKey.rateLimits.other).toEqual({ isDefault: false, windows: [{ points: 2, perSeconds: HOUR }] });
    expect(apiKey.rateLimits.submit.isDefault).toBe(true);

    await times(2, () => query(server, token, VIEWER));
    expectRateLimited(await graphql(server, token, VIEWER));

    const update = `mutation ($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) {
      __typename ... on UpdateApiKeySuccess { apiKey { ${KEY_FIELDS} } } ... on Error { code message } ... on ValidationError { field } } }`;
    const raised = await query(server, server.adminToken, update, {
      id: apiKey.id,
      input: { name: 'raised', rateLimits: { other: [{ points: 1000, perSeconds: HOUR }] } },
    });
    expect(raised.updateApiKey.__typename).toBe('UpdateApiKeySuccess');
    expect(raised.updateApiKey.apiKey.name).toBe('raised');
    expect(raised.updateApiKey.apiKey.rateLimits.other.windows).toEqual([{ points: 1000, perSeconds: HOUR }]);
    // The key's next operation sees its new limit.
    expect((await query(server, token, VIEWER)).viewer.key.id).toBe(apiKey.id);

    const lowered = await query(server, server.adminToken, update, {
      id: apiKey.id,
      input: { rateLimits: { other: [{ points: 1, perSeconds: HOUR }] } },
    });
    expect(lowered.updateApiKey.apiKey.name).toBe('raised');
    expectRateLimited(await graphql(server, token, VIEWER));

    const reset = await query(server, server.adminToken, update, { id: apiKey.id, input: { rateLimits: null } });
    expect(reset.updateApiKey.apiKey.rateLimits.other.isDefault).toBe(true);
    expect(reset.updateApiKey.apiKey.rateLimits.submit.isDefault).toBe(true);
    expect((await query(server, token, VIEWER)).viewer.key.id).toBe(apiKey.id);

    const invalid = await query(server, server.adminToken, update, {
      id: apiKey.id,
      input: { rateLimits: { submit: [{ points: 0, perSeconds: 1 }] } },
    });
    expect(invalid.updateApiKey).toMatchObject({ __typename: 'ValidationError', code: 'INVALID', field: 'rateLimits.submit.0.points' });
    const duplicate = await query(server, server.adminToken, update, {
      id: apiKey.id,
      input: { rateLimits: { submit: [{ points: 1, perSeconds: 1 }, { points: 5, perSeconds: 1 }] } },
    });
    expect(duplicate.updateApiKey.__typename).toBe('ValidationError');

    const missing = await query(server, server.adminToken, update, { id: 'QXBpS2V5Ojk5OTk5', input: { name: 'x' } });
    expect(missing.updateApiKey.__typename).toBe('NotFoundError');

    // Another organisation's key behaves as one that does not exist.
    const stranger = await createKey(server, 'elsewhere', 'ADMIN');
    const foreign = await query(server, stranger, update, { id: apiKey.id, input: { name: 'taken' } });
    expect(foreign.updateApiKey.__typename).toBe('NotFoundError');

    const member = await graphql(server, token, update, { id: apiKey.id, input: { name: 'self' } });
    expect(member.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    await server.stop();
  });

  it('are set by taskport key create --rate-submit', { timeout: 30_000 }, async () => {
    const server = await startServer();
    const created = spawnTaskport(['key', 'create', '--organisation', 'default', '--rate-submit', '5/s,50/m'], {
      TASKPORT_DB: server.database,
    });
    expect((await created.exited).code, created.stderr()).toBe(0);
    const data = await query(server, created.stdout().trim(), `{ viewer { key { ${KEY_FIELDS} } } }`);
    expect(data.viewer.key.rateLimits.submit).toEqual({
      isDefault: false,
      windows: [{ points: 5, perSeconds: 1 }, { points: 50, perSeconds: 60 }],
    });
    expect(data.viewer.key.rateLimits.other.isDefault).toBe(true);

    const refused = spawnTaskport(['key', 'create', '--organisation', 'default', '--rate-other', 'fast'], {
      TASKPORT_DB: server.database,
    });
    expect((await refused.exited).code).not.toBe(0);
    expect(refused.stderr()).toContain('--rate-other');
    await server.stop();
  });

  it('refuses bad limits at createApiKey with a ValidationError', async () => {
    const server = await startServer();
    const created = await query(
      server,
      server.adminToken,
      `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { __typename ... on ValidationError { code field } } }`,
      { input: { name: 'bad', role: 'MEMBER', rateLimits: { submit: [{ points: 5, perSeconds: 86_401 }] } } },
    );
    expect(created.createApiKey).toEqual({ __typename: 'ValidationError', code: 'INVALID', field: 'rateLimits.submit.0.perSeconds' });
    await server.stop();
  });
});

describe('configuration', () => {
  it('reads N/s,M/m lists and stops the start on a bad one, naming the variable', () => {
    const config = loadConfig({ TASKPORT_RATE_SUBMIT: '5/s, 50/m,1000/h', TASKPORT_RATE_EXECUTE: '20/10s' });
    expect(config.rateLimits.submit).toEqual([
      { points: 5, perSeconds: 1 },
      { points: 50, perSeconds: 60 },
      { points: 1000, perSeconds: 3600 },
    ]);
    expect(config.rateLimits.execute).toEqual([{ points: 20, perSeconds: 10 }]);
    expect(config.rateLimits.other).toEqual([{ points: 100, perSeconds: 1 }, { points: 1800, perSeconds: 60 }]);
    for (const [name, value] of [
      ['TASKPORT_RATE_SUBMIT', 'ten per second'],
      ['TASKPORT_RATE_OTHER', '0/s'],
      ['TASKPORT_RATE_EXECUTE', '5/s,6/s'],
    ] as const) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(name);
    }
  });
});

async function executionUrl(server: TestServer): Promise<{ url: string; token: string }> {
  const allocation = (
    await query(
      server,
      server.adminToken,
      `mutation { createAllocation(input: { name: "scoring", service: "demo", action: "fraud-score", instances: 1 }) {
        __typename ... on CreateAllocationSuccess { allocation { id } } ... on Error { code message } } }`,
    )
  ).createAllocation.allocation;
  return (
    await query(
      server,
      server.adminToken,
      `mutation ($id: ID!) { generateExecutionUrl(allocationId: $id) { ... on GenerateExecutionUrlSuccess { executionUrl { url token } } } }`,
      { id: allocation.id },
    )
  ).generateExecutionUrl.executionUrl;
}

describe('execution URLs', () => {
  it('answer 429 with Retry-After past the per-token limit', async () => {
    const server = await startServer({ rateLimits: limits({ execute: [{ points: 2, perSeconds: HOUR }] }) });
    const { url, token } = await executionUrl(server);
    const call = (bearer: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify({ amount: 50, currency: 'EUR', country: 'FR', cardAgeDays: 400 }),
      });
    expect((await call(token)).status).toBe(200);
    expect((await call(token)).status).toBe(200);
    const refused = await call(token);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    // The limit is the token's: another token is counted apart.
    expect((await call(`${token}x`)).status).toBe(401);
    await server.stop();
  });

  it('log a body the client cut short at INFO, without a stack trace', async () => {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const server = await startServer({}, { logger: pino({ level: 'info' }, sink) });
    const { port, pathname } = new URL(server.url.replace('/graphql', '/execute/QWxsb2NhdGlvbjox'));
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${randomBytes(8).toString('hex')}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"amount":`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.destroy();
    await expect.poll(() => lines.some((line) => /closed the connection/.test(line.msg ?? ''))).toBe(true);
    const line = lines.find((entry) => /closed the connection/.test(entry.msg ?? ''))!;
    expect(line.level).toBe(30);
    expect(JSON.stringify(line)).not.toContain('stack');
    expect(lines.filter((entry) => entry.level >= 50)).toEqual([]);
    await server.stop();
  });
});

describe.runIf(testStore === 'postgres')('on PostgreSQL with several processes', () => {
  it('three processes on one database together admit a key its limit, not three times it', { timeout: 90_000 }, async () => {
    const database = await createPostgresDatabase();
    const bootstrap = `tp_limits_${randomBytes(12).toString('hex')}`;
    const environment = {
      TASKPORT_DB: database,
      TASKPORT_BOOTSTRAP_TOKEN: bootstrap,
      TASKPORT_DB_POOL_SIZE: '2',
      TASKPORT_RATE_OTHER: '1000000/s',
      TASKPORT_RATE_SUBMIT: '1000000/s',
    };
    const first = spawnTaskport(['serve', '--no-worker'], environment);
    const urls = [await readyUrl(first)];
    const rest = [spawnTaskport(['serve', '--no-worker'], environment), spawnTaskport(['serve', '--no-worker'], environment)];
    urls.push(...(await Promise.all(rest.map(readyUrl))));
    const servers = urls.map((url) => ({ url }));

    const make = async (points: number) => {
      const created = await query(
        servers[0]!,
        bootstrap,
        `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { ... on CreateApiKeySuccess { token } } }`,
        { input: { name: `limit ${points}`, role: 'MEMBER', rateLimits: { other: [{ points, perSeconds: HOUR }] } } },
      );
      return created.createApiKey.token as string;
    };
    // 30: each process takes one point at a time (exact). 300: each takes 6 at a time, and what a
    // process took but did not hand out is lost to the others, so a little under the limit.
    for (const points of [30, 300]) {
      const token = await make(points);
      const attempts = Math.round(points * 1.5);
      const responses = await Promise.all(
        Array.from({ length: attempts }, (_, index) => graphql(servers[index % servers.length]!, token, VIEWER)),
      );
      const admitted = responses.filter((response) => response.status === 200).length;
      const refused = responses.filter((response) => response.status === 429).length;
      expect(admitted + refused, 'every answer is a success or a 429').toBe(attempts);
      expect(admitted, `admitted of a limit of ${points}`).toBeLessThanOrEqual(points);
      expect(admitted, `admitted of a limit of ${points}`).toBeGreaterThanOrEqual(Math.floor(points * 0.9));
      // Each process admitted some: the load went to all three.
      for (const [index] of servers.entries()) {
        const mine = responses.filter((response, position) => position % servers.length === index && response.status === 200);
        expect(mine.length, `process ${index + 1}`).toBeGreaterThan(0);
      }
    }
  });
});
