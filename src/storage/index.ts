import { openDatabase, runMigrations, type SqliteDatabase } from './db.js';
import { DatabaseOpenError, openFailureReason, storageUnavailable } from './errors.js';
import { SqliteQueueStore, type QueueStore } from './queue.js';
import { SqliteRecordStore, type RecordStore } from './records.js';

export type * from './queue.js';
export type * from './records.js';
export { DatabaseOpenError, StorageUnavailableError, storageUnavailable } from './errors.js';

export interface Storage {
  queue: QueueStore;
  records: RecordStore;
  /** Resolves when the database takes a write; rejects with StorageUnavailableError saying why not. */
  checkWritable(): Promise<void>;
  close(): Promise<void>;
}

/** Opens (creating if need be) the SQLite database at `path` and brings its schema up to date. */
export function openStorage(path: string): Storage {
  const database = openMigratedDatabase(path);
  return {
    queue: new SqliteQueueStore(database),
    records: new SqliteRecordStore(database),
    checkWritable: async () => {
      try {
        database.probeWrite();
      } catch (error) {
        throw storageUnavailable(error) ?? error;
      }
    },
    close: () => database.close(),
  };
}

/** Opens and migrates the database, or throws DatabaseOpenError saying why it cannot. */
function openMigratedDatabase(path: string): SqliteDatabase {
  let database: SqliteDatabase | undefined;
  try {
    database = openDatabase(path);
    runMigrations(database);
    return database;
  } catch (error) {
    void database?.close().catch(() => {});
    // drizzle wraps the driver's error of a failed migration.
    const cause = (error as { cause?: unknown }).cause ?? error;
    throw new DatabaseOpenError(path, openFailureReason(cause));
  }
}

export async function migrateDatabase(path: string): Promise<void> {
  await openMigratedDatabase(path).close();
}
