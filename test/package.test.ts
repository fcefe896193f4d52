import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, defineAction, defineService, ServiceDefinitionError, startTaskport } from '../src/index.js';
import { projectRoot, readyUrl, spawnCommand, temporaryFolder, type SpawnedProcess } from './children.js';
import { query, RETRIEVE, subscribeOverSse, temporaryDatabasePath } from './helpers.js';

const run = promisify(execFile);
const TOKEN = 'tp_package_test_token_0123456789';

const SUBMIT = `
  mutation ($input: SubmitTaskInput!) {
    submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id } } ... on Error { code message } }
  }`;

interface FinishedTask {
  state: string;
  attempts: number;
  error: { code: string; message: string } | null;
  /** Each result's data by its name; empty unless the task succeeded. */
  results: Record<string, unknown>;
}

/** Submits a task over HTTP and resolves, once its taskUpdated stream ends, with how it ended. */
async function runTask(url: string, input: Record<string, unknown>): Promise<FinishedTask> {
  const submitted = await query({ url }, TOKEN, SUBMIT, { input });
  expect(submitted.submitTask.__typename, JSON.stringify(submitted.submitTask)).toBe('SubmitTaskSuccess');
  const id = submitted.submitTask.task.id as string;
  const updates = await subscribeOverSse(
    { url },
    TOKEN,
    'subscription ($id: ID!) { taskUpdated(id: $id) { state attempts error { code message } } }',
    { id },
  );
  const last = updates.at(-1)!;
  expect(last.errors, JSON.stringify(last.errors)).toBeUndefined();
  const task = (last.data as { taskUpdated: Omit<FinishedTask, 'results'> }).taskUpdated;
  if (task.state !== 'SUCCEEDED') return { ...task, results: {} };
  const retrieved = await query({ url }, TOKEN, RETRIEVE, { id });
  const results = Object.fromEntries(
    (retrieved.retrieveResults.results as { data: unknown; result: { name: string } }[]).map(({ data, result }) => [result.name, data]),
  );
  return { ...task, results };
}

function succeeded(results: Record<string, unknown>): FinishedTask {
  return { state: 'SUCCEEDED', attempts: 1, error: null, results };
}

/** The process that logged the ready line: under npx, a grandchild of the process the test spawned. */
function serverPid(spawned: SpawnedProcess): number {
  for (const line of spawned.stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; pid?: number };
    if (entry.msg === 'Taskport is ready' && entry.pid) return entry.pid;
  }
  throw new Error(`no ready line in:\n${spawned.stdout()}`);
}

async function offeredServices(url: string): Promise<string[]> {
  const data = await query({ url }, TOKEN, '{ services { slug } }');
  return (data.services as { slug: string }[]).map((service) => service.slug).sort();
}

describe('startTaskport, the public entry', () => {
  const doubler = defineService({
    slug: 'numbers',
    name: 'Numbers',
    actions: [
      defineAction({
        slug: 'double',
        name: 'Double',
        execution: ['ASYNCHRONOUS'],
        parameters: [{ slug: 'n', name: 'N', type: 'INTEGER' }],
        handler: ({ params }) => params.n * 2,
      }),
    ],
  });

  it('serves the definitions it is given, without the demo when asked, and stops', async () => {
    const taskport = await startTaskport({
      port: 0,
      database: temporaryDatabasePath(),
      bootstrapToken: TOKEN,
      logLevel: 'silent',
      services: [doubler],
      demo: false,
    });
    try {
      expect(await offeredServices(taskport.url)).toEqual(['numbers']);
      expect(await runTask(taskport.url, { service: 'numbers', action: 'double', params: { n: 21 } })).toEqual(succeeded({ result: 42 }));
    } finally {
      await taskport.stop();
    }
  });

  it('refuses options the environment would refuse, naming each option, before it opens anything', async () => {
    const options = { port: 70_000, concurrency: 'eight', colour: 'red', host: '', logLevel: 'loud', demo: 'no' };
    const refusal = await startTaskport(options as never).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as Error).message.split('\n')).toEqual([
      'Invalid startTaskport options:',
      expect.stringMatching(/^ {2}port: .*65535/),
      '  concurrency: must be a number',
      '  colour: is not an option',
      '  host: must not be empty',
      expect.stringMatching(/^ {2}logLevel: .*"info"/),
      '  demo: must be a boolean',
    ]);
  });

  it('refuses a bad service definition with the loader ServiceDefinitionError', async () => {
    const broken = { slug: 'broken', name: 'Broken', actions: [{ slug: 'x', name: 'X', execution: ['ASYNCHRONOUS'], parameters: [] }] };
    const refusal = await startTaskport({ port: 0, database: temporaryDatabasePath(), services: [broken as never] }).catch(
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(ServiceDefinitionError);
    expect((refusal as Error).message).toContain('broken');
  });
});

describe('a project that depends on this checkout, as examples/ do (file:..)', () => {
  it("shares the server's copy of taskport: a TaskFailure of its services keeps its code and retryable: false", async () => {
    const project = temporaryFolder('taskport-linked-');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'module' }));
    mkdirSync(join(project, 'node_modules'));
    // What npm makes of a file: dependency on a folder.
    symlinkSync(projectRoot, join(project, 'node_modules', 'taskport'));
    writeFileSync(
      join(project, 'services.mjs'),
      `import { defineAction, defineService, TaskFailure } from 'taskport';
export default defineService({ slug: 'linked', name: 'Linked', actions: [defineAction({
  slug: 'refuse', name: 'Refuse', execution: ['ASYNCHRONOUS'], parameters: [],
  handler: () => { throw new TaskFailure('REFUSED', 'no', { retryable: false }); },
})] });
`,
    );
    const serving = spawnCommand(
      process.execPath,
      [join(project, 'node_modules', 'taskport', 'bin', 'taskport.mjs'), 'serve', '--services', './services.mjs', '--no-demo'],
      { TASKPORT_DB: join(project, 'taskport.db'), TASKPORT_BOOTSTRAP_TOKEN: TOKEN },
      { cwd: project },
    );
    const url = await readyUrl(serving);
    expect(await runTask(url, { service: 'linked', action: 'refuse', maxAttempts: 3 })).toEqual({
      state: 'FAILED',
      attempts: 1,
      error: { code: 'REFUSED', message: 'no' },
      results: {},
    });
  });
});

/** Files a user writes in a project of their own; nothing of them is in Taskport's tree. */
const USER_FILES: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'taskport-user', private: true, type: 'module' }, null, 2),
  // Plain ES modules, as a user without TypeScript writes them.
  'services.mjs': `
import { defineAction, defineService } from 'taskport';

export default defineService({
  slug: 'greetings',
  name: 'Greetings',
  actions: [
    defineAction({
      slug: 'greet',
      name: 'Greet',
      execution: ['ASYNCHRONOUS'],
      parameters: [{ slug: 'name', name: 'Name', type: 'STRING' }],
      handler: ({ params, log }) => {
        log('INFO', 'greeting ' + params.name);
        return 'Hello, ' + params.name + '!';
      },
    }),
  ],
});
`,
  // TypeScript, loaded without a build step; its named export is the other form the loader reads.
  'services.ts': `
import { defineAction, defineService, TaskFailure, type ServiceDefinition } from 'taskport';

const sum = defineAction({
  slug: 'sum',
  name: 'Sum',
  execution: ['ASYNCHRONOUS'],
  parameters: [
    { slug: 'numbers', name: 'Numbers', type: 'JSON' },
    { slug: 'unit', name: 'Unit', type: 'STRING', allowedValues: ['m', 'km'], optional: true, default: 'm' },
  ],
  handler: ({ params, progress, publish }) => {
    if (!Array.isArray(params.numbers)) throw new TaskFailure('NOT_A_LIST', 'numbers must be a list', { retryable: false });
    const total: number = params.numbers.reduce((sum: number, value: unknown) => sum + Number(value), 0);
    const unit: 'm' | 'km' = params.unit;
    progress(1);
    publish('report', { total, unit });
    return total;
  },
});

export const services: ServiceDefinition[] = [defineService({ slug: 'arithmetic', name: 'Arithmetic', actions: [sum] })];
`,
  // Only type-checked: the published declarations must hold a TypeScript user to the rules.
  'checks.ts': `
// @ts-expect-error the package exports its public API and nothing internal
import type { Catalog } from 'taskport';
import { defineAction, startTaskport, type TaskportOptions } from 'taskport';

defineAction({
  slug: 'typed',
  name: 'Typed',
  execution: ['ASYNCHRONOUS'],
  parameters: [{ slug: 'count', name: 'Count', type: 'INTEGER' }],
  handler: ({ params }) => {
    // @ts-expect-error an INTEGER parameter is a number
    const text: string = params.count;
    return text;
  },
});

// @ts-expect-error the port is a number
const options: TaskportOptions = { port: '4000' };
void startTaskport(options);
`,
  'tsconfig.json': JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      include: ['services.ts', 'checks.ts'],
    },
    null,
    2,
  ),
  // A program that embeds Taskport, in plain Node ESM.
  'embed.mjs': `
import { defineAction, defineService, startTaskport } from 'taskport';

const internal = await import('taskport/dist/main.js').then(() => 'importable', (error) => error.code);
const taskport = await startTaskport({
  port: 0,
  database: process.env.EMBED_DB,
  bootstrapToken: process.env.EMBED_TOKEN,
  logLevel: 'silent',
  demo: false,
  services: [
    defineService({
      slug: 'embedded',
      name: 'Embedded',
      actions: [defineAction({ slug: 'shout', name: 'Shout', execution: ['ASYNCHRONOUS'], parameters: [{ slug: 'text', name: 'Text', type: 'STRING' }], handler: ({ params }) => params.text.toUpperCase() })],
    }),
  ],
});
process.once('SIGTERM', async () => {
  await taskport.stop();
  console.log(JSON.stringify({ stopped: true }));
});
console.log(JSON.stringify({ msg: 'Taskport is ready', url: taskport.url, internal }));
`,
};

/**
 * The working tree as it is, without its node_modules (linked instead) or any dist/: `npm pack`
 * runs `prepare` and rebuilds dist/, which must not happen under the feet of the checkout.
 */
function copyOfCheckout(into: string): string {
  const copy = join(into, 'taskport');
  const skipped = new Set(['node_modules', 'dist', 'data', 'coverage', 'examples', '.git']);
  cpSync(projectRoot, copy, {
    recursive: true,
    filter: (source) => !skipped.has(source.slice(projectRoot.length).split('/').find((part) => part !== '') ?? ''),
  });
  symlinkSync(join(projectRoot, 'node_modules'), join(copy, 'node_modules'));
  return copy;
}

describe('Taskport packed and installed in a project of its own', () => {
  let folder: string;
  let project: string;
  // children.ts ends the processes a test spawned, but npx leaves the server to a shell of its own.
  const servers: number[] = [];

  // npm builds better-sqlite3 from source for the new project: about two minutes on its own here.
  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'taskport-package-'));
    const checkout = copyOfCheckout(folder);
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', folder], { cwd: checkout });
    const tarball = join(folder, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
    project = join(folder, 'project');
    mkdirSync(project);
    for (const [name, text] of Object.entries(USER_FILES)) writeFileSync(join(project, name), text);
    const manifest = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const typeScript = ['typescript', '@types/node'].map((name) => `${name}@${manifest.devDependencies[name]}`);
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...typeScript], { cwd: project });
  }, 900_000);

  afterAll(async () => {
    for (const pid of servers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // It stopped as the test asked.
      }
    }
    if (folder) await rm(folder, { recursive: true, force: true });
  }, 120_000);

  it('ships compiled JavaScript and declarations, not the sources', () => {
    const installed = join(project, 'node_modules', 'taskport');
    const { exports } = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { exports: unknown };
    expect(exports).toEqual({ '.': { types: './dist/index.d.ts', import: './dist/index.js' } });
    expect(() => readFileSync(join(installed, 'src', 'cli.ts'))).toThrow();
    expect(readFileSync(join(installed, 'drizzle', 'sqlite', 'meta', '_journal.json'), 'utf8')).toContain('entries');
  });

  it('npx taskport serve --services serves a .mjs and a .ts module, and their tasks finish', async () => {
    const serving = spawnCommand(
      'npx',
      ['--no', 'taskport', 'serve', '--services', './services.mjs', '--services', './services.ts'],
      { TASKPORT_DB: join(project, 'data', 'taskport.db'), TASKPORT_BOOTSTRAP_TOKEN: TOKEN },
      { cwd: project },
    );
    const url = await readyUrl(serving);
    const server = serverPid(serving);
    servers.push(server);
    expect(await offeredServices(url)).toEqual(['arithmetic', 'demo', 'greetings']);
    expect(await runTask(url, { service: 'greetings', action: 'greet', params: { name: 'Ada' } })).toEqual(succeeded({ result: 'Hello, Ada!' }));
    expect(await runTask(url, { service: 'arithmetic', action: 'sum', params: { numbers: [1, 2, 3.5] } })).toEqual(
      succeeded({ report: { total: 6.5, unit: 'm' }, result: 6.5 }),
    );
    // The user's module and the server share one TaskFailure: its code and retryable: false hold.
    expect(await runTask(url, { service: 'arithmetic', action: 'sum', params: { numbers: 'seven' }, maxAttempts: 3 })).toEqual({
      state: 'FAILED',
      attempts: 1,
      error: { code: 'NOT_A_LIST', message: 'numbers must be a list' },
      results: {},
    });
    // npx would not pass a SIGTERM of its own on (it forwards it to a shell, which leaves the server
    // running): a process manager signals the server itself.
    process.kill(server, 'SIGTERM');
    expect((await serving.exited).code, serving.stderr()).toBe(0);
    expect(serving.stdout()).toContain('"msg":"stopped"');
  });

  it('startTaskport runs embedded in a plain .mjs program, and deep imports are refused', async () => {
    const embedded = spawnCommand(
      process.execPath,
      ['embed.mjs'],
      { EMBED_DB: join(project, 'data', 'embedded.db'), EMBED_TOKEN: TOKEN },
      { cwd: project },
    );
    const url = await readyUrl(embedded);
    expect(embedded.stdout()).toContain('"internal":"ERR_PACKAGE_PATH_NOT_EXPORTED"');
    expect(await offeredServices(url)).toEqual(['embedded']);
    expect(await runTask(url, { service: 'embedded', action: 'shout', params: { text: 'hi' } })).toEqual(succeeded({ result: 'HI' }));
    embedded.process.kill('SIGTERM');
    expect((await embedded.exited).code, embedded.stderr()).toBe(0);
    expect(embedded.stdout()).toContain('{"stopped":true}');
  });

  it('type-checks a TypeScript user project against the published declarations', async () => {
    const checked = await run(join(project, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: project }).then(
      ({ stdout }) => ({ passed: true, output: stdout }),
      (error: { stdout: string; stderr: string }) => ({ passed: false, output: error.stdout + error.stderr }),
    );
    expect(checked).toEqual({ passed: true, output: '' });
  }, 120_000);
});
