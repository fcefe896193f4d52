import type { WebhookStore } from '../webhook-store.js';
import type { SqliteDatabase } from './database.js';

export class SqliteWebhookStore implements WebhookStore {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }
}
