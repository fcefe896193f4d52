import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog, ServiceDefinitionError, type ServiceDefinition } from '../src/catalog/index.js';
import { loadCatalog } from '../src/catalog/load.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { projectRoot, readyUrl, spawnTaskport, temporaryFolder } from './children.js';
import { query, RETRIEVE, submit, waitForTask, type TestServer } from './helpers.js';

const TOKEN = 'tp_services_test_admin_token';
const CATALOG_MODULE = join(projectRoot, 'src/catalog/index.ts');

/** A services file as a user writes it: TypeScript syntax, imports from Taskport, a TaskFailure. */
const IMAGES_TS = `
import { defineAction, defineService, TaskFailure } from ${JSON.stringify(CATALOG_MODULE)};

interface Size { width: number }
const doubled = (size: Size): Size => ({ width: size.width * 2 });

export default defineService({
  slug: 'images',
  name: 'Images',
  actions: [
    defineAction({
      slug: 'resize',
      name: 'Resize',
      execution: ['ASYNCHRONOUS'],
      parameters: [{ slug: 'width', name: 'Width', type: 'INTEGER', min: 1 }],
      handler: ({ params }) => doubled({ width: params.width as number }),
    }),
    defineAction({
      slug: 'refuse',
      name: 'Refuse',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 3,
      parameters: [],
      handler: () => {
        throw new TaskFailure('TOO_LARGE', 'the image is too large', false);
      },
    }),
  ],
});
`;

/** Plain JavaScript, no import of Taskport, through the named export. */
const GREETINGS_MJS = `
export const services = [{
  slug: 'greetings',
  name: 'Greetings',
  actions: [{
    slug: 'hello',
    name: 'Hello',
    execution: ['ASYNCHRONOUS', 'REALTIME'],
    parameters: [{ slug: 'who', name: 'Who', type: 'STRING' }],
    handler: async ({ params, log }) => {
      log('INFO', 'greeting ' + params.who);
      return { greeting: 'hello ' + params.who };
    },
  }],
}];
`;

/** TypeScript compiled as CommonJS: its default export arrives inside module.exports. */
const COUNTER_CTS = `
const service: { slug: string; [field: string]: unknown } = {
  slug: 'counter',
  name: 'Counter',
  actions: [{ slug: 'count', name: 'Count', execution: ['ASYNCHRONOUS'], parameters: [], handler: () => ({ counted: 3 }) }],
};
export default service;
`;

/** Files in a new folder of an ES module project, as `npm init` with "type": "module" makes one. */
function writeModules(files: Record<string, string>): Record<string, string> {
  const folder = temporaryFolder('taskport-services-');
  writeFileSync(join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
  return Object.fromEntries(
    Object.entries(files).map(([name, text]) => {
      const path = join(folder, name);
      writeFileSync(path, text);
      return [name, path];
    }),
  );
}

function databasePath(): string {
  return join(temporaryFolder('taskport-services-db-'), 'taskport.db');
}

interface Served {
  server: TestServer;
  stdout(): string;
}

async function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const child = spawnTaskport(['serve', ...args], { TASKPORT_DB: databasePath(), TASKPORT_BOOTSTRAP_TOKEN: TOKEN, ...env });
  const url = await readyUrl(child);
  // Enough of a TestServer for the HTTP and WebSocket helpers; the process is killed after the test.
  const server = { url, wsUrl: url.replace(/^http/, 'ws') } as TestServer;
  return { server, stdout: child.stdout };
}

async function offered(server: TestServer): Promise<Record<string, string[]>> {
  const data = await query(server, TOKEN, '{ services { slug actions { slug } } }');
  return Object.fromEntries(
    data.services.map((service: { slug: string; actions: { slug: string }[] }) => [
      service.slug,
      service.actions.map((action) => action.slug),
    ]),
  );
}

async function run(server: TestServer, service: string, action: string, params: Record<string, unknown> = {}) {
  const submitted = await submit(server, TOKEN, { service, action, params });
  expect(submitted.__typename, JSON.stringify(submitted)).toBe('SubmitTaskSuccess');
  const task = await waitForTask(server, TOKEN, submitted.task.id);
  const retrieved = task.state === 'SUCCEEDED' ? (await query(server, TOKEN, RETRIEVE, { id: task.id })).retrieveResults : null;
  return { task, results: retrieved?.results?.map((payload: any) => ({ name: payload.result.name, data: payload.data })) };
}

describe('services loaded from modules', () => {
  it('loads a .ts and a .mjs module given by repeated --services: listed, runnable, failures keep their code', async () => {
    const modules = writeModules({ 'services.ts': IMAGES_TS, 'services.mjs': GREETINGS_MJS });
    const { server } = await serve(['--services', modules['services.ts']!, '--services', modules['services.mjs']!]);

    expect(await offered(server)).toMatchObject({ images: ['resize', 'refuse'], greetings: ['hello'] });
    // The demo stays by default.
    expect(Object.keys(await offered(server))).toContain('demo');

    const resized = await run(server, 'images', 'resize', { width: 300 });
    expect(resized.task.state).toBe('SUCCEEDED');
    expect(resized.results).toEqual([{ name: 'result', data: { width: 600 } }]);

    const greeted = await run(server, 'greetings', 'hello', { who: 'ada' });
    expect(greeted.task.state).toBe('SUCCEEDED');
    expect(greeted.results).toEqual([{ name: 'result', data: { greeting: 'hello ada' } }]);

    // The TaskFailure of a .ts module is the engine's own class: its code and retryable flag hold.
    const refused = await run(server, 'images', 'refuse');
    expect(refused.task).toMatchObject({ state: 'FAILED', attempts: 1, error: { code: 'TOO_LARGE' } });

    const invalid = await submit(server, TOKEN, { service: 'images', action: 'resize', params: { width: 0 } });
    expect(invalid).toMatchObject({ __typename: 'ValidationError', code: 'INVALID_PARAMETER_VALUE' });
  });

  it('loads the comma-separated modules of TASKPORT_SERVICES (a .cts among them); TASKPORT_DEMO=false removes the demo', async () => {
    const modules = writeModules({ 'images.ts': IMAGES_TS, 'counter.cts': COUNTER_CTS });
    const { server } = await serve([], {
      TASKPORT_SERVICES: `${modules['images.ts']}, ${modules['counter.cts']}`,
      TASKPORT_DEMO: 'false',
    });
    expect(await offered(server)).toEqual({ images: ['resize', 'refuse'], counter: ['count'] });
    expect((await run(server, 'counter', 'count')).results).toEqual([{ name: 'result', data: { counted: 3 } }]);
    expect(await submit(server, TOKEN, { service: 'demo', action: 'echo', params: { message: 'hi' } })).toMatchObject({
      __typename: 'ValidationError',
      code: 'INVALID_SERVICE',
    });
  });

  it('--services overrides TASKPORT_SERVICES and --no-demo overrides TASKPORT_DEMO', async () => {
    const modules = writeModules({ 'images.ts': IMAGES_TS, 'greetings.mjs': GREETINGS_MJS });
    const { server } = await serve(['--services', modules['greetings.mjs']!, '--no-demo'], {
      TASKPORT_SERVICES: modules['images.ts']!,
      TASKPORT_DEMO: 'true',
    });
    expect(await offered(server)).toEqual({ greetings: ['hello'] });
    expect(await submit(server, TOKEN, { service: 'demo', action: 'sleep', params: { ms: 1 } })).toMatchObject({
      __typename: 'ValidationError',
      code: 'INVALID_SERVICE',
    });
  });

  it('starts with no services at all when the demo is off and none are given, and warns that nothing can be submitted', async () => {
    const { server, stdout } = await serve([], { TASKPORT_DEMO: '0' });
    expect(await offered(server)).toEqual({});
    const warnings = stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((entry) => entry.level === 40);
    expect(warnings.map((entry) => entry.msg)).toContainEqual(expect.stringContaining('nothing can be submitted'));
  });
});

describe('taskport key create --services', () => {
  it('checks permissions against the services of the modules given, as serve offers them', async () => {
    const { 'greetings.mjs': greetings } = writeModules({ 'greetings.mjs': GREETINGS_MJS });
    const create = async (args: string[]) => {
      const child = spawnTaskport(['key', 'create', '--organisation', 'acme', '--permissions', '{"greetings":"*"}', ...args], {
        TASKPORT_DB: databasePath(),
      });
      const { code } = await child.exited;
      return { code, stdout: child.stdout(), stderr: child.stderr() };
    };
    expect(await create([])).toMatchObject({ code: 2, stderr: '--permissions: no service greetings\n' });
    expect(await create(['--services', greetings!, '--no-demo'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^tp_/) });
  });
});

describe('TASKPORT_SERVICES and TASKPORT_DEMO', () => {
  it('reads module paths comma-separated, resolved to absolute paths, and the demo switch as a boolean', () => {
    expect(loadConfig({}).services).toEqual([]);
    expect(loadConfig({ TASKPORT_SERVICES: './a.ts, /srv/b.mjs,,' }).services).toEqual([join(process.cwd(), 'a.ts'), '/srv/b.mjs']);
    expect(loadConfig({}).demo).toBe(true);
    for (const off of ['false', '0', 'no']) expect(loadConfig({ TASKPORT_DEMO: off }).demo).toBe(false);
    expect(() => loadConfig({ TASKPORT_DEMO: 'maybe' })).toThrow(ConfigError);
  });
});

/** A port that nothing else listens on, held by this test so that the child cannot take it. */
async function holdPort(): Promise<{ port: number; release(): Promise<void> }> {
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const { port } = holder.address() as { port: number };
  return { port, release: () => new Promise((resolve) => holder.close(() => resolve())) };
}

/**
 * `taskport serve` must stop at a bad definition before it opens the database or the port. The
 * port is held by the test: had the server tried to listen first, it would have reported the port
 * in use instead of the definition's fault.
 */
async function refusedStart(args: string[], env: Record<string, string> = {}) {
  const held = await holdPort();
  const database = databasePath();
  try {
    const child = spawnTaskport(['serve', ...args], { TASKPORT_DB: database, PORT: String(held.port), ...env });
    const { code } = await child.exited;
    expect(child.stdout()).not.toContain('Taskport is ready');
    expect(existsSync(database), 'the database was opened').toBe(false);
    return { code, stderr: child.stderr() };
  } finally {
    await held.release();
  }
}

const resizeAction = (fields: Record<string, unknown>) => ({
  slug: 'resize',
  name: 'Resize',
  execution: ['ASYNCHRONOUS'],
  parameters: [],
  handler: () => null,
  ...fields,
});
const imagesWith = (action: Record<string, unknown>) => ({ slug: 'images', name: 'Images', actions: [action] });
const withParameter = (parameter: Record<string, unknown>) =>
  imagesWith(resizeAction({ parameters: [{ slug: 'width', name: 'Width', ...parameter }] }));

/** A module exporting `definition`; JSON cannot hold functions, so actions without a handler get one. */
const moduleOf = (definition: unknown) =>
  `const definition = ${JSON.stringify(definition)};\n` +
  `for (const action of definition.actions) action.handler ??= () => null;\n` +
  `export default definition;\n`;

describe('a bad services module stops the start with one message naming it', () => {
  it('a module that does not exist', async () => {
    const missing = join(temporaryFolder('taskport-services-'), 'nope.ts');
    expect(await refusedStart(['--services', missing])).toEqual({ code: 1, stderr: `taskport: ${missing}: no such file\n` });
  });

  it('a module that throws on import (given by TASKPORT_SERVICES)', async () => {
    const { 'broken.mjs': broken } = writeModules({ 'broken.mjs': `throw new Error('the model file is missing');\n` });
    expect(await refusedStart([], { TASKPORT_SERVICES: broken! })).toEqual({
      code: 1,
      stderr: `taskport: ${broken}: failed to load: the model file is missing\n`,
    });
  });

  it('a .ts module whose default export is not a service', async () => {
    const { 'numbers.ts': numbers } = writeModules({ 'numbers.ts': `const answer: number = 42;\nexport default answer;\n` });
    expect(await refusedStart(['--services', numbers!])).toEqual({
      code: 1,
      stderr: `taskport: ${numbers}: exports a number, not a service or an array of services\n`,
    });
  });

  it('the same service slug in two modules names both', async () => {
    const crop = { slug: 'crop', name: 'Crop', execution: ['ASYNCHRONOUS'], parameters: [] };
    const modules = writeModules({ 'a.ts': IMAGES_TS, 'b.mjs': moduleOf(imagesWith(crop)) });
    expect(await refusedStart(['--services', modules['a.ts']!, '--services', modules['b.mjs']!])).toEqual({
      code: 1,
      stderr: `taskport: service images: is defined in ${modules['a.ts']} and again in ${modules['b.mjs']}; service slugs must be unique\n`,
    });
  });

  it('a parameter type that does not exist, in a .ts module', async () => {
    const { 'services.ts': path } = writeModules({
      'services.ts': moduleOf(withParameter({ type: 'INT' })).replace('const definition =', 'const definition: any ='),
    });
    expect(await refusedStart(['--services', path!])).toEqual({
      code: 1,
      stderr:
        `taskport: ${path}: service images, action resize: parameter width: ` +
        'type "INT" does not exist (STRING, INTEGER, NUMBER, BOOLEAN, DATE, DATETIME, LIST, JSON)\n',
    });
  });

  it('a REALTIME action whose handler is not a function', async () => {
    const { 'realtime.mjs': path } = writeModules({
      'realtime.mjs': moduleOf(imagesWith(resizeAction({ execution: ['REALTIME'], handler: 'resize' }))),
    });
    expect(await refusedStart(['--services', path!, '--no-demo'])).toEqual({
      code: 1,
      stderr: `taskport: ${path}: service images, action resize: handler: must be a function, not a string\n`,
    });
  });
});

describe('every definition is validated, loaded or built in', () => {
  const cases: [string, unknown, string][] = [
    ['a service that is not an object', 42, 'a service must be an object (see defineService), not a number'],
    ['a missing service slug', { name: 'Images', actions: [resizeAction({})] }, 'service: slug: is missing'],
    [
      'a malformed service slug',
      { ...imagesWith(resizeAction({})), slug: 'Image_Tools' },
      'service Image_Tools: slug: "Image_Tools" is not a slug (lowercase letters and digits, in words joined by single hyphens, starting with a letter)',
    ],
    ['a missing service name', { slug: 'images', actions: [resizeAction({})] }, 'service images: name: is missing'],
    ['a service without actions', { slug: 'images', name: 'Images', actions: [] }, 'service images: actions: must be a non-empty array of actions (see defineAction)'],
    ['a missing action slug', imagesWith(resizeAction({ slug: undefined })), 'service images, actions[0]: slug: is missing'],
    ['a missing action name', imagesWith(resizeAction({ name: '' })), 'service images, action resize: name: is missing'],
    [
      'two actions with one slug',
      { slug: 'images', name: 'Images', actions: [resizeAction({}), resizeAction({})] },
      'service images, action resize: slug: another action of service images has slug resize',
    ],
    [
      'two parameters with one slug',
      imagesWith(resizeAction({ parameters: [1, 2].map(() => ({ slug: 'width', name: 'Width', type: 'INTEGER' })) })),
      'service images, action resize: parameter width: slug: another parameter of action resize has slug width',
    ],
    [
      'a malformed parameter slug',
      withParameter({ slug: '1st', type: 'STRING' }),
      'service images, action resize: parameter 1st: slug: "1st" is not a parameter slug (letters, digits, _ and -, starting with a letter)',
    ],
    ['a missing parameter name', withParameter({ name: undefined, type: 'STRING' }), 'service images, action resize: parameter width: name: is missing'],
    [
      'a parameter type that does not exist',
      withParameter({ type: 'INT' }),
      'service images, action resize: parameter width: type "INT" does not exist (STRING, INTEGER, NUMBER, BOOLEAN, DATE, DATETIME, LIST, JSON)',
    ],
    [
      'a parameter without a type',
      withParameter({}),
      'service images, action resize: parameter width: type is missing (STRING, INTEGER, NUMBER, BOOLEAN, DATE, DATETIME, LIST, JSON)',
    ],
    [
      'allowedValues on a type that cannot have them',
      withParameter({ type: 'INTEGER', allowedValues: ['1', '2'] }),
      'service images, action resize: parameter width: allowedValues: type INTEGER cannot have allowedValues (only STRING, LIST can)',
    ],
    [
      'allowedValues that are not strings',
      withParameter({ type: 'STRING', allowedValues: [1, 2] }),
      'service images, action resize: parameter width: allowedValues: must be a non-empty array of strings',
    ],
    [
      'a permissioned parameter without allowedValues',
      withParameter({ type: 'STRING', permissioned: true }),
      'service images, action resize: parameter width: permissioned: needs allowedValues, the values a key can be granted',
    ],
    [
      'min on a type that is not a number',
      withParameter({ type: 'STRING', min: 1 }),
      'service images, action resize: parameter width: min: type STRING cannot have min (only INTEGER, NUMBER can)',
    ],
    [
      'min above max',
      withParameter({ type: 'INTEGER', min: 10, max: 1 }),
      'service images, action resize: parameter width: min: 10 is greater than max 1',
    ],
    [
      'a default that does not fit its type',
      withParameter({ type: 'INTEGER', optional: true, default: 'wide' }),
      'service images, action resize: parameter width: default: "wide" does not fit: parameter width must be a number',
    ],
    [
      'a default outside allowedValues',
      withParameter({ type: 'STRING', optional: true, allowedValues: ['s', 'm'], default: 'xl' }),
      'service images, action resize: parameter width: default: "xl" does not fit: parameter width must be one of s, m',
    ],
    [
      'a default on a required parameter',
      withParameter({ type: 'INTEGER', default: 100 }),
      'service images, action resize: parameter width: default: only an optional parameter can have a default (add optional: true)',
    ],
    [
      'an empty execution',
      imagesWith(resizeAction({ execution: [] })),
      'service images, action resize: execution: must list how the action runs, one or more of ASYNCHRONOUS, REALTIME',
    ],
    [
      'an unknown execution',
      imagesWith(resizeAction({ execution: ['ASYNCHRONOUS', 'SYNC'] })),
      'service images, action resize: execution: "SYNC" is not a way to run (ASYNCHRONOUS, REALTIME)',
    ],
    [
      'a missing handler',
      imagesWith(resizeAction({ handler: undefined })),
      'service images, action resize: handler: is missing; an action needs a handler function',
    ],
    [
      'a REALTIME handler that is not a function',
      imagesWith(resizeAction({ execution: ['REALTIME'], handler: { run() {} } })),
      'service images, action resize: handler: must be a function, not an object',
    ],
    [
      'a prepare that is not a function',
      imagesWith(resizeAction({ prepare: 'load the model' })),
      'service images, action resize: prepare: must be a function, not a string',
    ],
    [
      'a timeoutSeconds out of range',
      imagesWith(resizeAction({ timeoutSeconds: 0 })),
      'service images, action resize: timeoutSeconds: must be a whole number from 1 to 604800, not 0',
    ],
    [
      'a maxAttempts out of range',
      imagesWith(resizeAction({ maxAttempts: 1000 })),
      'service images, action resize: maxAttempts: must be a whole number from 1 to 100, not 1000',
    ],
    [
      'parameters that are not a list',
      imagesWith(resizeAction({ parameters: undefined })),
      'service images, action resize: parameters: must be an array (an empty one for none), not undefined',
    ],
  ];

  it.each(cases)('%s', async (_, definition, message) => {
    const loading = loadCatalog({ services: [definition as ServiceDefinition], demo: false });
    await expect(loading).rejects.toThrow(ServiceDefinitionError);
    await expect(loading).rejects.toThrow(new ServiceDefinitionError(`services[0]: ${message}`));
    // The Catalog holds the built-in services to the same rules.
    expect(() => new Catalog([definition as ServiceDefinition])).toThrow(new ServiceDefinitionError(message));
  });

  it('a service named like the demo, while the demo is on, says how to switch it off', async () => {
    const demoAgain = { ...imagesWith(resizeAction({})), slug: 'demo' } as unknown as ServiceDefinition;
    await expect(loadCatalog({ services: [demoAgain], demo: true })).rejects.toThrow(
      new ServiceDefinitionError(
        'service demo: is defined by the built-in demo and again by services[0]; service slugs must be unique (or switch the demo off: --no-demo, TASKPORT_DEMO=false)',
      ),
    );
  });

  it('a module path with an extension it cannot load', async () => {
    const { 'services.json': path } = writeModules({ 'services.json': '{}' });
    await expect(loadCatalog({ services: [path!], demo: false })).rejects.toThrow(
      new ServiceDefinitionError(`${path}: cannot load a ".json" file; a services module ends in .ts, .mts, .cts, .js, .mjs, .cjs`),
    );
  });

  it('a module that exports no services, named relative to the working directory', async () => {
    const { 'empty.mjs': path } = writeModules({ 'empty.mjs': 'export const answer = 42;\n' });
    await expect(loadCatalog({ services: ['empty.mjs'], demo: false, cwd: join(path!, '..') })).rejects.toThrow(
      new ServiceDefinitionError(
        './empty.mjs: exports no services: export default a service (defineService) or an array of them, or export `services`',
      ),
    );
  });
});
