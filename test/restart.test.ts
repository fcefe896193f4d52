import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { query, submit, waitForTask, wsClient, type TestServer } from './helpers.js';
import { projectRoot, readyUrl, spawnNode, spawnTaskport, temporaryFolder, type SpawnedProcess } from './children.js';

interface Child extends SpawnedProcess {
  /** The server as the helpers address it; only url and wsUrl are set. */
  server: TestServer;
}

/** `taskport serve` in a process of its own; resolves once it has logged its url. */
async function startChild(environment: Record<string, string>): Promise<Child> {
  const child = spawnTaskport(['serve'], environment);
  const url = await readyUrl(child);
  return { ...child, server: { url, wsUrl: url.replace(/^http/, 'ws') } as TestServer };
}

async function kill(child: Child, signal: NodeJS.Signals) {
  child.process.kill(signal);
  return child.exited;
}

/** Resolves, on taskUpdated, once the task is in the wanted state. */
function untilState(server: TestServer, token: string, id: string, wanted: string): Promise<void> {
  const client = wsClient(server, token);
  return new Promise((resolve, reject) => {
    let done = false;
    const unsubscribe = client.subscribe<{ taskUpdated: { state: string } }>(
      { query: `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`, variables: { id } },
      {
        next: (result) => {
          if (!done && result.data?.taskUpdated.state === wanted) {
            done = true;
            resolve();
            unsubscribe();
          }
        },
        error: (error) => {
          if (!done) reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => {
          if (!done) reject(new Error(`task ${id} ended without reaching ${wanted}`));
        },
      },
    );
  });
}

async function submitted(server: TestServer, token: string, input: Record<string, unknown>): Promise<string> {
  const result = await submit(server, token, input);
  expect(result.__typename, JSON.stringify(result)).toBe('SubmitTaskSuccess');
  return result.task.id;
}

async function readTask(server: TestServer, token: string, id: string) {
  const data = await query(server, token, `query ($id: ID!) { task(id: $id) { state attempts error { code } } }`, { id });
  return data.task as { state: string; attempts: number; error: { code: string } | null };
}

function setup(extra: Record<string, string> = {}) {
  const token = `tp_test_${randomBytes(12).toString('hex')}`;
  const environment = {
    TASKPORT_DB: join(temporaryFolder('taskport-restart-'), 'taskport.db'),
    TASKPORT_BOOTSTRAP_TOKEN: token,
    TASKPORT_RETRY_BASE_MS: '20',
    // A killed process's tasks wait out their lease before another start reclaims them.
    TASKPORT_LEASE_SECONDS: '1',
    ...extra,
  };
  return { token, environment };
}

describe('crash recovery', () => {
  it('runs a task left PROCESSING by a killed process again, and loses no accepted task', async () => {
    const { token, environment } = setup({ TASKPORT_CONCURRENCY: '1' });
    const first = await startChild(environment);
    const running = await submitted(first.server, token, { service: 'demo', action: 'sleep', params: { ms: 1500 }, maxAttempts: 2 });
    await untilState(first.server, token, running, 'PROCESSING');
    const queued: string[] = [];
    for (const message of ['a', 'b', 'c']) {
      queued.push(await submitted(first.server, token, { service: 'demo', action: 'echo', params: { message } }));
    }
    expect((await readTask(first.server, token, queued[0]!)).state).toBe('PENDING');

    expect(await kill(first, 'SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

    const second = await startChild(environment);
    expect(await waitForTask(second.server, token, running)).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
    for (const id of queued) {
      expect(await waitForTask(second.server, token, id)).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    }
  });

  it('fails a task out of attempts with WORKER_LOST, and its dependents with DEPENDENCY_FAILED', async () => {
    const { token, environment } = setup();
    const first = await startChild(environment);
    const lost = await submitted(first.server, token, { service: 'demo', action: 'sleep', params: { ms: 5000 }, maxAttempts: 1 });
    await untilState(first.server, token, lost, 'PROCESSING');
    const dependent = await submitted(first.server, token, {
      service: 'demo',
      action: 'echo',
      params: { message: 'after' },
      dependsOn: [lost],
    });
    expect((await readTask(first.server, token, dependent)).state).toBe('SUSPENDED');

    await kill(first, 'SIGKILL');

    const second = await startChild(environment);
    expect(await waitForTask(second.server, token, lost)).toMatchObject({
      state: 'FAILED',
      attempts: 1,
      error: { code: 'WORKER_LOST' },
    });
    expect(await waitForTask(second.server, token, dependent)).toMatchObject({
      state: 'FAILED',
      error: { code: 'DEPENDENCY_FAILED' },
    });
  });
});

describe('SIGTERM', () => {
  it('lets the running task finish, then exits with code 0', async () => {
    const { token, environment } = setup();
    const first = await startChild(environment);
    const task = await submitted(first.server, token, { service: 'demo', action: 'sleep', params: { ms: 300 }, maxAttempts: 1 });
    await untilState(first.server, token, task, 'PROCESSING');

    expect(await kill(first, 'SIGTERM')).toEqual({ code: 0, signal: null });
    expect(first.stdout()).toContain('"msg":"stopped"');

    const second = await startChild(environment);
    expect(await readTask(second.server, token, task)).toMatchObject({ state: 'SUCCEEDED', attempts: 1, error: null });
  });
});

describe('storage shutdown', () => {
  // After stop() the database belongs to the operator: removing its folder must not crash the process.
  it('leaves no thread behind that still opens the database after close()', async () => {
    const folder = temporaryFolder('taskport-restart-');
    // Five rounds, because whether the checkpointer thread opens its connection before or after
    // close() is a race; each round that loses it used to crash the process.
    const script = `
      import { rmSync } from 'node:fs';
      import { join } from 'node:path';
      import { openStorage } from ${JSON.stringify(join(projectRoot, 'src/storage/index.ts'))};
      for (let round = 0; round < 5; round++) {
        const data = join(${JSON.stringify(folder)}, 'data' + round);
        const storage = await openStorage(join(data, 'taskport.db'));
        storage.close();
        rmSync(data, { recursive: true, force: true });
      }
      setTimeout(() => process.stdout.write('survived\\n'), 300);
    `;
    const scriptPath = join(folder, 'close-and-remove.mts');
    writeFileSync(scriptPath, script);
    const child = spawnNode(['--import', 'tsx', scriptPath], {});
    const { code } = await child.exited;
    const stdout = child.stdout();
    const stderr = child.stderr();
    expect({ code, stdout, stderr: stderr.split('\n').filter((line) => /Error/.test(line)) }).toEqual({
      code: 0,
      stdout: 'survived\n',
      stderr: [],
    });
  });
});
