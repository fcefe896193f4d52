import type { Storage } from './contract.js';
import { openSqliteStorage, migrateSqliteDatabase } from './sqlite/index.js';

export type * from './contract.js';
export { DatabaseOpenError, StorageUnavailableError, storageUnavailable } from './errors.js';

/** Opens the database `location` names and brings its schema up to date. */
export async function openStorage(location: string): Promise<Storage> {
  return openSqliteStorage(location);
}

export async function migrateDatabase(location: string): Promise<void> {
  await migrateSqliteDatabase(location);
}
