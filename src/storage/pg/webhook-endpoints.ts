import type { WebhookEndpointStore } from '../webhook-endpoint-store.js';
import type { PgDatabase } from './database.js';

export class PgWebhookEndpointStore implements WebhookEndpointStore {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }
}
