import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../src/catalog/limits.js';
import { ValidationError } from '../src/domain/errors.js';
import { TRANSPORT_LIMITS } from '../src/http/limits.js';
import { graphql, query, startServer, submit, waitForTask, type TestServer } from './helpers.js';
import { misbehavingCatalog } from './misbehaving.js';

// Every test here ends with the server still serving: a handler's misbehaviour may fail its own
// attempt, never the process.

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startServer({ concurrency: 2 }, { catalog: misbehavingCatalog() });
  token = server.adminToken;
});

afterAll(async () => {
  await server.stop();
});

const TASK_DETAILS = `query ($id: ID!) {
  task(id: $id) {
    id state attempts progress error { code message }
    results { name size }
    logs(first: 500) { edges { node { level message source } } pageInfo { endCursor } }
  }
}`;

async function finished(
  action: string,
  params: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<Record<string, any>> {
  const submitted = await submit(server, token, { service: 'misbehave', action, params, ...extra });
  expect(submitted.__typename, JSON.stringify(submitted)).toBe('SubmitTaskSuccess');
  await waitForTask(server, token, submitted.task.id);
  return (await query(server, token, TASK_DETAILS, { id: submitted.task.id })).task;
}

/** The server answers and runs another task to the end. */
async function expectServing(): Promise<void> {
  const health = await fetch(new URL('/healthz', server.url));
  expect(health.status).toBe(200);
  const echo = await submit(server, token, { service: 'demo', action: 'echo', params: { message: 'still here' } });
  expect(echo.__typename).toBe('SubmitTaskSuccess');
  expect((await waitForTask(server, token, echo.task.id)).state).toBe('SUCCEEDED');
}

function logLines(task: Record<string, any>): { level: string; message: string; source: string }[] {
  return task.logs.edges.map((edge: { node: unknown }) => edge.node);
}

describe('params over the limit are refused at submit', () => {

  it('demo.echo with a 17 MiB message over HTTP is refused with 413 (the request is over 1 MiB), and nothing runs', async () => {
    const message = 'x'.repeat(17 * 1024 * 1024);
    const refused = await graphql(server, token, 'mutation ($input: SubmitTaskInput!) { submitTask(input: $input) { __typename } }', {
      input: { service: 'demo', action: 'echo', params: { message } },
    });
    expect(refused.status).toBe(413);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
    const tasks = await query(server, token, `{ tasks(first: 500, filter: { type: "echo" }) { edges { node { id } } } }`);
    const before = tasks.tasks.edges.length;
    await expectServing();
    const after = await query(server, token, `{ tasks(first: 500, filter: { type: "echo" }) { edges { node { id } } } }`);
    expect(after.tasks.edges.length).toBe(before + 1);
  });

  it('params as large as a request can carry are accepted', async () => {
    // The request, operation included, is at most TRANSPORT_LIMITS.requestBytes.
    const message = 'x'.repeat(Math.min(LIMITS.paramsBytes, TRANSPORT_LIMITS.requestBytes) - 1024);
    const accepted = await submit(server, token, { service: 'demo', action: 'echo', params: { message } });
    expect(accepted.__typename).toBe('SubmitTaskSuccess');
    expect((await waitForTask(server, token, accepted.task.id)).state).toBe('SUCCEEDED');
  });

  it('in a batch, names the input whose params are too large (through the engine: over HTTP the request limit comes first)', async () => {
    const inputs = [
      { service: 'demo', action: 'echo', params: { message: 'small' } },
      { service: 'demo', action: 'echo', params: { message: 'x'.repeat(LIMITS.paramsBytes + 1) } },
    ];
    const viewer = (await server.taskport.engine.authenticate(token))!;
    const actor = { organisationId: viewer.organisation.id, keyId: viewer.key.id, role: viewer.key.role, permissions: viewer.key.permissions };
    const refused = await server.taskport.engine.submitTasks(actor, inputs).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused).toMatchObject({ code: 'PARAMS_TOO_LARGE', field: 'params', index: 1 });
    expect((refused as Error).message).toContain(String(LIMITS.paramsBytes));
    await expectServing();
  });
});

describe('what a handler puts out', () => {
  it('returning 17 MiB fails the attempt with RESULT_TOO_LARGE', async () => {
    const task = await finished('return-large', { bytes: 17 * 1024 * 1024 });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'RESULT_TOO_LARGE' }, results: [] });
    expect(task.error.message).toContain(String(LIMITS.resultBytes));
    await expectServing();
  });

  it('publishing 17 MiB from a timer, outside the handler, fails the attempt with RESULT_TOO_LARGE', async () => {
    const task = await finished('publish', { count: 1, bytes: 17 * 1024 * 1024, later: true });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'RESULT_TOO_LARGE' }, results: [] });
    await expectServing();
  });

  it('results past the total of a task fail the attempt, and the results within it are kept', async () => {
    const bytes = 15 * 1024 * 1024;
    const task = await finished('publish', { count: 5, bytes });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'RESULT_TOO_LARGE' } });
    expect(task.error.message).toContain(String(LIMITS.taskResultBytes));
    const stored = task.results.reduce((sum: number, result: { size: number }) => sum + result.size, 0);
    expect(task.results.length).toBe(Math.floor(LIMITS.taskResultBytes / (bytes + 2)));
    expect(stored).toBeLessThanOrEqual(LIMITS.taskResultBytes);
    await expectServing();
  });

  it("the total counts earlier attempts' results too", async () => {
    const bytes = 15 * 1024 * 1024;
    const task = await finished('publish', { count: 3, bytes, failFirstAttempt: true }, { maxAttempts: 2 });
    expect(task).toMatchObject({ state: 'FAILED', attempts: 2, error: { code: 'RESULT_TOO_LARGE' } });
    expect(task.results.length).toBe(Math.floor(LIMITS.taskResultBytes / (bytes + 2)));
    await expectServing();
  });

  it('more results than a task may have fail the attempt with TOO_MANY_RESULTS', async () => {
    const task = await finished('publish', { count: LIMITS.taskResults + 1, bytes: 1 });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'TOO_MANY_RESULTS' } });
    expect(task.results.length).toBe(LIMITS.taskResults);
    await expectServing();
  });

  it.each(['bigint', 'cycle', 'function', 'symbol', 'throwing-tojson', 'revoked-proxy'])(
    'returning what JSON cannot hold (%s) fails the attempt with RESULT_NOT_SERIALISABLE',
    async (kind) => {
      const task = await finished('return', { kind });
      expect(task).toMatchObject({ state: 'FAILED', error: { code: 'RESULT_NOT_SERIALISABLE' }, results: [] });
      await expectServing();
    },
  );

  it.each(['name', 'long-name', 'content-type'])('publishing with a bad %s fails the attempt with INVALID_RESULT', async (kind) => {
    const task = await finished('bad-publish', { kind });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'INVALID_RESULT' }, results: [] });
    await expectServing();
  });
});

describe('how a handler fails', () => {
  it.each([
    ['string', 'The handler threw a string, not an Error: a plain string'],
    ['undefined', 'The handler threw undefined, not an Error'],
    ['object', 'The handler threw an object, not an Error: [object Object]'],
  ])('throwing %s fails with HANDLER_ERROR and says what was thrown', async (kind, message) => {
    const task = await finished('throw', { kind });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'HANDLER_ERROR', message } });
    await expectServing();
  });

  it.each(['revoked-proxy', 'throwing-message'])(
    'throwing a value that cannot be inspected (%s) fails with HANDLER_ERROR',
    async (kind) => {
      const task = await finished('throw', { kind });
      expect(task).toMatchObject({ state: 'FAILED', error: { code: 'HANDLER_ERROR' } });
      await expectServing();
    },
  );

  it('a TaskFailure with a code that is not a string fails with HANDLER_ERROR', async () => {
    const task = await finished('throw', { kind: 'bad-code' });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'HANDLER_ERROR' } });
    expect(task.error.message).toContain('a code that is not a string');
    await expectServing();
  });

  it('a 2 MiB failure message is cut to the limit', async () => {
    const task = await finished('throw', { kind: 'huge-message' });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'HUGE' } });
    expect(Buffer.byteLength(task.error.message)).toBe(LIMITS.errorMessageBytes);
    await expectServing();
  });

  it('throwing synchronously fails with HANDLER_ERROR', async () => {
    const task = await finished('throw-sync');
    expect(task).toMatchObject({
      state: 'FAILED',
      error: { code: 'HANDLER_ERROR', message: 'The handler threw a string, not an Error: thrown synchronously' },
    });
    await expectServing();
  });

  it('a prepare that throws undefined fails with PREPARE_FAILED', async () => {
    const task = await finished('prepare-throws');
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'PREPARE_FAILED' } });
    await expectServing();
  });

  it('a handler that never settles is ended by its time limit, and its slot serves the next task', async () => {
    // Two hanging tasks fill both slots; the echo that follows can only run in a slot they freed.
    const hanging = await Promise.all([
      finished('hang', {}, { timeoutSeconds: 1 }),
      finished('hang', {}, { timeoutSeconds: 1 }),
      expectServing(),
    ]);
    for (const task of hanging.slice(0, 2)) {
      expect(task).toMatchObject({ state: 'FAILED', error: { code: 'TIMEOUT' } });
    }
  });

  it('rejecting, logging and publishing after the signal fired changes nothing', async () => {
    const task = await finished('reject-after-abort', {}, { timeoutSeconds: 1 });
    expect(task).toMatchObject({ state: 'FAILED', error: { code: 'TIMEOUT' }, results: [] });
    expect(logLines(task).map((line) => line.message)).not.toContain('still here after the signal');
    await expectServing();
  });
});

describe('what a handler logs and reports', () => {
  it('a line of a megabyte is cut to the limit, with a note of how much was cut', async () => {
    const task = await finished('log', { kind: 'huge-line' });
    expect(task.state).toBe('SUCCEEDED');
    const [line] = logLines(task).filter((entry) => entry.source === 'handler');
    expect(Buffer.byteLength(line!.message)).toBeLessThanOrEqual(LIMITS.logLineBytes);
    expect(line!.message).toMatch(/^é+ … \[\d+ bytes cut: a log line holds at most 16384 bytes\]$/);
    await expectServing();
  });

  it('past what one attempt may log, lines are dropped with one note', async () => {
    const task = await finished('log', { kind: 'flood' });
    expect(task.state).toBe('SUCCEEDED');
    // 1,000 lines of 16 KiB were logged: the first of them, up to the limit, are kept.
    const kept = Math.floor(LIMITS.attemptLogBytes / LIMITS.logLineBytes);
    const { task: rest } = await query(server, token, `query ($id: ID!, $after: String) {
      task(id: $id) { logs(first: 500, after: $after) { edges { node { level message source } } } }
    }`, { id: task.id, after: task.logs.pageInfo.endCursor });
    const lines = [...logLines(task), ...logLines(rest)];
    expect(lines.filter((entry) => entry.source === 'handler')).toHaveLength(kept);
    expect(lines.at(-1)).toMatchObject({ level: 'WARN', source: 'taskport' });
    expect(lines.at(-1)!.message).toContain(`lines past ${LIMITS.attemptLogBytes} are dropped`);
    expect(lines).toHaveLength(kept + 1);
    await expectServing();
  });

  it('an unknown level, a message that cannot be printed and no message at all are logged as text', async () => {
    const task = await finished('log', { kind: 'garbage' });
    expect(task.state).toBe('SUCCEEDED');
    const lines = logLines(task).filter((entry) => entry.source === 'handler');
    expect(lines.map((line) => line.level)).toEqual(['INFO', 'INFO', 'INFO', 'INFO', 'WARN']);
    expect(lines[0]!.message).toBe('an unknown level');
    expect(lines[2]!.message).toBe('Symbol(message)');
    expect(lines[3]!.message).toBe('undefined');
    await expectServing();
  });

  it('progress that is not a number is ignored, numbers are kept within 0 and 1', async () => {
    const task = await finished('progress');
    expect(task).toMatchObject({ state: 'SUCCEEDED', progress: 1 });
    await expectServing();
  });
});
