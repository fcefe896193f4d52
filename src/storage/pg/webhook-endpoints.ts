import { and, eq, isNull } from 'drizzle-orm';
import { liveSecretsOf } from '../../domain/webhooks.js';
import { newSigningSecret } from '../../webhooks/signing.js';
import type { WebhookEndpointStore } from '../webhook-endpoint-store.js';
import type { PgDatabase, PgDrizzle } from './database.js';
import { organisations, webhookEndpoints } from './schema.js';

export class PgWebhookEndpointStore implements WebhookEndpointStore {
  readonly #database: PgDatabase;
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
    this.#database = database;
    this.#db = database.db;
  }

  async liveSigningSecrets(organisationId: number, endpointId: number | null, now: number): Promise<string[]> {
    if (endpointId === null) {
      const row = await this.#organisationSecrets(organisationId);
      return row ? liveSecretsOf(row.secret, row.previousSecret, row.previousSecretUntil, now) : [];
    }
    const [endpoint] = await this.#db
      .select()
      .from(webhookEndpoints)
      .where(
        and(
          eq(webhookEndpoints.id, endpointId),
          eq(webhookEndpoints.organisationId, organisationId),
          isNull(webhookEndpoints.dateDeleted),
        ),
      );
    return endpoint ? liveSecretsOf(endpoint.secret, endpoint.previousSecret, endpoint.previousSecretUntil, now) : [];
  }

  /** The organisation's secrets, the current one created at first use; null when there is no such organisation. */
  async #organisationSecrets(organisationId: number): Promise<OrganisationSecrets | null> {
    const read = async () => {
      const [row] = await this.#db
        .select({
          secret: organisations.webhookSecret,
          previousSecret: organisations.webhookPreviousSecret,
          previousSecretUntil: organisations.webhookPreviousSecretUntil,
        })
        .from(organisations)
        .where(eq(organisations.id, organisationId));
      return row;
    };
    let row = await read();
    if (!row) return null;
    if (row.secret === null) {
      // Guarded by IS NULL: of two first reads at once, one writes, and both then read its secret.
      await this.#db
        .update(organisations)
        .set({ webhookSecret: newSigningSecret() })
        .where(and(eq(organisations.id, organisationId), isNull(organisations.webhookSecret)));
      row = await read();
    }
    return row?.secret ? { ...row, secret: row.secret } : null;
  }
}

interface OrganisationSecrets {
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: number | null;
}
