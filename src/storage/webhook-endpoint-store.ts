import type { Page, PageRequest } from '../domain/types.js';
import type { WebhookDelivery, WebhookEndpoint } from '../domain/webhooks.js';

export interface NewWebhookEndpoint {
  organisationId: number;
  url: string;
  description: string | null;
  /** A WEBHOOK_EVENTS bit set. */
  events: number;
  secret: string;
}

export interface WebhookEndpointChanges {
  url?: string;
  description?: string | null;
  /** A WEBHOOK_EVENTS bit set. */
  events?: number;
  /** True also clears why it was disabled and since when it failed. */
  enabled?: boolean;
}

/** Whose deliveries a listing reads: a task's, or an endpoint's. */
export type WebhookDeliveryOwner = { taskId: number } | { endpointId: number };

/** How redeliverWebhook ended: the delivery whose message is pending again, or why not. */
export type Redelivery =
  | { outcome: 'PENDING_AGAIN'; delivery: WebhookDelivery }
  | { outcome: 'NOT_FOUND' }
  /** The message is already waiting for an attempt. */
  | { outcome: 'ALREADY_PENDING' }
  /** Its endpoint was deleted: nothing more is sent to it. */
  | { outcome: 'ENDPOINT_DELETED' }
  /** Its endpoint is disabled: it is enabled again first. */
  | { outcome: 'ENDPOINT_DISABLED' };

/**
 * Webhook endpoints, signing secrets, and the record of deliveries as the API reads it. Every
 * method takes the organisation, and nothing of another organisation is read or changed.
 */
export interface WebhookEndpointStore {
  /**
   * The secrets that sign a message now, the current one first: the endpoint's, or for null the
   * organisation's (created if it has none yet), and beside it the previous one while
   * `previous_secret_until > now`. Empty when the endpoint does not exist, is deleted or is
   * disabled: nothing may be sent to it.
   */
  liveSigningSecrets(organisationId: number, endpointId: number | null, now: number): Promise<string[]>;

  /** The new endpoint, or null when the organisation already has `maximum` endpoints (deleted ones not counted). */
  createWebhookEndpoint(input: NewWebhookEndpoint, maximum: number, now: number): Promise<WebhookEndpoint | null>;
  /** Oldest first. */
  listWebhookEndpoints(organisationId: number, page: PageRequest): Promise<Page<WebhookEndpoint>>;
  /** Deleted endpoints are left out. */
  getWebhookEndpoints(organisationId: number, ids: readonly number[]): Promise<WebhookEndpoint[]>;
  /** Null when there is no such live endpoint. */
  updateWebhookEndpoint(organisationId: number, endpointId: number, changes: WebhookEndpointChanges): Promise<WebhookEndpoint | null>;
  /** Soft-deletes it and, in the same transaction, fails its PENDING messages so that nothing more is sent. */
  deleteWebhookEndpoint(organisationId: number, endpointId: number, now: number): Promise<WebhookEndpoint | null>;
  /** `secret` becomes current; the current one signs beside it until `previousUntil`. */
  rotateWebhookEndpointSecret(
    organisationId: number,
    endpointId: number,
    secret: string,
    previousUntil: number,
  ): Promise<WebhookEndpoint | null>;

  /** The organisation's current secret, created at first read; null when there is no such organisation. */
  organisationSigningSecret(organisationId: number): Promise<string | null>;
  /** As rotateWebhookEndpointSecret, for the organisation's own secret. */
  rotateOrganisationSigningSecret(organisationId: number, secret: string, previousUntil: number): Promise<string | null>;

  /** Newest first. */
  listWebhookDeliveries(
    organisationId: number,
    owner: WebhookDeliveryOwner,
    page: PageRequest,
  ): Promise<Page<WebhookDelivery>>;
  getWebhookDeliveries(organisationId: number, ids: readonly number[]): Promise<WebhookDelivery[]>;
  /**
   * Makes the delivery's message PENDING again, due `now`, its lease cleared and its attempts
   * counting on, in one statement guarded so that a message already PENDING, or one to an
   * endpoint deleted or disabled, is left alone.
   */
  redeliverWebhook(organisationId: number, deliveryId: number, now: number): Promise<Redelivery>;
}

/** Why a redelivery changed nothing, from its message as it stands (null when it is gone with its task). */
export function whyNotRedelivered(
  message: { status: string; endpointDeleted: number | null } | undefined,
): Exclude<Redelivery, { outcome: 'PENDING_AGAIN' }> {
  if (!message) return { outcome: 'NOT_FOUND' };
  if (message.status === 'PENDING') return { outcome: 'ALREADY_PENDING' };
  return message.endpointDeleted === null ? { outcome: 'ENDPOINT_DISABLED' } : { outcome: 'ENDPOINT_DELETED' };
}
