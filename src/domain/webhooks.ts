// Webhooks: what a receiver is told, and how a delivery stands. Leaf module: storage, engine and
// schema all read these names from here.

import type { Actor, Page, PageRequest } from './types.js';

export const WEBHOOK_EVENTS = Object.freeze(['COMPLETED', 'STARTED', 'PROGRESS', 'RESULT'] as const);
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** COMPLETED alone: what a webhook is told when it names no events. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEvent[] = Object.freeze(['COMPLETED']);

/** The `type` of the message body for each event. */
export const WEBHOOK_MESSAGE_TYPES = Object.freeze({
  COMPLETED: 'task.completed',
  STARTED: 'task.started',
  PROGRESS: 'task.progress',
  RESULT: 'task.result',
} as const satisfies Record<WebhookEvent, string>);

/** Events stored as a bit set, so that a statement matches an endpoint with `events & bit`. */
export function webhookEventBit(event: WebhookEvent): number {
  return 1 << WEBHOOK_EVENTS.indexOf(event);
}

export function webhookEventMask(events: readonly WebhookEvent[]): number {
  return events.reduce((mask, event) => mask | webhookEventBit(event), 0);
}

export function webhookEventsOf(mask: number): WebhookEvent[] {
  return WEBHOOK_EVENTS.filter((event) => (mask & webhookEventBit(event)) !== 0);
}

/** The `webhook-id` header of a message: the receiver's idempotency key, the same over every attempt. */
export function webhookIdOf(messageId: number): string {
  return `msg_${messageId}`;
}

/** A message's life: PENDING until an attempt succeeds (DELIVERED) or the retry schedule runs out (FAILED). */
export const WEBHOOK_MESSAGE_STATUSES = Object.freeze(['PENDING', 'DELIVERED', 'FAILED'] as const);
export type WebhookMessageStatus = (typeof WEBHOOK_MESSAGE_STATUSES)[number];

/** How one attempt ended. REFUSED: never sent (a private address, a redirect elsewhere, a disabled endpoint). */
export const WEBHOOK_ATTEMPT_OUTCOMES = Object.freeze(['SUCCEEDED', 'FAILED', 'REFUSED'] as const);
export type WebhookAttemptOutcome = (typeof WEBHOOK_ATTEMPT_OUTCOMES)[number];

/** Why an endpoint stopped receiving: it answered 410 Gone, or it failed for WEBHOOK_DISABLE_AFTER_MS. */
export const WEBHOOK_DISABLED_REASONS = Object.freeze(['GONE', 'FAILING'] as const);
export type WebhookDisabledReason = (typeof WEBHOOK_DISABLED_REASONS)[number];

export const WEBHOOK_LIMITS = Object.freeze({
  /** An endpoint whose deliveries have all failed for this long is disabled. */
  disableAfterMs: 5 * 24 * 60 * 60 * 1000,
  /** A rotated-out secret keeps signing beside the new one for this long. */
  previousSecretMs: 24 * 60 * 60 * 1000,
  urlLength: 2048,
  descriptionLength: 500,
  endpointsPerOrganisation: 50,
});

/** A task's own webhook, from its submission. */
export interface TaskWebhook {
  url: string;
  events: WebhookEvent[];
}

export interface WebhookEndpoint {
  id: number;
  organisationId: number;
  url: string;
  description: string | null;
  events: WebhookEvent[];
  enabled: boolean;
  disabledReason: WebhookDisabledReason | null;
  /** Since when every attempt to it failed; null while it delivers. */
  failingSince: Date | null;
  dateCreated: Date;
}

/** One attempt to deliver one message. */
export interface WebhookDelivery {
  id: number;
  /** The message's `webhook-id`: the same over every attempt, and for a redelivery. */
  messageId: string;
  organisationId: number;
  taskId: number;
  /** Null for the task's own webhook. */
  endpointId: number | null;
  url: string;
  event: WebhookEvent;
  attempt: number;
  outcome: WebhookAttemptOutcome;
  httpStatus: number | null;
  durationMs: number;
  error: string | null;
  /** When the message is tried again; null when this attempt was its last. */
  nextAttemptAt: Date | null;
  dateCreated: Date;
}

/** A task's own webhook as submitted: events default to DEFAULT_WEBHOOK_EVENTS. */
export interface TaskWebhookInput {
  url: string;
  events?: WebhookEvent[] | null;
}

export interface CreateWebhookEndpointInput {
  url: string;
  events?: WebhookEvent[] | null;
  description?: string | null;
}

/** Absent or null leaves a field as it is, except description, which null clears. */
export interface UpdateWebhookEndpointInput {
  url?: string | null;
  events?: WebhookEvent[] | null;
  description?: string | null;
  /** True re-enables a disabled endpoint, forgetting why it was disabled. */
  enabled?: boolean | null;
}

/** An endpoint with its signing secret, which is shown only when it is made. */
export interface WebhookEndpointWithSecret {
  endpoint: WebhookEndpoint;
  secret: string;
}

/**
 * What the API layers ask of webhooks: endpoints, signing secrets, deliveries. Endpoints and
 * secrets are for ADMIN keys; a task's deliveries are for any key of its organisation.
 */
export interface WebhookApi {
  createEndpoint(actor: Actor, input: CreateWebhookEndpointInput): Promise<WebhookEndpointWithSecret>;
  /** Oldest first. */
  listEndpoints(actor: Actor, page: PageRequest): Promise<Page<WebhookEndpoint>>;
  /** In the order of `ids`; null for unknown, deleted and other organisations' endpoints. */
  getEndpoints(actor: Actor, ids: readonly number[]): Promise<(WebhookEndpoint | null)[]>;
  updateEndpoint(actor: Actor, endpointId: number, input: UpdateWebhookEndpointInput): Promise<WebhookEndpoint>;
  /** Nothing more is sent to it: its pending messages fail with it. */
  deleteEndpoint(actor: Actor, endpointId: number): Promise<WebhookEndpoint>;
  /** A new secret; the one it replaces keeps signing beside it for WEBHOOK_LIMITS.previousSecretMs. */
  rotateEndpointSecret(actor: Actor, endpointId: number): Promise<WebhookEndpointWithSecret>;
  /** The organisation's secret, which signs the webhooks of its tasks; created at first read. */
  signingSecret(actor: Actor): Promise<string>;
  rotateSigningSecret(actor: Actor): Promise<string>;
  /** Newest first. */
  taskDeliveries(actor: Actor, taskId: number, page: PageRequest): Promise<Page<WebhookDelivery>>;
  /** Newest first. */
  endpointDeliveries(actor: Actor, endpointId: number, page: PageRequest): Promise<Page<WebhookDelivery>>;
  /** In the order of `ids`; null for unknown and other organisations' deliveries. */
  getDeliveries(actor: Actor, ids: readonly number[]): Promise<(WebhookDelivery | null)[]>;
  /** Sends the delivery's message again, with the same webhook-id, as soon as a deliverer is free. */
  redeliver(actor: Actor, deliveryId: number): Promise<WebhookDelivery>;
}

/** The secrets that sign now, the current one first: a rotated-out secret signs beside it until `previousUntil`. */
export function liveSecretsOf(
  secret: string,
  previousSecret: string | null,
  previousUntil: number | null,
  now: number,
): string[] {
  return previousSecret !== null && previousUntil !== null && previousUntil > now ? [secret, previousSecret] : [secret];
}
