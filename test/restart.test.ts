import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { query, submit, waitForTask, wsClient, type TestServer } from './helpers.js';

const root = new URL('..', import.meta.url).pathname;

interface Child {
  process: ChildProcess;
  /** The server as the helpers address it; only url and wsUrl are set. */
  server: TestServer;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const folders: string[] = [];

afterEach(async () => {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function temporaryFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'taskport-restart-'));
  folders.push(folder);
  return folder;
}

function childEnvironment(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('TASKPORT_') && name !== 'PORT' && name !== 'HOST') environment[name] = value;
  }
  return { ...environment, PORT: '0', HOST: '127.0.0.1', TASKPORT_LOG_LEVEL: 'info', ...overrides };
}

/** `taskport serve` in a process of its own; resolves once it has logged its url. */
function startChild(environment: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['bin/taskport.mjs', 'serve'], {
    cwd: root,
    env: childEnvironment(environment),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'Taskport is ready' && entry.url) {
          const server = { url: entry.url, wsUrl: entry.url.replace(/^http/, 'ws') } as TestServer;
          resolve({ process: child, server, stdout: () => stdout, stderr: () => stderr, exited });
          return;
        }
      }
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`taskport serve exited (${code ?? signal}) before it was ready:\n${stdout}\n${stderr}`)),
    );
  });
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
    TASKPORT_DB: join(temporaryFolder(), 'taskport.db'),
    TASKPORT_BOOTSTRAP_TOKEN: token,
    TASKPORT_RETRY_BASE_MS: '20',
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
    const folder = temporaryFolder();
    // Five rounds, because whether the checkpointer thread opens its connection before or after
    // close() is a race; each round that loses it used to crash the process.
    const script = `
      import { rmSync } from 'node:fs';
      import { join } from 'node:path';
      import { openStorage } from ${JSON.stringify(join(root, 'src/storage/index.ts'))};
      for (let round = 0; round < 5; round++) {
        const data = join(${JSON.stringify(folder)}, 'data' + round);
        const storage = openStorage(join(data, 'taskport.db'));
        storage.close();
        rmSync(data, { recursive: true, force: true });
      }
      setTimeout(() => process.stdout.write('survived\\n'), 300);
    `;
    const scriptPath = join(folder, 'close-and-remove.mts');
    writeFileSync(scriptPath, script);
    const child = spawn(process.execPath, ['--import', 'tsx', scriptPath], {
      cwd: root,
      env: childEnvironment({}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    expect({ code, stdout, stderr: stderr.split('\n').filter((line) => /Error/.test(line)) }).toEqual({
      code: 0,
      stdout: 'survived\n',
      stderr: [],
    });
  });
});
