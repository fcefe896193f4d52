import type { Storage } from '../contract.js';
import { DatabaseOpenError, openFailureReason, storageUnavailable } from '../errors.js';
import { openPgDatabase, runPgMigrations, type PgDatabase } from './database.js';
import { PgPubSub } from './events.js';
import { PgAggregateStore } from './aggregates.js';
import { PgQueueStore } from './queue.js';
import { openPgRecordStore } from './records.js';
import { StatsRecords } from './records/stats.js';
import { WebhooksDueNotice } from '../webhook-outbox.js';
import { PgScheduleStore } from './schedules.js';
import { PgWebhookEndpointStore } from './webhook-endpoints.js';
import { PgWebhookStore } from './webhooks.js';
import { PgWorkerRegistry } from './worker-registry.js';

export interface PgStorageOptions {
  poolSize: number;
  /** Told when the bus loses its connection, and when it gets it back. */
  warn?: (message: string, error?: unknown) => void;
}

/** Connects to the PostgreSQL database at `url`, brings its schema up to date and listens for events. */
export async function openPgStorage(url: string, options: PgStorageOptions): Promise<Storage> {
  const database = await openMigratedDatabase(url, options.poolSize);
  const events = new PgPubSub({ url, pool: database.pool, warn: options.warn });
  try {
    await events.start();
  } catch (error) {
    await database.close().catch(() => {});
    throw new DatabaseOpenError(url, openFailureReason(error));
  }
  return {
    dialect: 'postgres',
    queue: new PgQueueStore(database, new WebhooksDueNotice(events)),
    records: openPgRecordStore(database),
    stats: new StatsRecords(database),
    aggregates: new PgAggregateStore(database),
    schedules: new PgScheduleStore(database),
    webhookEndpoints: new PgWebhookEndpointStore(database),
    webhooks: new PgWebhookStore(database),
    workers: new PgWorkerRegistry(database),
    events,
    checkWritable: async () => {
      try {
        // Assigning a transaction id is refused by a read-only server, which a SELECT 1 is not.
        await database.pool.query('SELECT txid_current()');
      } catch (error) {
        throw storageUnavailable(error) ?? error;
      }
    },
    close: async () => {
      await events.close();
      await database.close();
    },
  };
}

async function openMigratedDatabase(url: string, poolSize: number): Promise<PgDatabase> {
  const database = openPgDatabase(url, poolSize);
  try {
    await runPgMigrations(database);
    return database;
  } catch (error) {
    await database.close().catch(() => {});
    const cause = (error as { cause?: unknown }).cause ?? error;
    throw new DatabaseOpenError(url, openFailureReason(cause));
  }
}

export async function migratePgDatabase(url: string): Promise<void> {
  await (await openMigratedDatabase(url, 1)).close();
}
