import type { WebhookEndpointStore } from '../webhook-endpoint-store.js';
import type { SqliteDatabase } from './database.js';

export class SqliteWebhookEndpointStore implements WebhookEndpointStore {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }
}
