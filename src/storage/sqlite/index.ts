import { InProcessPubSub } from '../../domain/events.js';
import type { Storage } from '../contract.js';
import { DatabaseOpenError, openFailureReason, storageUnavailable } from '../errors.js';
import { openDatabase, runMigrations, type SqliteDatabase, type SqliteOptions } from './database.js';
import { SqliteAggregateStore } from './aggregates.js';
import { SqliteQueueStore } from './queue.js';
import { openSqliteRecordStore } from './records.js';
import { StatsRecords } from './records/stats.js';
import { WebhooksDueNotice } from '../webhook-outbox.js';
import { SqliteScheduleStore } from './schedules.js';
import { SqliteWebhookEndpointStore } from './webhook-endpoints.js';
import { SqliteWebhookStore } from './webhooks.js';
import { SqliteWorkerRegistry } from './worker-registry.js';

/** Opens (creating if need be) the SQLite database at `path` and brings its schema up to date. */
export function openSqliteStorage(path: string, options: SqliteOptions = {}): Storage {
  const database = openMigratedDatabase(path, options);
  // One process owns an SQLite file: its own bus reaches everyone who listens.
  const events = new InProcessPubSub();
  return {
    dialect: 'sqlite',
    queue: new SqliteQueueStore(database, new WebhooksDueNotice(events)),
    records: openSqliteRecordStore(database),
    stats: new StatsRecords(database),
    aggregates: new SqliteAggregateStore(database),
    schedules: new SqliteScheduleStore(database),
    webhookEndpoints: new SqliteWebhookEndpointStore(database),
    webhooks: new SqliteWebhookStore(database),
    workers: new SqliteWorkerRegistry(database),
    events,
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
function openMigratedDatabase(path: string, options: SqliteOptions = {}): SqliteDatabase {
  let database: SqliteDatabase | undefined;
  try {
    database = openDatabase(path, options);
    runMigrations(database);
    return database;
  } catch (error) {
    void database?.close().catch(() => {});
    // drizzle wraps the driver's error of a failed migration.
    const cause = (error as { cause?: unknown }).cause ?? error;
    throw new DatabaseOpenError(path, openFailureReason(cause));
  }
}

export async function migrateSqliteDatabase(path: string): Promise<void> {
  await openMigratedDatabase(path).close();
}
