import { fileURLToPath } from 'node:url';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from './schema.js';

export type PgDrizzle = NodePgDatabase<typeof schema>;

export interface PgDatabase {
  pool: pg.Pool;
  db: PgDrizzle;
  /** The URL it was opened with, for the bus's own connection. */
  url: string;
  /** Runs `work` in one transaction on one pooled client, and commits or rolls back. */
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** Runs `work` on one pooled client outside a transaction: each of its statements commits alone. */
  withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export const migrationsFolder = fileURLToPath(new URL('../../../drizzle/pg', import.meta.url));

/**
 * int8 (bigint ids, epoch-millisecond timestamps, counts) as a number rather than node-postgres's
 * default string: every value we store in one stays below 2^53. Set on our pools only, not globally,
 * so that a user's own pg in the same process keeps its defaults.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** Taken by every process that migrates: several starting at once migrate one after the other. */
const MIGRATION_LOCK = 0x7461736b; // "task"

export function openPgDatabase(url: string, poolSize: number): PgDatabase {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types,
    application_name: 'taskport',
    // Our statements are prepared by name, and after five runs PostgreSQL may keep a generic plan,
    // made without the values: for an id list or a queue it can be orders of magnitude slower
    // (taskStatuses of 10,000 ids went from 30 ms to 2 s). Planning them afresh costs far less.
    options: '-c plan_cache_mode=force_custom_plan',
  });
  // An idle client whose server went away emits here; unheard, it would end the process.
  pool.on('error', () => {});
  const db = drizzle(pool, { schema });
  const withClient = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    try {
      return await work(client);
    } finally {
      client.release();
    }
  };
  return {
    pool,
    db,
    url,
    transaction: (work) =>
      withClient(async (client) => {
        await client.query('BEGIN');
        try {
          const result = await work(client);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      }),
    withClient,
    close: () => pool.end(),
  };
}

export async function runPgMigrations(database: PgDatabase): Promise<void> {
  const client = await database.pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await migrate(drizzle(client, { schema }), { migrationsFolder });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}
