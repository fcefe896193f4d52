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
import type { PgDatabase, PgDrizzle } from './database.js';
import { page } from './records/page.js';
import { organisations, webhookDeliveries, webhookEndpoints, webhookMessages } from './schema.js';

const DEADLOCK_DETECTED = '40P01';
const DELETE_ROUNDS = 3;

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

export class PgWebhookEndpointStore implements WebhookEndpointStore {
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
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
      .where(and(liveEndpoint(organisationId, endpointId), eq(webhookEndpoints.enabled, true)));
    return endpoint ? liveSecretsOf(endpoint.secret, endpoint.previousSecret, endpoint.previousSecretUntil, now) : [];
  }

  async createWebhookEndpoint(input: NewWebhookEndpoint, maximum: number, now: number): Promise<WebhookEndpoint | null> {
    return this.#db.transaction(async (tx): Promise<WebhookEndpoint | null> => {
      // The organisation's row, locked, orders creations at once in any process, so the maximum holds.
      await tx
        .select({ id: organisations.id })
        .from(organisations)
        .where(eq(organisations.id, input.organisationId))
        .for('update');
      const [existing] = await tx
        .select({ count: count() })
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.organisationId, input.organisationId), isNull(webhookEndpoints.dateDeleted)));
      if ((existing?.count ?? 0) >= maximum) return null;
      const [record] = await tx
        .insert(webhookEndpoints)
        .values({ ...input, dateCreated: now })
        .returning();
      return toWebhookEndpoint(record!);
    });
  }

  async listWebhookEndpoints(organisationId: number, request: PageRequest): Promise<Page<WebhookEndpoint>> {
    const records = await this.#db
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
      .limit(request.first + 1);
    return page(records.map(toWebhookEndpoint), request.first);
  }

  async getWebhookEndpoints(organisationId: number, ids: readonly number[]): Promise<WebhookEndpoint[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select()
      .from(webhookEndpoints)
      .where(
        and(
          eq(webhookEndpoints.organisationId, organisationId),
          inArray(webhookEndpoints.id, [...ids]),
          isNull(webhookEndpoints.dateDeleted),
        ),
      );
    return records.map(toWebhookEndpoint);
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
    const [record] =
      Object.keys(set).length === 0
        ? await this.#db.select().from(webhookEndpoints).where(liveEndpoint(organisationId, endpointId))
        : await this.#db.update(webhookEndpoints).set(set).where(liveEndpoint(organisationId, endpointId)).returning();
    return record ? toWebhookEndpoint(record) : null;
  }

  async deleteWebhookEndpoint(organisationId: number, endpointId: number, now: number): Promise<WebhookEndpoint | null> {
    // An attempt that disables the endpoint (a 410) locks its message, the endpoint, then the
    // endpoint's other messages, which no order of ours can avoid: PostgreSQL ends one of the two,
    // and when it is this one, it runs again.
    for (let round = 1; ; round++) {
      try {
        return await this.#deleteEndpointOnce(organisationId, endpointId, now);
      } catch (error) {
        if (!isDeadlock(error) || round === DELETE_ROUNDS) throw error;
      }
    }
  }

  async #deleteEndpointOnce(organisationId: number, endpointId: number, now: number): Promise<WebhookEndpoint | null> {
    return this.#db.transaction(async (tx): Promise<WebhookEndpoint | null> => {
      // Messages first, then the endpoint: the order in which a deliverer's attempt locks them,
      // so that the two do not deadlock.
      await tx
        .update(webhookMessages)
        .set({ status: 'FAILED', leaseOwner: null, leaseExpiresAt: null })
        .where(
          and(
            eq(webhookMessages.endpointId, endpointId),
            eq(webhookMessages.status, 'PENDING'),
            inArray(
              webhookMessages.endpointId,
              tx.select({ id: webhookEndpoints.id }).from(webhookEndpoints).where(liveEndpoint(organisationId, endpointId)),
            ),
          ),
        );
      const [record] = await tx
        .update(webhookEndpoints)
        .set({ dateDeleted: now })
        .where(liveEndpoint(organisationId, endpointId))
        .returning();
      return record ? toWebhookEndpoint(record) : null;
    });
  }

  async rotateWebhookEndpointSecret(
    organisationId: number,
    endpointId: number,
    secret: string,
    previousUntil: number,
  ): Promise<WebhookEndpoint | null> {
    // The SET reads the row as it was: the current secret becomes the previous one in the same statement.
    const [record] = await this.#db
      .update(webhookEndpoints)
      .set({ previousSecret: sql`secret`, previousSecretUntil: previousUntil, secret })
      .where(liveEndpoint(organisationId, endpointId))
      .returning();
    return record ? toWebhookEndpoint(record) : null;
  }

  async organisationSigningSecret(organisationId: number): Promise<string | null> {
    return (await this.#organisationSecrets(organisationId))?.secret ?? null;
  }

  async rotateOrganisationSigningSecret(organisationId: number, secret: string, previousUntil: number): Promise<string | null> {
    const [record] = await this.#db
      .update(organisations)
      .set({ webhookPreviousSecret: sql`webhook_secret`, webhookPreviousSecretUntil: previousUntil, webhookSecret: secret })
      .where(eq(organisations.id, organisationId))
      .returning({ secret: organisations.webhookSecret });
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
    const records = await this.#db
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
      .limit(request.first + 1);
    return page(records.map(toWebhookDelivery), request.first);
  }

  async getWebhookDeliveries(organisationId: number, ids: readonly number[]): Promise<WebhookDelivery[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select(deliveryColumns)
      .from(webhookDeliveries)
      .innerJoin(webhookMessages, eq(webhookMessages.id, webhookDeliveries.messageId))
      .where(and(eq(webhookDeliveries.organisationId, organisationId), inArray(webhookDeliveries.id, [...ids])));
    return records.map(toWebhookDelivery);
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
    const [changed] = await this.#db
      .update(webhookMessages)
      .set({ status: 'PENDING', nextAttemptAt: now, leaseOwner: null, leaseExpiresAt: null })
      .where(
        and(
          eq(webhookMessages.id, sql`(${messageOfDelivery})`),
          ne(webhookMessages.status, 'PENDING'),
          or(isNull(webhookMessages.endpointId), inArray(webhookMessages.endpointId, receivingEndpoints)),
        ),
      )
      .returning({ id: webhookMessages.id });
    const [delivery] = await this.getWebhookDeliveries(organisationId, [deliveryId]);
    if (!delivery) return { outcome: 'NOT_FOUND' };
    if (changed) return { outcome: 'PENDING_AGAIN', delivery };
    const [message] = await this.#db
      .select({ status: webhookMessages.status, endpointDeleted: webhookEndpoints.dateDeleted })
      .from(webhookMessages)
      .leftJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookMessages.endpointId))
      .where(eq(webhookMessages.id, sql`(${messageOfDelivery})`));
    return whyNotRedelivered(message);
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

/** Drizzle wraps the driver's error in one of its own, with the driver's as its cause. */
function isDeadlock(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | null)?.cause ?? error;
  return (cause as { code?: unknown } | null)?.code === DEADLOCK_DETECTED;
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
