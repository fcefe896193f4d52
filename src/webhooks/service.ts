import type { Catalog } from '../catalog/index.js';
import { ConflictError, LimitExceededError, NotFoundError, requireAdmin, ValidationError } from '../domain/errors.js';
import { EVERYONE, type PubSub } from '../domain/events.js';
import type { Actor, Page, PageRequest } from '../domain/types.js';
import {
  webhookEventMask,
  WEBHOOK_LIMITS,
  type CreateWebhookEndpointInput,
  type UpdateWebhookEndpointInput,
  type WebhookApi,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEndpointWithSecret,
} from '../domain/webhooks.js';
import type { EngineLogger } from '../engine/logger.js';
import type { Storage } from '../storage/index.js';
import type { WebhookEndpointChanges } from '../storage/webhook-endpoint-store.js';
import { newSigningSecret } from './signing.js';
import { checkedWebhookEvents, checkedWebhookUrl } from './urls.js';

export interface WebhooksOptions {
  storage: Storage;
  catalog: Catalog;
  events: PubSub;
  logger: EngineLogger;
  /** The clock of secret rotations and redeliveries; Date.now unless a test moves time. */
  now?: () => number;
}

function inOrder<T extends { id: number }>(ids: readonly number[], items: T[]): (T | null)[] {
  const byId = new Map(items.map((item) => [item.id, item]));
  return ids.map((id) => byId.get(id) ?? null);
}

function checkedDescription(description: string | null | undefined): string | null {
  if (description === null || description === undefined || description === '') return null;
  if (description.length > WEBHOOK_LIMITS.descriptionLength) {
    throw new ValidationError(
      'INVALID',
      `description must be at most ${WEBHOOK_LIMITS.descriptionLength} characters`,
      'description',
    );
  }
  return description;
}

const noEndpoint = () => new NotFoundError('no webhook endpoint');

/** Webhook endpoints, signing secrets and deliveries, for the API. */
export class Webhooks implements WebhookApi {
  readonly #options: WebhooksOptions;
  readonly #now: () => number;

  constructor(options: WebhooksOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get #store() {
    return this.#options.storage.webhookEndpoints;
  }

  async createEndpoint(actor: Actor, input: CreateWebhookEndpointInput): Promise<WebhookEndpointWithSecret> {
    requireAdmin(actor);
    const secret = newSigningSecret();
    const endpoint = await this.#store.createWebhookEndpoint(
      {
        organisationId: actor.organisationId,
        url: checkedWebhookUrl(input.url, 'url'),
        description: checkedDescription(input.description),
        events: webhookEventMask(checkedWebhookEvents(input.events, 'events')),
        secret,
      },
      WEBHOOK_LIMITS.endpointsPerOrganisation,
      this.#now(),
    );
    if (!endpoint) {
      throw new LimitExceededError(
        `an organisation has at most ${WEBHOOK_LIMITS.endpointsPerOrganisation} webhook endpoints`,
        WEBHOOK_LIMITS.endpointsPerOrganisation,
      );
    }
    return { endpoint, secret };
  }

  async listEndpoints(actor: Actor, page: PageRequest): Promise<Page<WebhookEndpoint>> {
    requireAdmin(actor);
    return this.#store.listWebhookEndpoints(actor.organisationId, page);
  }

  async getEndpoints(actor: Actor, ids: readonly number[]): Promise<(WebhookEndpoint | null)[]> {
    requireAdmin(actor);
    return inOrder(ids, await this.#store.getWebhookEndpoints(actor.organisationId, ids));
  }

  async updateEndpoint(actor: Actor, endpointId: number, input: UpdateWebhookEndpointInput): Promise<WebhookEndpoint> {
    requireAdmin(actor);
    const changes: WebhookEndpointChanges = {};
    if (input.url != null) changes.url = checkedWebhookUrl(input.url, 'url');
    if (input.events != null) changes.events = webhookEventMask(checkedWebhookEvents(input.events, 'events'));
    if (input.description !== undefined) changes.description = checkedDescription(input.description);
    if (input.enabled != null) changes.enabled = input.enabled;
    const endpoint = await this.#store.updateWebhookEndpoint(actor.organisationId, endpointId, changes);
    if (!endpoint) throw noEndpoint();
    return endpoint;
  }

  async deleteEndpoint(actor: Actor, endpointId: number): Promise<WebhookEndpoint> {
    requireAdmin(actor);
    const endpoint = await this.#store.deleteWebhookEndpoint(actor.organisationId, endpointId, this.#now());
    if (!endpoint) throw noEndpoint();
    return endpoint;
  }

  async rotateEndpointSecret(actor: Actor, endpointId: number): Promise<WebhookEndpointWithSecret> {
    requireAdmin(actor);
    const secret = newSigningSecret();
    const endpoint = await this.#store.rotateWebhookEndpointSecret(
      actor.organisationId,
      endpointId,
      secret,
      this.#now() + WEBHOOK_LIMITS.previousSecretMs,
    );
    if (!endpoint) throw noEndpoint();
    return { endpoint, secret };
  }

  async signingSecret(actor: Actor): Promise<string> {
    requireAdmin(actor);
    const secret = await this.#store.organisationSigningSecret(actor.organisationId);
    if (secret === null) throw new NotFoundError('the organisation of this key no longer exists');
    return secret;
  }

  async rotateSigningSecret(actor: Actor): Promise<string> {
    requireAdmin(actor);
    const secret = await this.#store.rotateOrganisationSigningSecret(
      actor.organisationId,
      newSigningSecret(),
      this.#now() + WEBHOOK_LIMITS.previousSecretMs,
    );
    if (secret === null) throw new NotFoundError('the organisation of this key no longer exists');
    return secret;
  }

  async taskDeliveries(actor: Actor, taskId: number, page: PageRequest): Promise<Page<WebhookDelivery>> {
    return this.#store.listWebhookDeliveries(actor.organisationId, { taskId }, page);
  }

  async endpointDeliveries(actor: Actor, endpointId: number, page: PageRequest): Promise<Page<WebhookDelivery>> {
    requireAdmin(actor);
    return this.#store.listWebhookDeliveries(actor.organisationId, { endpointId }, page);
  }

  async getDeliveries(actor: Actor, ids: readonly number[]): Promise<(WebhookDelivery | null)[]> {
    return inOrder(ids, await this.#store.getWebhookDeliveries(actor.organisationId, ids));
  }

  async redeliver(actor: Actor, deliveryId: number): Promise<WebhookDelivery> {
    requireAdmin(actor);
    const redelivery = await this.#store.redeliverWebhook(actor.organisationId, deliveryId, this.#now());
    switch (redelivery.outcome) {
      case 'NOT_FOUND':
        throw new NotFoundError('no webhook delivery');
      case 'ALREADY_PENDING':
        throw new ConflictError('NOT_RETRYABLE', 'the message of this delivery is already waiting to be sent');
      case 'ENDPOINT_DELETED':
        throw new ConflictError('NOT_RETRYABLE', 'the endpoint of this delivery was deleted');
      case 'ENDPOINT_DISABLED':
        throw new ConflictError('NOT_RETRYABLE', 'the endpoint of this delivery is disabled: enable it with updateWebhookEndpoint first');
      case 'PENDING_AGAIN':
        // Whichever process has a free deliverer sends it.
        this.#options.events.publish('webhooksDue', EVERYONE, {});
        return redelivery.delivery;
    }
  }
}
