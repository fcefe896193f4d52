import { openDatabase, runMigrations } from './db.js';
import { SqliteQueueStore, type QueueStore } from './queue.js';
import { SqliteRecordStore, type RecordStore } from './records.js';

export type * from './queue.js';
export type * from './records.js';

export interface Storage {
  queue: QueueStore;
  records: RecordStore;
  close(): Promise<void>;
}

/** Opens (creating if need be) the SQLite database at `path` and brings its schema up to date. */
export function openStorage(path: string): Storage {
  const database = openDatabase(path);
  runMigrations(database);
  return {
    queue: new SqliteQueueStore(database),
    records: new SqliteRecordStore(database),
    close: () => database.close(),
  };
}

export async function migrateDatabase(path: string): Promise<void> {
  const database = openDatabase(path);
  try {
    runMigrations(database);
  } finally {
    await database.close();
  }
}
