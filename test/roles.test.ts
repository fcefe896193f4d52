import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnTaskport, temporaryFolder, type SpawnedProcess } from './children.js';
import { query, subscribeOverWebSocket, temporaryDatabase, testStore, wsClient } from './helpers.js';

const DEMO_ACTIONS = ['demo.echo', 'demo.sleep', 'demo.fail', 'demo.fraud-score', 'demo.fetch-data'];

interface ReadyLine {
  role: string;
  services: string[];
  url?: string;
  actions: string[];
  concurrency?: number;
}

/** The ready line a process logs once it is started; rejects if the process exits before that. */
function readyLine(spawned: SpawnedProcess): Promise<ReadyLine> {
  return new Promise((resolve, reject) => {
    spawned.process.stdout!.on('data', () => {
      for (const line of spawned.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as ReadyLine & { msg?: string };
        if (entry.msg === 'Taskport is ready') resolve(entry);
      }
    });
    void spawned.exited.then(({ code, signal }) =>
      reject(new Error(`taskport exited (${code ?? signal}) before it was ready:\n${spawned.stdout()}\n${spawned.stderr()}`)),
    );
  });
}

interface Started {
  ready: ReadyLine;
  /** The API of the process; only for roles that serve one. */
  api: { url: string; wsUrl: string };
  child: SpawnedProcess;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function start(args: string[], env: Record<string, string>): Promise<Started> {
  const child = spawnTaskport(args, env);
  const ready = await readyLine(child);
  const url = ready.url ?? '';
  return {
    ready,
    api: { url, wsUrl: url.replace(/^http/, 'ws') },
    child,
    stop: async () => {
      child.process.kill('SIGTERM');
      return child.exited;
    },
  };
}

/** Runs a command that ends by itself. */
async function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawnTaskport(args, env);
  const { code } = await child.exited;
  return { code, stderr: child.stderr() };
}

function bootstrapToken(): string {
  return `tp_test_${randomBytes(12).toString('hex')}`;
}

async function submitTask(api: { url: string }, token: string, action: string, params: Record<string, unknown>): Promise<string> {
  const data = await query(
    api,
    token,
    `mutation ($input: SubmitTaskInput!) {
      submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id } } ... on Error { code message } }
    }`,
    { input: { service: 'demo', action, params } },
  );
  expect(data.submitTask.__typename, JSON.stringify(data.submitTask)).toBe('SubmitTaskSuccess');
  return data.submitTask.task.id;
}

async function taskState(api: { url: string }, token: string, id: string): Promise<{ state: string; attempts: number; waitingFor: string | null }> {
  const data = await query(api, token, `query ($id: ID!) { task(id: $id) { state attempts waitingFor } }`, { id });
  return data.task;
}

/** Waits, on the API's taskUpdated subscription, until the task is in `state`. */
async function reaches(api: { wsUrl: string }, token: string, id: string, state: string): Promise<void> {
  const updates = wsClient(api, token).iterate<{ taskUpdated: { state: string } }>({
    query: `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`,
    variables: { id },
  });
  for await (const update of updates) {
    expect(update.errors, JSON.stringify(update.errors)).toBeUndefined();
    if (update.data?.taskUpdated.state === state) return;
  }
  throw new Error(`task ${id} finished without reaching ${state}`);
}

/** Waits, on the API's taskUpdated subscription, until the task has finished. */
async function finished(api: { wsUrl: string }, token: string, id: string): Promise<{ state: string }> {
  const results = await subscribeOverWebSocket(
    wsClient(api, token),
    `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`,
    { id },
  );
  const last = results.at(-1);
  expect(last?.errors, JSON.stringify(last?.errors)).toBeUndefined();
  return (last!.data as { taskUpdated: { state: string } }).taskUpdated;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

describe('role flags are checked before anything opens', () => {
  for (const command of ['serve', 'worker']) {
    it(`${command} --actions with an action the catalog lacks exits 2 naming it, and opens no database`, async () => {
      const TASKPORT_DB = join(temporaryFolder('taskport-roles-'), 'taskport.db');
      const refused = await run([command, '--actions', 'demo.echo,demo.nope'], { TASKPORT_DB });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('demo.nope is not an action');
      expect(refused.stderr).not.toContain('demo.echo is not');
      expect(existsSync(TASKPORT_DB)).toBe(false);
    });

    it(`${command} --actions refuses a name that is not service.action with exit 2`, async () => {
      const refused = await run([command, '--actions', 'echo'], { TASKPORT_DB: join(temporaryFolder('taskport-roles-'), 'taskport.db') });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('echo is not service.action');
    });

    for (const concurrency of command === 'serve' ? ['0', 'many'] : ['1025', '2.5']) {
      it(`${command} --concurrency ${concurrency} exits 2`, async () => {
        const refused = await run([command, '--concurrency', concurrency], {
          TASKPORT_DB: join(temporaryFolder('taskport-roles-'), 'taskport.db'),
        });
        expect(refused.code).toBe(2);
        expect(refused.stderr).toContain('must be a whole number from 1 to 1024');
      });
    }
  }

  it('serve --no-worker refuses --actions and --concurrency, which only a worker has', async () => {
    for (const flags of [['--actions', 'demo.echo'], ['--concurrency', '2']]) {
      const refused = await run(['serve', '--no-worker', ...flags], { TASKPORT_DB: join(temporaryFolder('taskport-roles-'), 'taskport.db') });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--no-worker runs no tasks');
    }
  });
});

describe('the ready line', () => {
  it('of serve names role all, every action and the concurrency of TASKPORT_CONCURRENCY', async () => {
    const served = await start(['serve'], { TASKPORT_DB: await temporaryDatabase(), TASKPORT_CONCURRENCY: '5' });
    expect(served.ready).toMatchObject({ role: 'all', actions: DEMO_ACTIONS, concurrency: 5 });
    expect(await served.stop()).toEqual({ code: 0, signal: null });
  });

  it('of serve --no-worker names role api and no actions', async () => {
    const served = await start(['serve', '--no-worker'], { TASKPORT_DB: await temporaryDatabase() });
    expect(served.ready).toMatchObject({ role: 'api', actions: [] });
    expect(served.ready.url).toBeDefined();
    expect(served.ready.concurrency).toBeUndefined();
    expect(await served.stop()).toEqual({ code: 0, signal: null });
  });

  it('takes --concurrency over TASKPORT_CONCURRENCY', async () => {
    const served = await start(['serve', '--actions', 'demo.echo', '--concurrency', '3'], {
      TASKPORT_DB: await temporaryDatabase(),
      TASKPORT_CONCURRENCY: '5',
    });
    expect(served.ready).toMatchObject({ role: 'all', actions: ['demo.echo'], concurrency: 3 });
    expect(await served.stop()).toEqual({ code: 0, signal: null });
  });

  it('of worker names the actions of --services, and --no-demo takes the demo out of what --actions may name', async () => {
    const folder = temporaryFolder('taskport-roles-');
    const services = join(folder, 'images.mjs');
    writeFileSync(
      services,
      `import { defineAction, defineService } from 'taskport';
export default defineService({
  slug: 'images', name: 'Images', description: 'Image work.',
  actions: [defineAction({ slug: 'resize', name: 'Resize', description: 'Resizes.', execution: ['ASYNCHRONOUS'], parameters: [], handler: () => ({}) })],
});
`,
    );
    const TASKPORT_DB = await temporaryDatabase();
    const worker = await start(['worker', '--services', services, '--no-demo', '--actions', 'images.resize'], { TASKPORT_DB });
    expect(worker.ready).toMatchObject({ role: 'worker', services: ['images'], actions: ['images.resize'] });
    expect(await worker.stop()).toEqual({ code: 0, signal: null });

    const refused = await run(['worker', '--services', services, '--no-demo', '--actions', 'images.resize,demo.echo'], { TASKPORT_DB });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('demo.echo is not an action of the loaded services (they have: images.resize)');
  });
});

describe('taskport serve --no-worker', () => {
  it('accepts tasks and runs none: they stay PENDING until a process with a worker starts', async () => {
    const TASKPORT_DB = await temporaryDatabase();
    const TASKPORT_BOOTSTRAP_TOKEN = bootstrapToken();
    const apiOnly = await start(['serve', '--no-worker'], { TASKPORT_DB, TASKPORT_BOOTSTRAP_TOKEN });
    const health = await fetch(new URL('/healthz', apiOnly.api.url));
    expect(health.status).toBe(200);
    const id = await submitTask(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, 'echo', { message: 'later' });
    // The action is in this process's catalog: waitingFor does not tell that no worker runs here.
    expect(await taskState(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, id)).toEqual({ state: 'PENDING', attempts: 0, waitingFor: null });
    expect(await apiOnly.stop()).toEqual({ code: 0, signal: null });

    // A whole life of the API-only process, its shutdown included, left the task untouched;
    // a process with a worker then runs it.
    const next = await start(['serve'], { TASKPORT_DB, TASKPORT_BOOTSTRAP_TOKEN });
    expect(await finished(next.api, TASKPORT_BOOTSTRAP_TOKEN, id)).toEqual({ state: 'SUCCEEDED' });
    expect(await next.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('taskport worker', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`listens on no port, logs a ready line without a url, and stops on ${signal} with exit 0`, async () => {
      const PORT = await freePort();
      const child = spawnTaskport(['worker', '--actions', 'demo.echo,demo.sleep', '--concurrency', '2'], {
        TASKPORT_DB: await temporaryDatabase(),
        PORT: String(PORT),
      });
      const ready = await readyLine(child);
      expect(ready).toMatchObject({ role: 'worker', actions: ['demo.echo', 'demo.sleep'], concurrency: 2 });
      expect(ready.url).toBeUndefined();
      expect(await portIsFree(PORT)).toBe(true);
      // Only a process with an API makes the first key: it prints it where its operator looks.
      expect(child.stdout()).not.toContain('Created the first API key');
      child.process.kill(signal);
      expect(await child.exited, child.stderr()).toEqual({ code: 0, signal: null });
      expect(child.stdout()).toContain('"msg":"stopped"');
    });
  }
});

describe('taskport serve --actions', () => {
  it('runs the actions named and leaves the others PENDING', async () => {
    const TASKPORT_BOOTSTRAP_TOKEN = bootstrapToken();
    const served = await start(['serve', '--actions', 'demo.echo'], { TASKPORT_DB: await temporaryDatabase(), TASKPORT_BOOTSTRAP_TOKEN });
    // Submitted first, so that a worker claiming it would have claimed it before the echo.
    const sleep = await submitTask(served.api, TASKPORT_BOOTSTRAP_TOKEN, 'sleep', { ms: 0 });
    const echo = await submitTask(served.api, TASKPORT_BOOTSTRAP_TOKEN, 'echo', { message: 'now' });
    expect(await finished(served.api, TASKPORT_BOOTSTRAP_TOKEN, echo)).toEqual({ state: 'SUCCEEDED' });
    expect(await taskState(served.api, TASKPORT_BOOTSTRAP_TOKEN, sleep)).toEqual({ state: 'PENDING', attempts: 0, waitingFor: null });
    expect(await served.stop()).toEqual({ code: 0, signal: null });
  });
});

// One SQLite file is for one process: processes side by side need the PostgreSQL store.
describe.runIf(testStore === 'postgres')('an API process and a worker process on one PostgreSQL database', () => {
  it('a task submitted to serve --no-worker is run by worker --actions demo.echo', async () => {
    const TASKPORT_DB = await temporaryDatabase();
    const TASKPORT_BOOTSTRAP_TOKEN = bootstrapToken();
    const [apiOnly, worker] = await Promise.all([
      start(['serve', '--no-worker'], { TASKPORT_DB, TASKPORT_BOOTSTRAP_TOKEN }),
      start(['worker', '--actions', 'demo.echo'], { TASKPORT_DB, TASKPORT_BOOTSTRAP_TOKEN }),
    ]);
    const echo = await submitTask(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, 'echo', { message: 'across processes' });
    const sleep = await submitTask(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, 'sleep', { ms: 0 });
    expect(await finished(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, echo)).toEqual({ state: 'SUCCEEDED' });
    expect((await taskState(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, sleep)).state).toBe('PENDING');
    expect(await worker.stop()).toEqual({ code: 0, signal: null });
    expect(await apiOnly.stop()).toEqual({ code: 0, signal: null });
  });

  it('a worker stopped while it runs a task gives it back once its grace period is over, and exits 0', async () => {
    const TASKPORT_DB = await temporaryDatabase();
    const TASKPORT_BOOTSTRAP_TOKEN = bootstrapToken();
    const apiOnly = await start(['serve', '--no-worker'], { TASKPORT_DB, TASKPORT_BOOTSTRAP_TOKEN });
    const worker = await start(['worker', '--actions', 'demo.sleep'], { TASKPORT_DB, TASKPORT_SHUTDOWN_GRACE_MS: '0' });
    const sleep = await submitTask(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, 'sleep', { ms: 600_000 });
    await reaches(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, sleep, 'PROCESSING');
    expect(await worker.stop()).toEqual({ code: 0, signal: null });
    expect(worker.child.stdout()).toContain('"msg":"stopped"');
    expect((await taskState(apiOnly.api, TASKPORT_BOOTSTRAP_TOKEN, sleep)).state).toBe('PENDING');
    expect(await apiOnly.stop()).toEqual({ code: 0, signal: null });
  });
});
