import type { Storage } from './contract.js';
import { isPostgresUrl } from './location.js';
import { migratePgDatabase, openPgStorage } from './pg/index.js';
import type { SynchronousMode } from './durability.js';
import { migrateSqliteDatabase, openSqliteStorage } from './sqlite/index.js';

export type * from './contract.js';
export { DatabaseOpenError, redactedLocation, StorageUnavailableError, storageUnavailable } from './errors.js';
export { isPostgresUrl } from './location.js';
export { SYNCHRONOUS_MODES, type SynchronousMode } from './durability.js';

export interface StorageOptions {
  /** PostgreSQL: connections in the pool. */
  poolSize?: number;
  warn?: (message: string, error?: unknown) => void;
  /** SQLite: FULL syncs every commit to disk; PostgreSQL's durability is its own settings'. */
  synchronous?: SynchronousMode;
}

/** Opens the database `location` names (a postgres:// URL, else a SQLite path) and brings its schema up to date. */
export async function openStorage(location: string, options: StorageOptions = {}): Promise<Storage> {
  if (isPostgresUrl(location)) return openPgStorage(location, { poolSize: options.poolSize ?? 10, warn: options.warn });
  return openSqliteStorage(location, options.synchronous ? { synchronous: options.synchronous } : {});
}

export async function migrateDatabase(location: string): Promise<void> {
  if (isPostgresUrl(location)) await migratePgDatabase(location);
  else await migrateSqliteDatabase(location);
}
