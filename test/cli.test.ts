import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { graphql, query } from './helpers.js';
import { readyUrl, spawnTaskport, temporaryFolder } from './children.js';

const GENERATED_KEY_NOTICE = 'Created the first API key';

function databasePath(): string {
  return join(temporaryFolder('taskport-cli-'), 'taskport.db');
}

/** Runs a command that ends by itself. */
function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTaskport(args, env);
  return new Promise((resolve) =>
    child.process.once('close', (code) => resolve({ code, stdout: child.stdout(), stderr: child.stderr() })),
  );
}

interface Served {
  url: string;
  /** Everything written to stdout up to and including the ready line. */
  stdout: string;
  stop(): Promise<number | null>;
}

/** `taskport serve`, resolved once it logs the url it listens on. */
async function serve(env: Record<string, string>): Promise<Served> {
  const child = spawnTaskport(['serve'], env);
  const url = await readyUrl(child);
  return {
    url,
    stdout: child.stdout(),
    stop: async () => {
      child.process.kill('SIGTERM');
      return (await child.exited).code;
    },
  };
}

const VIEWER = `{ viewer { organisation key { role name } } }`;

describe('taskport key create', () => {
  it('prints only the token, and the token authenticates as an ADMIN of the organisation', async () => {
    const TASKPORT_DB = databasePath();
    const created = await run(['key', 'create', '--organisation', 'acme', '--role', 'admin'], { TASKPORT_DB });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^tp_[A-Za-z0-9_-]+\n$/);
    const token = created.stdout.trim();

    const server = await serve({ TASKPORT_DB });
    // The database has a key already: no bootstrap key is made.
    expect(server.stdout).not.toContain(GENERATED_KEY_NOTICE);
    const data = await query(server, token, VIEWER);
    expect(data.viewer).toEqual({ organisation: 'acme', key: { role: 'ADMIN', name: 'cli' } });
    expect(await server.stop()).toBe(0);
  });

  it('makes MEMBER keys by default', async () => {
    const TASKPORT_DB = databasePath();
    const created = await run(['key', 'create', '--organisation', 'acme', '--name', 'ci'], { TASKPORT_DB });
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(created.stdout.split('\n')).toEqual([token, '']);

    const server = await serve({ TASKPORT_DB });
    expect((await query(server, token, VIEWER)).viewer).toEqual({ organisation: 'acme', key: { role: 'MEMBER', name: 'ci' } });
    // A member is not an admin.
    const keys = await graphql(server, token, `{ apiKeys { id } }`);
    expect(keys.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await server.stop()).toBe(0);
  });

  it('refuses an unknown role with a message and a non-zero exit', async () => {
    const TASKPORT_DB = databasePath();
    const refused = await run(['key', 'create', '--organisation', 'acme', '--role', 'owner'], { TASKPORT_DB });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/--role/);
    expect(refused.stderr).toMatch(/admin or member/);
  });

  it('narrows a key with --permissions, and refuses permissions the catalog cannot grant', async () => {
    const TASKPORT_DB = databasePath();
    const permissions = JSON.stringify({ demo: { echo: {} } });
    const created = await run(['key', 'create', '--organisation', 'acme', '--permissions', permissions], { TASKPORT_DB });
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();

    const refused = await run(['key', 'create', '--organisation', 'acme', '--permissions', '{"nowhere":"*"}'], {
      TASKPORT_DB,
    });
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/--permissions: no service nowhere/);

    const server = await serve({ TASKPORT_DB });
    const data = await query(server, token, `{ services { actions { slug } } }`);
    expect(data.services).toEqual([{ actions: [{ slug: 'echo' }] }]);
    expect(await server.stop()).toBe(0);
  });

  it('needs --organisation', async () => {
    const refused = await run(['key', 'create'], { TASKPORT_DB: databasePath() });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/--organisation/);
  });
});

describe('taskport migrate', () => {
  it('creates the database file with its tables', async () => {
    const TASKPORT_DB = join(databasePath(), '..', 'nested', 'taskport.db');
    expect(existsSync(TASKPORT_DB)).toBe(false);
    const migrated = await run(['migrate'], { TASKPORT_DB });
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toContain(TASKPORT_DB);
    expect(existsSync(TASKPORT_DB)).toBe(true);

    const database = new Database(TASKPORT_DB, { readonly: true });
    try {
      const tables = (database.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map(
        (row) => row.name,
      );
      expect(tables).toEqual(expect.arrayContaining(['tasks', 'task_dependencies', 'task_logs', 'task_results']));
    } finally {
      database.close();
    }
    // Running it again is harmless.
    expect((await run(['migrate'], { TASKPORT_DB })).code).toBe(0);
  });
});

describe('configuration', () => {
  it.each([
    ['PORT', 'abc'],
    ['TASKPORT_CONCURRENCY', '0'],
    ['TASKPORT_LOG_LEVEL', 'loud'],
    ['TASKPORT_BOOTSTRAP_TOKEN', 'short'],
  ])('serve exits with code 2 naming %s when it is %s', async (name, value) => {
    const TASKPORT_DB = databasePath();
    const refused = await run(['serve'], { TASKPORT_DB, [name]: value });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Invalid configuration');
    expect(refused.stderr).toMatch(new RegExp(`^\\s*${name}:`, 'm'));
    expect(refused.stdout).toBe('');
    expect(existsSync(TASKPORT_DB)).toBe(false);
  });
});

describe('bootstrap key', () => {
  it('prints a generated ADMIN key on the first start only', async () => {
    const TASKPORT_DB = databasePath();
    const first = await serve({ TASKPORT_DB });
    expect(first.stdout.split(GENERATED_KEY_NOTICE)).toHaveLength(2);
    const token = /^ {4}(tp_[A-Za-z0-9_-]+)$/m.exec(first.stdout)?.[1];
    expect(token, first.stdout).toBeDefined();
    expect((await query(first, token!, VIEWER)).viewer).toEqual({
      organisation: 'default',
      key: { role: 'ADMIN', name: 'bootstrap' },
    });
    expect(await first.stop()).toBe(0);

    const second = await serve({ TASKPORT_DB });
    expect(second.stdout).not.toContain(GENERATED_KEY_NOTICE);
    expect(second.stdout).not.toContain(token);
    expect((await query(second, token!, VIEWER)).viewer.organisation).toBe('default');
    expect(await second.stop()).toBe(0);
  });

  it('uses TASKPORT_BOOTSTRAP_TOKEN as the first key, without printing it', async () => {
    const TASKPORT_DB = databasePath();
    const TASKPORT_BOOTSTRAP_TOKEN = `tp_chosen_${randomBytes(8).toString('hex')}`;
    const server = await serve({ TASKPORT_DB, TASKPORT_BOOTSTRAP_TOKEN });
    expect(server.stdout).not.toContain(GENERATED_KEY_NOTICE);
    expect(server.stdout).not.toContain(TASKPORT_BOOTSTRAP_TOKEN);
    expect((await query(server, TASKPORT_BOOTSTRAP_TOKEN, VIEWER)).viewer).toEqual({
      organisation: 'default',
      key: { role: 'ADMIN', name: 'bootstrap' },
    });
    const wrong = await graphql(server, `${TASKPORT_BOOTSTRAP_TOKEN}x`, VIEWER);
    expect(wrong.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await server.stop()).toBe(0);
  });
});

describe('taskport org set', () => {
  it("sets an organisation's weight and concurrency cap, and keeps what it was not told to change", async () => {
    const TASKPORT_DB = databasePath();
    const created = await run(['key', 'create', '--organisation', 'acme'], { TASKPORT_DB });
    expect(created.code).toBe(0);
    const weighted = await run(['org', 'set', 'acme', '--weight', '3', '--max-concurrency', '5'], { TASKPORT_DB });
    expect(weighted.code, weighted.stderr).toBe(0);
    expect(JSON.parse(weighted.stdout)).toEqual({ organisation: 'acme', weight: 3, maxConcurrency: 5 });
    const uncapped = await run(['org', 'set', 'acme', '--max-concurrency', 'none'], { TASKPORT_DB });
    expect(JSON.parse(uncapped.stdout)).toEqual({ organisation: 'acme', weight: 3, maxConcurrency: null });

    // The organisation's keys read what the operator set.
    const server = await serve({ TASKPORT_DB });
    const data = await query(server, created.stdout.trim(), '{ viewer { weight maxConcurrency } }');
    expect(data.viewer).toEqual({ weight: 3, maxConcurrency: null });
    expect(await server.stop()).toBe(0);
  });

  it('names what is wrong: an unknown organisation, a weight out of range, nothing to set', async () => {
    const TASKPORT_DB = databasePath();
    expect((await run(['key', 'create', '--organisation', 'acme'], { TASKPORT_DB })).code).toBe(0);
    const unknown = await run(['org', 'set', 'nobody', '--weight', '2'], { TASKPORT_DB });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no organisation is named "nobody"');
    const zero = await run(['org', 'set', 'acme', '--weight', '0'], { TASKPORT_DB });
    expect(zero.code).not.toBe(0);
    expect(zero.stderr).toContain('must be a whole number from 1 to 1000');
    const nothing = await run(['org', 'set', 'acme'], { TASKPORT_DB });
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('give --weight, --max-concurrency or both');
  });
});
