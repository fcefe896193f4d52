import type { WebhookStore } from '../webhook-store.js';
import type { PgDatabase } from './database.js';

export class PgWebhookStore implements WebhookStore {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }
}
