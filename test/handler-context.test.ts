import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, defineAction, defineService, TaskFailure } from '../src/catalog/index.js';
import { demoService } from '../src/catalog/demo.js';
import { query, RETRIEVE, startServer, submit, waitForTask, type TestServer } from './helpers.js';

// How the ways of throwing TaskFailure spend the task's attempts.

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
