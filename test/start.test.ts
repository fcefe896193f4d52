import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  projectRoot,
  readyUrl,
  spawnCommand,
  spawnTaskport,
  temporaryFolder,
  type SpawnedProcess,
} from './children.js';
import { query } from './helpers.js';

const GENERATED_KEY_NOTICE = 'Created the first API key';

function databasePath(): string {
  return join(temporaryFolder('taskport-start-'), 'taskport.db');
}

/** Resolves once `port` can be listened on again, i.e. the server that had it let it go. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

describe('stopping on a signal sent to the process the user started', () => {
  const starters: Array<[string, (env: Record<string, string>) => SpawnedProcess]> = [
    // The signalled process is npm itself, as when a user types it.
    ['npm start', (env) => spawnCommand('npm', ['start', '--silent'], env)],
    // The bin script run as an executable, as `taskport serve` on the PATH runs it.
    ['taskport serve', (env) => spawnCommand(join(projectRoot, 'bin/taskport.mjs'), ['serve'], env)],
    ['node bin/taskport.mjs serve', (env) => spawnTaskport(['serve'], env)],
  ];
  for (const [name, start] of starters) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`${name} shuts down gracefully on ${signal}: exit code 0 and the port is free`, async () => {
        const started = start({ TASKPORT_DB: databasePath() });
        const url = await readyUrl(started);
        const port = Number(new URL(url).port);
        expect(await portIsFree(port)).toBe(false);
        started.process.kill(signal);
        const exit = await started.exited;
        expect(exit, started.stderr()).toEqual({ code: 0, signal: null });
        expect(started.stdout()).toContain('"msg":"stopped"');
        expect(await portIsFree(port)).toBe(true);
      });
    }
  }
});

describe('a first start that cannot listen', () => {
  it('says the port is busy in one line, exits 1, and the next start still prints the first key', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const TASKPORT_DB = databasePath();
    try {
      const failed = spawnTaskport(['serve'], { TASKPORT_DB, PORT: String(port) });
      const exit = await failed.exited;
      expect(exit.code).toBe(1);
      expect(failed.stderr()).toBe(`taskport: port ${port} is in use on 127.0.0.1; set PORT to another port\n`);
      expect(failed.stdout()).not.toContain(GENERATED_KEY_NOTICE);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }

    const next = spawnTaskport(['serve'], { TASKPORT_DB });
    const url = await readyUrl(next);
    const token = /^ {4}(tp_\S+)$/m.exec(next.stdout())?.[1];
    expect(token, next.stdout()).toBeDefined();
    const data = await query({ url }, token!, '{ viewer { key { role } } }');
    expect(data).toEqual({ viewer: { key: { role: 'ADMIN' } } });
    next.process.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
  });
});

describe('a database path that cannot work', () => {
  const folder = () => temporaryFolder('taskport-badpath-');
  const cases: Array<[string, () => string, string]> = [
    ['a folder under /proc that cannot be made', () => '/proc/taskport-nonexistent/x.db', 'a folder on the path cannot be created'],
    [
      'a path through a file',
      () => {
        const file = join(folder(), 'plain-file');
        writeFileSync(file, 'x');
        return join(file, 'x.db');
      },
      'a part of the path is a file, not a folder',
    ],
    [
      'a file that is not a database',
      () => {
        const file = join(folder(), 'notes.db');
        writeFileSync(file, 'these are not the pages of a database, but they are long enough to be read as one'.repeat(20));
        return file;
      },
      'the file is not a SQLite database',
    ],
    [
      'a folder',
      () => {
        const path = join(folder(), 'data');
        mkdirSync(path);
        return path;
      },
      'the path is a folder; name a file inside it',
    ],
  ];
  for (const [name, makePath, reason] of cases) {
    for (const command of [['serve'], ['migrate'], ['key', 'create', '--organisation', 'acme']]) {
      it(`${command.join(' ')} on ${name}: one line naming TASKPORT_DB, exit code 1`, async () => {
        const path = makePath();
        const started = spawnTaskport(command, { TASKPORT_DB: path });
        const exit = await started.exited;
        expect(exit.code).toBe(1);
        expect(started.stderr()).toBe(
          `taskport: cannot open the database ${path}: ${reason} (set TASKPORT_DB to another path)\n`,
        );
      });
    }
  }

});
