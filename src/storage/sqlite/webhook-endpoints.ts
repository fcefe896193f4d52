import { and, eq, isNull } from 'drizzle-orm';
import { liveSecretsOf } from '../../domain/webhooks.js';
import { newSigningSecret } from '../../webhooks/signing.js';
import type { WebhookEndpointStore } from '../webhook-endpoint-store.js';
import type { Drizzle, SqliteDatabase } from './database.js';
import { organisations, webhookEndpoints } from './schema.js';

export class SqliteWebhookEndpointStore implements WebhookEndpointStore {
  readonly #database: SqliteDatabase;
  readonly #db: Drizzle;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    this.#db = database.db;
  }

  async liveSigningSecrets(organisationId: number, endpointId: number | null, now: number): Promise<string[]> {
    if (endpointId === null) {
      const row = this.#organisationSecrets(organisationId);
      return row ? liveSecretsOf(row.secret, row.previousSecret, row.previousSecretUntil, now) : [];
    }
    const endpoint = this.#db
      .select()
      .from(webhookEndpoints)
      .where(
        and(
          eq(webhookEndpoints.id, endpointId),
          eq(webhookEndpoints.organisationId, organisationId),
          isNull(webhookEndpoints.dateDeleted),
        ),
      )
      .get();
    return endpoint ? liveSecretsOf(endpoint.secret, endpoint.previousSecret, endpoint.previousSecretUntil, now) : [];
  }

  /** The organisation's secrets, the current one created at first use; null when there is no such organisation. */
  #organisationSecrets(organisationId: number): OrganisationSecrets | null {
    const read = () =>
      this.#db
        .select({
          secret: organisations.webhookSecret,
          previousSecret: organisations.webhookPreviousSecret,
          previousSecretUntil: organisations.webhookPreviousSecretUntil,
        })
        .from(organisations)
        .where(eq(organisations.id, organisationId))
        .get();
    let row = read();
    if (!row) return null;
    if (row.secret === null) {
      // Guarded by IS NULL: of two first reads at once, one writes, and both then read its secret.
      this.#db
        .update(organisations)
        .set({ webhookSecret: newSigningSecret() })
        .where(and(eq(organisations.id, organisationId), isNull(organisations.webhookSecret)))
        .run();
      row = read();
    }
    return row?.secret ? { ...row, secret: row.secret } : null;
  }
}

interface OrganisationSecrets {
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: number | null;
}
