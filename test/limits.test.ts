import { buildClientSchema, getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BATCH_SUBMIT, MAX_DEPENDENCIES, MAX_STATUS_IDS } from '../src/domain/api.js';
import { DOCUMENT_CACHE_LIMITS, DocumentCache, QUERY_LIMITS } from '../src/http/limits.js';
import {
  graphql,
  query,
  registerAccount,
  startServer,
  submit,
  subscribeOverSse,
  subscribeOverWebSocket,
  waitForTask,
  wsClient,
  type TestServer,
} from './helpers.js';

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startServer();
  token = server.adminToken;
});

afterAll(async () => {
  await server.stop();
});

/** The first error of an operation over graphql-ws, with the key `key`. */
async function errorOverWebSocket(key: string, text: string, variables?: Record<string, unknown>) {
  const results = await subscribeOverWebSocket(wsClient(server, key), text, variables).catch((error: Error) => [
    { errors: JSON.parse(error.message) as { message: string; extensions?: Record<string, unknown> }[] },
  ]);
  return results[0]?.errors?.[0];
}

/** The introspection query's __schema selection `count` times under aliases, with its fragments once. */
function aliasedIntrospection(count: number, extraField = ''): string {
  const text = getIntrospectionQuery();
  const schemaSelection = text.slice(text.indexOf('__schema'), text.indexOf('fragment FullType')).trim().replace(/\}$/, '');
  const aliases = Array.from({ length: count }, (_, index) => `schema${index}: ${schemaSelection}`).join('\n');
  return `query ($ids: [ID!]!) { ${aliases} ${extraField} } ${text.slice(text.indexOf('fragment FullType'))}`;
}

describe('introspection', () => {
  const introspectionQueries = {
    'getIntrospectionQuery()': getIntrospectionQuery(),
    'with every option GraphiQL can set': getIntrospectionQuery({
      descriptions: true,
      inputValueDeprecation: true,
      schemaDescription: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
    }),
  };

  it.each(Object.entries(introspectionQueries))('runs without a key over HTTP as GraphiQL sends it, and with one over graphql-ws: %s', async (_name, text) => {
    const overHttp = await graphql(server, null, text);
    expect(overHttp.body.errors).toBeUndefined();
    expect(buildClientSchema(overHttp.body.data).getType('Task')).toBeDefined();
    // graphql-ws refuses a connection without a key at connection_init (test/auth.test.ts).
    const [overWebSocket] = await subscribeOverWebSocket(wsClient(server, token), text);
    expect(overWebSocket?.errors).toBeUndefined();
    expect(overWebSocket?.data).toEqual(overHttp.body.data);
  });

  it('runs without a key only once per operation: 20 aliases of it are refused, saying why', async () => {
    const text = aliasedIntrospection(20).replace('query ($ids: [ID!]!)', 'query');
    const overHttp = await graphql(server, null, text);
    expect(overHttp.status).toBe(401);
    expect(overHttp.body.data).toBeUndefined();
    expect(overHttp.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(overHttp.body.errors?.[0]?.message).toMatch(/may introspect once .* this one has 20/);
  });

  it('counts against the cost limit like any field', async () => {
    const ids = Array.from({ length: 5000 }, (_, index) => `id-${index}`);
    const statuses = 'taskStatuses(ids: $ids) { id found state status queuePosition resultRetrieved retrievalProtocol error { code } }';
    const alone = await graphql(server, token, `query ($ids: [ID!]!) { ${statuses} }`, { ids });
    expect(alone.body.errors).toBeUndefined();
    const withIntrospection = await graphql(server, token, aliasedIntrospection(19, statuses), { ids });
    expect(withIntrospection.status).toBe(400);
    expect(withIntrospection.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: QUERY_LIMITS.cost });
  });

  it.each([
    ['without a key', null],
    ['with a key', 'admin'],
  ])('600 aliases of __typename are refused %s', async (_label, key) => {
    const text = `{ ${Array.from({ length: 600 }, (_, index) => `t${index}: __typename`).join(' ')} }`;
    const response = await graphql(server, key && token, text);
    expect(response.body.data).toBeUndefined();
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: QUERY_LIMITS.aliases });
    expect(response.body.errors?.[0]?.message).toContain('found 600');
  });

  it('600 aliases of __typename are refused with a key over graphql-ws', async () => {
    const text = `{ ${Array.from({ length: 600 }, (_, index) => `t${index}: __typename`).join(' ')} }`;
    const overWebSocket = await errorOverWebSocket(token, text);
    expect(overWebSocket?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: QUERY_LIMITS.aliases });
  });

  it('30 levels deep is refused with a key over graphql-ws', async () => {
    const text = `{ __schema { types { fields { type ${'{ ofType '.repeat(25)}{ name }${' }'.repeat(25)} } } } }`;
    const overWebSocket = await errorOverWebSocket(token, text);
    expect(overWebSocket?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: QUERY_LIMITS.depth });
    expect(overWebSocket?.message).toContain('found 30');
  });

  it.each([
    ['without a key', null],
    ['with a key', 'admin'],
  ])('30 levels deep is refused %s', async (_label, key) => {
    const text = `{ __schema { types { fields { type ${'{ ofType '.repeat(25)}{ name }${' }'.repeat(25)} } } } }`;
    const response = await graphql(server, key && token, text);
    expect(response.body.data).toBeUndefined();
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: QUERY_LIMITS.depth });
    expect(response.body.errors?.[0]?.message).toContain('found 30');
  });
});

describe('the cost limit', () => {
  // The issue's query: each task's dependencies (up to 100 each) and a page of each one's logs.
  const ISSUE_QUERY = `
    query ($a: Int, $b: Int) {
      tasks(first: $a, filter: { type: "echo" }) {
        edges { node { id dependsOn { id logs(first: $b) { edges { node { message level } } pageInfo { hasNextPage } } } } }
      }
    }`;
  /** tasks + edges, then per task: node, id, dependsOn, then per dependency: id, logs, edges, pageInfo, hasNextPage, and per log: node, message, level. */
  const issueQueryCost = (a: number, b: number) => 2 + a * (3 + 100 * (5 + b * 3));

  it('takes first from the variables: the issue query with {"a": 16, "b": 500} is refused, naming cost and limit', async () => {
    const response = await graphql(server, token, ISSUE_QUERY, { a: 16, b: 500 });
    expect(response.status).toBe(400);
    expect(response.body.data).toBeUndefined();
    const [error] = response.body.errors!;
    expect(error!.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: issueQueryCost(16, 500), limit: QUERY_LIMITS.cost });
    expect(error!.message).toContain(issueQueryCost(16, 500).toLocaleString('en'));
    expect(error!.message).toContain(QUERY_LIMITS.cost.toLocaleString('en'));
  });

  it('counts an omitted first as the default page of 20, and a literal first as written', async () => {
    const omitted = await graphql(server, token, ISSUE_QUERY, { b: 500 });
    expect(omitted.body.errors?.[0]?.extensions?.['cost']).toBe(issueQueryCost(20, 500));
    const literalText = ISSUE_QUERY.replace('($a: Int, $b: Int)', '').replace('$a', '4').replace('$b', '500');
    const literal = await graphql(server, token, literalText);
    expect(literal.body.errors?.[0]?.extensions?.['cost']).toBe(issueQueryCost(4, 500));
  });

  it('counts dependsOn at 100 per task: a page of 500 tasks with four fields of each dependency is refused', async () => {
    const text = `{ tasks(first: 500) { edges { node { id DEPENDENCIES } } } }`;
    const withDependencies = await graphql(server, token, text.replace('DEPENDENCIES', 'dependsOn { id state type service }'));
    expect(withDependencies.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 2 + 500 * (3 + 100 * 4) });
    const withoutDependencies = await graphql(server, token, text.replace('DEPENDENCIES', 'state type service'));
    expect(withoutDependencies.body.errors).toBeUndefined();
  });

  it('applies to subscriptions over SSE and graphql-ws, with their variables', async () => {
    const task = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'watched' } });
    const text = `subscription ($id: ID!, $n: Int) { taskUpdated(id: $id) { id dependsOn { logs(first: $n) { edges { node { message level } } } } } }`;
    const [overSse] = await subscribeOverSse(server, token, text, { id: task.task.id, n: 500 });
    expect(overSse?.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: QUERY_LIMITS.cost });
    const overWebSocket = await errorOverWebSocket(token, text, { id: task.task.id, n: 500 });
    expect(overWebSocket?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: QUERY_LIMITS.cost });
    const allowed = await subscribeOverWebSocket(wsClient(server, token), text, { id: task.task.id, n: 5 });
    expect(allowed.every((result) => result.errors === undefined)).toBe(true);
    expect(allowed.at(-1)?.data).toMatchObject({ taskUpdated: { id: task.task.id, dependsOn: [] } });
  });
});

describe('logs under a list of tasks', () => {
  interface Log {
    cursor: string;
    node: { message: string; level: string };
  }
  const LOG_PAGE = `edges { cursor node { message level } } pageInfo { hasNextPage }`;
  let echoes: { id: string; dependsOn: string[] }[];
  /** Every log of each dependency, as a query for that task alone returns them. */
  const allLogs = new Map<string, Log[]>();

  beforeAll(async () => {
    await registerAccount(server, token, 'limits-logs');
    const dependencies = [
      { service: 'demo', action: 'sleep', params: { ms: 0, steps: 4 } },
      { service: 'demo', action: 'fetch-data', account: 'limits-logs', params: { device: 'p', data: ['sms', 'calls'] } },
      // Timed out: the engine logs an ERROR line.
      { service: 'demo', action: 'sleep', params: { ms: 60_000, steps: 1 }, timeoutSeconds: 1, maxAttempts: 1 },
      { service: 'demo', action: 'sleep', params: { ms: 0, steps: 1 } },
    ];
    const dependencyIds: string[] = [];
    for (const input of dependencies) {
      const submitted = await submit(server, token, input);
      await waitForTask(server, token, submitted.task.id);
      dependencyIds.push(submitted.task.id);
    }
    for (const id of dependencyIds) {
      const data = await query(server, token, `query ($id: ID!) { task(id: $id) { logs(first: 500) { ${LOG_PAGE} } } }`, { id });
      allLogs.set(id, data.task.logs.edges);
    }
    echoes = [];
    for (const dependsOn of [dependencyIds, [dependencyIds[1]!, dependencyIds[3]!]]) {
      const submitted = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'm' }, dependsOn });
      echoes.unshift({ id: submitted.task.id, dependsOn });
    }
  });

  const levels = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
  const cursorId = (cursor: string) => Number(Buffer.from(cursor, 'base64').toString().split(':')[1]);

  function expectedPage(taskId: string, first: number, after: string | null, minLevel: string | null) {
    const matching = allLogs
      .get(taskId)!
      .filter((log) => minLevel === null || levels.indexOf(log.node.level) >= levels.indexOf(minLevel))
      .filter((log) => after === null || cursorId(log.cursor) > cursorId(after));
    return { edges: matching.slice(0, first), pageInfo: { hasNextPage: matching.length > first } };
  }

  it.each([
    { first: 2, after: null, minLevel: null },
    { first: 1, after: null, minLevel: 'ERROR' },
    { first: 3, after: 'second log of fetch-data', minLevel: null },
    { first: 0, after: null, minLevel: 'INFO' },
  ])('gives each task its own page: first $first, after $after, minLevel $minLevel', async ({ first, after, minLevel }) => {
    const logs = [...allLogs.values()];
    expect(logs.map((taskLogs) => taskLogs.length).slice(0, 2)).toEqual([4, 3]);
    expect(logs[2]!.map((log) => log.node.level)).toContain('ERROR');
    const afterCursor = after === null ? null : allLogs.get(echoes[1]!.dependsOn[1]!)![1]!.cursor;
    const data = await query(
      server,
      token,
      `query ($first: Int, $after: String, $minLevel: LogLevel) {
        tasks(first: 2, filter: { type: "echo" }) {
          edges { node { id dependsOn { id logs(first: $first, after: $after, minLevel: $minLevel) { ${LOG_PAGE} } } } }
        }
      }`,
      { first, after: afterCursor, minLevel },
    );
    expect(data.tasks.edges.map((edge: { node: unknown }) => edge.node)).toEqual(
      echoes.map((echo) => ({
        id: echo.id,
        dependsOn: echo.dependsOn.map((id) => ({ id, logs: expectedPage(id, first, afterCursor, minLevel) })),
      })),
    );
  });

  it('reads the logs of every task of a list in one engine call per logs field', async () => {
    const engine = server.taskport.engine;
    const calls: number[][] = [];
    const original = engine.taskLogs;
    engine.taskLogs = function (this: typeof engine, ...args: Parameters<typeof original>) {
      calls.push([...args[0]]);
      return original.apply(this, args);
    };
    try {
      await query(
        server,
        token,
        `{ tasks(first: 2, filter: { type: "echo" }) { edges { node { dependsOn { logs(first: 2) { ${LOG_PAGE} } } } } } }`,
      );
    } finally {
      Reflect.deleteProperty(engine, 'taskLogs');
    }
    expect(calls).toHaveLength(1);
    expect(new Set(calls[0]).size).toBe(new Set(echoes.flatMap((echo) => echo.dependsOn)).size);
  });
});

describe("yoga's parse cache", () => {
  it('keeps a bounded amount of document text, the most recently used first, and no long document', () => {
    const cache = new DocumentCache<number>();
    const document = (index: number) => `{ __typename } # ${index} ${'x'.repeat(1000)}`;
    cache.set(document(0), 0);
    for (let index = 1; index < 5000; index++) {
      cache.set(document(index), index);
      expect(cache.get(document(0))).toBe(0);
    }
    expect(cache.size.characters).toBeLessThanOrEqual(DOCUMENT_CACHE_LIMITS.characters);
    expect(cache.size.documents).toBe(Math.floor(DOCUMENT_CACHE_LIMITS.characters / document(4999).length));
    expect(cache.get(document(1))).toBeUndefined();
    expect(cache.get(document(4999))).toBe(4999);
    const long = `{ __typename } # ${'x'.repeat(DOCUMENT_CACHE_LIMITS.documentCharacters)}`;
    cache.set(long, -1);
    expect(cache.get(long)).toBeUndefined();
  });
});

describe('list limits, checked before the variables are coerced', () => {
  const SUBMIT_TASKS = `mutation ($inputs: [SubmitTaskInput!]!) {
    submitTasks(inputs: $inputs) { __typename ... on SubmitTasksSuccess { tasks { id } } ... on Error { code } }
  }`;

  it('refuses more than 1,000 submitTasks inputs with LIMIT_EXCEEDED naming the argument, even inputs that would not coerce', async () => {
    // Not one of them is a valid SubmitTaskInput: a coercion first would answer that instead.
    const inputs = Array.from({ length: 5000 }, (_, index) => ({ notAField: index }));
    const response = await graphql(server, token, SUBMIT_TASKS, { inputs });
    expect(response.status).toBe(400);
    expect(response.body.data).toBeUndefined();
    expect(response.body.errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: MAX_BATCH_SUBMIT,
      coordinate: 'Mutation.submitTasks(inputs:)',
    });
    expect(response.body.errors?.[0]?.message).toContain('5,000 were given');
  });

  it('refuses more than 10,000 taskStatuses ids over HTTP and graphql-ws', async () => {
    const ids = Array.from({ length: MAX_STATUS_IDS + 1 }, (_, index) => `id-${index}`);
    const text = 'query ($ids: [ID!]!) { taskStatuses(ids: $ids) { id } }';
    const response = await graphql(server, token, text, { ids });
    expect(response.status).toBe(400);
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: MAX_STATUS_IDS });
    const overWebSocket = await errorOverWebSocket(token, text, { ids });
    expect(overWebSocket?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', coordinate: 'Query.taskStatuses(ids:)' });
    const allowed = await graphql(server, token, text, { ids: ids.slice(0, MAX_STATUS_IDS) });
    expect(allowed.body.errors).toBeUndefined();
  });

  it('refuses more than 100 dependsOn, in a variable inside a batch and written in the document', async () => {
    const dependsOn = Array.from({ length: MAX_DEPENDENCIES + 1 }, (_, index) => `dep-${index}`);
    const input = { service: 'demo', action: 'echo', params: { message: 'x' } };
    const inBatch = await graphql(server, token, SUBMIT_TASKS, { inputs: [input, { ...input, dependsOn }] });
    expect(inBatch.body.errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: MAX_DEPENDENCIES,
      coordinate: 'SubmitTaskInput.dependsOn',
    });
    const literal = `mutation { submitTask(input: { service: "demo", action: "echo", params: { message: "x" },
      dependsOn: [${dependsOn.map((id) => JSON.stringify(id)).join(', ')}] }) { __typename } }`;
    const written = await graphql(server, token, literal);
    expect(written.body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', coordinate: 'SubmitTaskInput.dependsOn' });
  });
});
