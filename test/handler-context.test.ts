import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, defineAction, defineService, TaskFailure } from '../src/catalog/index.js';
import { demoService } from '../src/catalog/demo.js';
import { query, RETRIEVE, startServer, submit, waitForTask, type TestServer } from './helpers.js';

// What a handler learns about its task from its context, and how the ways of throwing TaskFailure
// spend the task's attempts.

const FAILURES = {
  options: () => new TaskFailure('REFUSED', 'another attempt cannot help', { retryable: false }),
  positional: () => new TaskFailure('REFUSED', 'another attempt cannot help', false),
  retryable: () => new TaskFailure('REFUSED', 'another attempt may help'),
  'options-retryable': () => new TaskFailure('REFUSED', 'another attempt may help', { retryable: true }),
};

const contextService = defineService({
  slug: 'context',
  name: 'Context',
  actions: [
    defineAction({
      slug: 'describe',
      name: 'Describe the task',
      description: 'Publishes what its context says about the task at each attempt; fails the first `failAttempts`.',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      parameters: [{ slug: 'failAttempts', name: 'Attempts to fail', type: 'INTEGER', optional: true, default: 0 }],
      handler: ({ params, task, taskId, attempt, account, publish }) => {
        publish(`attempt-${task.attempt}`, { task, taskId, attempt, account });
        if (task.attempt <= params.failAttempts) throw new TaskFailure('AGAIN', `attempt ${task.attempt} fails`);
      },
    }),
    defineAction({
      slug: 'refuse',
      name: 'Refuse',
      execution: ['ASYNCHRONOUS'],
      parameters: [{ slug: 'form', name: 'Form', type: 'STRING', allowedValues: Object.keys(FAILURES) as (keyof typeof FAILURES)[] }],
      handler: ({ params }) => {
        throw FAILURES[params.form]();
      },
    }),
  ],
});

let server: TestServer;

beforeAll(async () => {
  server = await startServer({}, { catalog: new Catalog([demoService, contextService]) });
});

afterAll(() => server.stop());

/** A key made as `taskport key create` makes it, with the ids of its organisation and itself. */
async function provisionKey(organisation: string, role: 'ADMIN' | 'MEMBER') {
  const name = `${organisation}-${role}`;
  const created = await server.taskport.engine.provisionApiKey({ organisation, role, name });
  return { token: created.token, organisationId: created.organisation.id, name };
}

function decodeTaskId(globalId: string): number {
  const [typename, id] = Buffer.from(globalId, 'base64').toString().split(':');
  expect(typename).toBe('Task');
  return Number(id);
}

async function retrieved(token: string, taskId: string): Promise<Record<string, any>> {
  const data = await query(server, token, RETRIEVE, { id: taskId });
  expect(data.retrieveResults.__typename, JSON.stringify(data.retrieveResults)).toBe('RetrieveResultsSuccess');
  const results = data.retrieveResults.results as { result: { name: string }; data: unknown }[];
  return Object.fromEntries(results.map((entry) => [entry.result.name, entry.data]));
}

describe('TaskFailure and the attempts it spends', () => {
  const cases: [string, keyof typeof FAILURES, number, string][] = [
    ['{ retryable: false } fails at once', 'options', 1, 'FAILED'],
    ['the positional false fails at once', 'positional', 1, 'FAILED'],
    ['the default is retried up to maxAttempts', 'retryable', 3, 'FAILED'],
    ['{ retryable: true } is retried up to maxAttempts', 'options-retryable', 3, 'FAILED'],
  ];
  for (const [title, form, attempts, state] of cases) {
    it(`${title}: ${attempts} of 3 attempts`, async () => {
      const submitted = await submit(server, server.adminToken, {
        service: 'context',
        action: 'refuse',
        params: { form },
        maxAttempts: 3,
      });
      expect(submitted.__typename, JSON.stringify(submitted)).toBe('SubmitTaskSuccess');
      const finished = await waitForTask(server, server.adminToken, submitted.task.id);
      expect(finished).toMatchObject({ state, attempts, error: { code: 'REFUSED', message: FAILURES[form]().message } });
    });
  }

  it('a returned value is still the result named result', async () => {
    const submitted = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'back' } });
    expect((await waitForTask(server, server.adminToken, submitted.task.id)).state).toBe('SUCCEEDED');
    expect(await retrieved(server.adminToken, submitted.task.id)).toEqual({ result: { message: 'back' } });
  });
});

describe('the task in a handler context', () => {
  it('a queued task: as submitted, and its attempt across a retry', async () => {
    const { token: member, organisationId } = await provisionKey('acme', 'MEMBER');
    const registered = await query(
      server,
      member,
      `mutation ($input: AccountInput!) {
        registerAccount(input: $input) { __typename ... on RegisterAccountSuccess { account { id } } }
      }`,
      { input: { service: 'context', username: 'alice' } },
    );
    expect(registered.registerAccount.__typename).toBe('RegisterAccountSuccess');
    const submitted = await submit(
      server,
      member,
      {
        service: 'context',
        action: 'describe',
        params: { failAttempts: 1 },
        maxAttempts: 2,
        poll: 'poll-7',
        session: 'session-3',
        user: 'user-42',
        target: 'target-9',
        account: 'alice',
        priority: 5,
      },
      'id priority',
    );
    expect(submitted.__typename, JSON.stringify(submitted)).toBe('SubmitTaskSuccess');
    const finished = await waitForTask(server, member, submitted.task.id);
    expect(finished).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });

    const results = await retrieved(member, submitted.task.id);
    const id = decodeTaskId(submitted.task.id);
    for (const attempt of [1, 2]) {
      const seen = results[`attempt-${attempt}`];
      expect(seen.task.id).toBe(id);
      expect(seen.task.organisation).toEqual({ id: organisationId, name: 'acme' });
      expect(seen.task.keyName).toBe('acme-MEMBER');
      expect(seen.task.poll).toBe('poll-7');
      expect(seen.task.session).toBe('session-3');
      expect(seen.task.user).toBe('user-42');
      expect(seen.task.target).toBe('target-9');
      expect(seen.task.source).toEqual({ id: expect.any(Number), service: 'context', username: 'alice' });
      expect(seen.task.source).toEqual(seen.account);
      expect(seen.task.priority).toBe(5);
      expect(seen.task.attempt).toBe(attempt);
      expect(seen.task.maxAttempts).toBe(2);
      expect(seen.taskId).toBe(id);
      expect(seen.attempt).toBe(attempt);
    }
    const accountNumber = Buffer.from(registered.registerAccount.account.id, 'base64').toString();
    expect(accountNumber).toBe(`Account:${results['attempt-1'].task.source.id}`);
  });

  it('another organisation and key name their own', async () => {
    const { token: other, organisationId } = await provisionKey('globex', 'MEMBER');
    const submitted = await submit(server, other, { service: 'context', action: 'describe' });
    expect((await waitForTask(server, other, submitted.task.id)).state).toBe('SUCCEEDED');
    const seen = (await retrieved(other, submitted.task.id))['attempt-1'];
    expect(seen.task).toMatchObject({
      id: decodeTaskId(submitted.task.id),
      organisation: { id: organisationId, name: 'globex' },
      keyName: 'globex-MEMBER',
      poll: null,
      session: null,
      user: null,
      target: null,
      source: null,
      priority: 0,
      attempt: 1,
      maxAttempts: 3,
    });
  });

  it('a real-time call: the allocation’s organisation and key, one attempt, no tags', async () => {
    const { token: admin, organisationId } = await provisionKey('initech', 'ADMIN');
    const created = await query(
      server,
      admin,
      `mutation ($input: CreateAllocationInput!) {
        createAllocation(input: $input) { __typename ... on CreateAllocationSuccess { allocation { id } } ... on Error { code message } }
      }`,
      { input: { name: 'describe', service: 'context', action: 'describe', instances: 1 } },
    );
    expect(created.createAllocation.__typename, JSON.stringify(created)).toBe('CreateAllocationSuccess');
    const generated = await query(
      server,
      admin,
      `mutation ($allocationId: ID!) {
        generateExecutionUrl(allocationId: $allocationId) { ... on GenerateExecutionUrlSuccess { executionUrl { url token } } }
      }`,
      { allocationId: created.createAllocation.allocation.id },
    );
    const { url, token } = generated.generateExecutionUrl.executionUrl;
    for (let call = 0; call < 2; call++) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      const body = (await response.json()) as Record<string, any>;
      expect(response.status, JSON.stringify(body)).toBe(200);
      expect(body.results.map((result: { name: string }) => result.name)).toEqual(['attempt-1']);
      const seen = body.results[0].data;
      const id = decodeTaskId(body.taskId);
      expect(seen.task).toEqual({
        id,
        organisation: { id: organisationId, name: 'initech' },
        keyName: 'initech-ADMIN',
        poll: null,
        session: null,
        user: null,
        target: null,
        source: null,
        priority: 0,
        attempt: 1,
        maxAttempts: 1,
      });
      expect(seen).toMatchObject({ taskId: id, attempt: 1, account: null });
    }
  });
});
