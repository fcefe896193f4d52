import { and, asc, count, desc, eq, gt, inArray, isNull, lt, ne, or, sql } from 'drizzle-orm';
import type { Page, PageRequest } from '../../domain/types.js';
import { liveSecretsOf, type WebhookDelivery, type WebhookEndpoint } from '../../domain/webhooks.js';
import { newSigningSecret } from '../../webhooks/signing.js';
import {
  whyNotRedelivered,
  type NewWebhookEndpoint,
  type Redelivery,
  type WebhookDeliveryOwner,
  type WebhookEndpointChanges,
  type WebhookEndpointStore,
} from '../webhook-endpoint-store.js';
import { toWebhookDelivery, toWebhookEndpoint } from '../webhook-rows.js';
import type { Drizzle, SqliteDatabase } from './database.js';
import { page } from './records/page.js';
import { organisations, webhookDeliveries, webhookEndpoints, webhookMessages } from './schema.js';

/** A delivery with its message's url and event, which every attempt of the message shares. */
const deliveryColumns = {
  id: webhookDeliveries.id,
  messageId: webhookDeliveries.messageId,
  organisationId: webhookDeliveries.organisationId,
  taskId: webhookDeliveries.taskId,
  endpointId: webhookDeliveries.endpointId,
  url: webhookMessages.url,
  event: webhookMessages.event,
  attempt: webhookDeliveries.attempt,
  outcome: webhookDeliveries.outcome,
  httpStatus: webhookDeliveries.httpStatus,
  durationMs: webhookDeliveries.durationMs,
  error: webhookDeliveries.error,
  nextAttemptAt: webhookDeliveries.nextAttemptAt,
  dateCreated: webhookDeliveries.dateCreated,
};

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
      .where(and(liveEndpoint(organisationId, endpointId), eq(webhookEndpoints.enabled, true)))
      .get();
    return endpoint ? liveSecretsOf(endpoint.secret, endpoint.previousSecret, endpoint.previousSecretUntil, now) : [];
  }

  async createWebhookEndpoint(input: NewWebhookEndpoint, maximum: number, now: number): Promise<WebhookEndpoint | null> {
    const db = this.#db;
    // Immediate: two creations at once count one after the other, so the maximum holds.
    return this.#database.sqlite.transaction((): WebhookEndpoint | null => {
      const [existing] = db
        .select({ count: count() })
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.organisationId, input.organisationId), isNull(webhookEndpoints.dateDeleted)))
        .all();
      if ((existing?.count ?? 0) >= maximum) return null;
      const record = db
        .insert(webhookEndpoints)
        .values({ ...input, dateCreated: now })
        .returning()
        .get();
      return toWebhookEndpoint(record);
    }).immediate();
  }

  async listWebhookEndpoints(organisationId: number, request: PageRequest): Promise<Page<WebhookEndpoint>> {
    const records = this.#db
      .select()
      .from(webhookEndpoints)
      .where(
        and(
          eq(webhookEndpoints.organisationId, organisationId),
          isNull(webhookEndpoints.dateDeleted),
          request.afterId == null ? undefined : gt(webhookEndpoints.id, request.afterId),
        ),
      )
      .orderBy(asc(webhookEndpoints.id))
      .limit(request.first + 1)
      .all();
    return page(records.map(toWebhookEndpoint), request.first);
  }

  async getWebhookEndpoints(organisationId: number, ids: readonly number[]): Promise<WebhookEndpoint[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(webhookEndpoints)
      .where(
        and(
          eq(webhookEndpoints.organisationId, organisationId),
          inArray(webhookEndpoints.id, [...ids]),
          isNull(webhookEndpoints.dateDeleted),
        ),
      )
      .all()
      .map(toWebhookEndpoint);
  }

  async updateWebhookEndpoint(
    organisationId: number,
    endpointId: number,
    { enabled, ...changes }: WebhookEndpointChanges,
  ): Promise<WebhookEndpoint | null> {
    const set = {
      ...changes,
      ...(enabled === undefined ? {} : { enabled }),
      ...(enabled === true ? { disabledReason: null, failingSince: null } : {}),
    };
    const query =
      Object.keys(set).length === 0
        ? this.#db.select().from(webhookEndpoints).where(liveEndpoint(organisationId, endpointId))
        : this.#db.update(webhookEndpoints).set(set).where(liveEndpoint(organisationId, endpointId)).returning();
    const record = query.get();
    return record ? toWebhookEndpoint(record) : null;
  }

  async deleteWebhookEndpoint(organisationId: number, endpointId: number, now: number): Promise<WebhookEndpoint | null> {
    const db = this.#db;
    return this.#database.sqlite.transaction((): WebhookEndpoint | null => {
      const record = db
        .update(webhookEndpoints)
        .set({ dateDeleted: now })
        .where(liveEndpoint(organisationId, endpointId))
        .returning()
        .get();
      if (!record) return null;
      // A deliverer whose attempt is under way finds its lease gone, and records nothing.
      db.update(webhookMessages)
        .set({ status: 'FAILED', leaseOwner: null, leaseExpiresAt: null })
        .where(and(eq(webhookMessages.endpointId, endpointId), eq(webhookMessages.status, 'PENDING')))
        .run();
      return toWebhookEndpoint(record);
    }).immediate();
  }

  async rotateWebhookEndpointSecret(
    organisationId: number,
    endpointId: number,
    secret: string,
    previousUntil: number,
  ): Promise<WebhookEndpoint | null> {
    // The SET reads the row as it was: the current secret becomes the previous one in the same statement.
    const record = this.#db
      .update(webhookEndpoints)
      .set({ previousSecret: sql`secret`, previousSecretUntil: previousUntil, secret })
      .where(liveEndpoint(organisationId, endpointId))
      .returning()
      .get();
    return record ? toWebhookEndpoint(record) : null;
  }

  async organisationSigningSecret(organisationId: number): Promise<string | null> {
    return this.#organisationSecrets(organisationId)?.secret ?? null;
  }

  async rotateOrganisationSigningSecret(organisationId: number, secret: string, previousUntil: number): Promise<string | null> {
    const record = this.#db
      .update(organisations)
      .set({ webhookPreviousSecret: sql`webhook_secret`, webhookPreviousSecretUntil: previousUntil, webhookSecret: secret })
      .where(eq(organisations.id, organisationId))
      .returning({ secret: organisations.webhookSecret })
      .get();
    return record?.secret ?? null;
  }

  async listWebhookDeliveries(
    organisationId: number,
    owner: WebhookDeliveryOwner,
    request: PageRequest,
  ): Promise<Page<WebhookDelivery>> {
    // Each owner reads its own index, (task_id, id) or (endpoint_id, id), newest first.
    const byOwner =
      'taskId' in owner ? eq(webhookDeliveries.taskId, owner.taskId) : eq(webhookDeliveries.endpointId, owner.endpointId);
    const records = this.#db
      .select(deliveryColumns)
      .from(webhookDeliveries)
      .innerJoin(webhookMessages, eq(webhookMessages.id, webhookDeliveries.messageId))
      .where(
        and(
          byOwner,
          eq(webhookDeliveries.organisationId, organisationId),
          request.afterId == null ? undefined : lt(webhookDeliveries.id, request.afterId),
        ),
      )
      .orderBy(desc(webhookDeliveries.id))
      .limit(request.first + 1)
      .all();
    return page(records.map(toWebhookDelivery), request.first);
  }

  async getWebhookDeliveries(organisationId: number, ids: readonly number[]): Promise<WebhookDelivery[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select(deliveryColumns)
      .from(webhookDeliveries)
      .innerJoin(webhookMessages, eq(webhookMessages.id, webhookDeliveries.messageId))
      .where(and(eq(webhookDeliveries.organisationId, organisationId), inArray(webhookDeliveries.id, [...ids])))
      .all()
      .map(toWebhookDelivery);
  }

  async redeliverWebhook(organisationId: number, deliveryId: number, now: number): Promise<Redelivery> {
    const messageOfDelivery = this.#db
      .select({ messageId: webhookDeliveries.messageId })
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.organisationId, organisationId)));
    const receivingEndpoints = this.#db
      .select({ id: webhookEndpoints.id })
      .from(webhookEndpoints)
      .where(and(isNull(webhookEndpoints.dateDeleted), eq(webhookEndpoints.enabled, true)));
    const changed = this.#db
      .update(webhookMessages)
      .set({ status: 'PENDING', nextAttemptAt: now, leaseOwner: null, leaseExpiresAt: null })
      .where(
        and(
          eq(webhookMessages.id, sql`(${messageOfDelivery})`),
          ne(webhookMessages.status, 'PENDING'),
          or(isNull(webhookMessages.endpointId), inArray(webhookMessages.endpointId, receivingEndpoints)),
        ),
      )
      .returning({ id: webhookMessages.id })
      .get();
    const [delivery] = await this.getWebhookDeliveries(organisationId, [deliveryId]);
    if (!delivery) return { outcome: 'NOT_FOUND' };
    if (changed) return { outcome: 'PENDING_AGAIN', delivery };
    const message = this.#db
      .select({ status: webhookMessages.status, endpointDeleted: webhookEndpoints.dateDeleted })
      .from(webhookMessages)
      .leftJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookMessages.endpointId))
      .where(eq(webhookMessages.id, sql`(${messageOfDelivery})`))
      .get();
    return whyNotRedelivered(message);
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

function liveEndpoint(organisationId: number, endpointId: number) {
  return and(
    eq(webhookEndpoints.id, endpointId),
    eq(webhookEndpoints.organisationId, organisationId),
    isNull(webhookEndpoints.dateDeleted),
  );
}

interface OrganisationSecrets {
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: number | null;
}
