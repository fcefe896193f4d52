import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Catalog, defineAction, defineService, type ActionDefinition } from '../src/catalog/index.js';
import { demoService } from '../src/catalog/demo.js';
import { openStorage } from '../src/storage/index.js';
import { servedActions } from '../src/engine/worker.js';
import { query, startServer, submit, waitForTask } from './helpers.js';

/** `images.resize` and the whole `reports` service go away between starts; `images.crop` stays. */
function catalogOf(options: { withGone: boolean; gone?: ActionDefinition['handler'] }): Catalog {
  const action = (slug: string, handler: ActionDefinition['handler']) =>
    defineAction({ slug, name: slug, execution: ['ASYNCHRONOUS'], parameters: [], handler });
  const done = () => ({ done: true });
  const gone = options.gone ?? done;
  const images = defineService({
    slug: 'images',
    name: 'Images',
    actions: options.withGone ? [action('resize', gone), action('crop', done)] : [action('crop', done)],
  });
  const reports = defineService({ slug: 'reports', name: 'Reports', actions: [action('build', gone)] });
  return new Catalog(options.withGone ? [demoService, images, reports] : [demoService, images]);
}

/** Log lines of a server, as pino writes them. */
function recordingLogger() {
  const lines: Record<string, any>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const text of String(chunk).split('\n')) if (text) lines.push(JSON.parse(text));
      callback();
    },
  });
  return { logger: pino({ level: 'warn' }, destination), lines };
}

const TASK = `query ($id: ID!) { task(id: $id) { state attempts waitingFor queuePosition error { code } } }`;

async function submitted(server: Parameters<typeof submit>[0], token: string, input: Record<string, unknown>) {
  const result = await submit(server, token, input);
  expect(result.__typename, JSON.stringify(result)).toBe('SubmitTaskSuccess');
  return result.task.id as string;
}

describe('tasks whose action is gone', () => {
  it("A removed action's tasks stay PENDING through a restart and run when the action is back", async () => {
    // First start: the handlers hold their attempts until the stop hands the tasks back to the queue.
    const started: string[] = [];
    let allStarted = () => {};
    const allRunning = new Promise<void>((resolve) => (allStarted = resolve));
    const first = await startServer(
      { concurrency: 4, shutdownGraceMs: 50 },
      {
        catalog: catalogOf({
          withGone: true,
          gone: ({ taskId, signal }) => {
            started.push(String(taskId));
            if (started.length === 3) allStarted();
            return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
          },
        }),
      },
    );
    const token = first.adminToken;
    const gone = [
      await submitted(first, token, { service: 'images', action: 'resize' }),
      await submitted(first, token, { service: 'images', action: 'resize' }),
      await submitted(first, token, { service: 'reports', action: 'build' }),
    ];
    await allRunning;
    await first.stop();

    // Second start: images.resize and the reports service are gone.
    const { logger, lines } = recordingLogger();
    const second = await startServer(
      { database: first.database, bootstrapToken: token },
      { catalog: catalogOf({ withGone: false }), logger },
    );
    const echo = await submitted(second, token, { service: 'demo', action: 'echo', params: { message: 'still served' } });
    // Claims go by priority, then id: the echo, submitted last, ran past the gone tasks.
    expect((await waitForTask(second, token, echo)).state).toBe('SUCCEEDED');
    const waiting = await Promise.all(gone.map(async (id) => (await query(second, token, TASK, { id })).task));
    expect(waiting).toEqual([
      { state: 'PENDING', attempts: 0, waitingFor: 'NO_WORKER', queuePosition: 0, error: null },
      { state: 'PENDING', attempts: 0, waitingFor: 'NO_WORKER', queuePosition: 1, error: null },
      { state: 'PENDING', attempts: 0, waitingFor: 'NO_WORKER', queuePosition: 0, error: null },
    ]);
    expect((await query(second, token, TASK, { id: echo })).task.waitingFor).toBeNull();
    const later = new Date(Date.now() + 3_600_000);
    const scheduled = await submitted(second, token, { service: 'images', action: 'crop', runAt: later.toISOString() });
    expect((await query(second, token, TASK, { id: scheduled })).task).toMatchObject({ state: 'PENDING', waitingFor: null });

    const warnings = lines.filter((line) => line.msg === 'tasks wait for an action this server does not have');
    expect(warnings.map(({ service, action, pending }) => ({ service, action, pending }))).toEqual([
      { service: 'images', action: 'resize', pending: 2 },
      { service: 'reports', action: 'build', pending: 1 },
    ]);

    const refusedAction = await submit(second, token, { service: 'images', action: 'resize' });
    expect(refusedAction).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_ACTION', field: 'action' });
    const refusedService = await submit(second, token, { service: 'reports', action: 'build' });
    expect(refusedService).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_SERVICE', field: 'service' });

    // What the worker waits for: the scheduled crop, not the gone tasks, which have been due all along.
    const storage = await openStorage(second.database);
    try {
      expect(await storage.queue.nextDueAt(servedActions(catalogOf({ withGone: false })))).toBe(later.getTime());
      expect(await storage.queue.nextDueAt(servedActions(catalogOf({ withGone: true })))).toBeLessThan(Date.now());
    } finally {
      await storage.close();
    }
    await second.stop();

    // Third start: the actions are back, and their tasks run.
    const third = await startServer(
      { database: first.database, bootstrapToken: token },
      { catalog: catalogOf({ withGone: true }) },
    );
    for (const id of gone) expect(await waitForTask(third, token, id)).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    for (const id of gone) expect((await query(third, token, TASK, { id })).task.waitingFor).toBeNull();
    await third.stop();
  });
});
