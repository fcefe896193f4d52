import {
  webhookEventsOf,
  webhookIdOf,
  type WebhookAttemptOutcome,
  type WebhookDelivery,
  type WebhookDisabledReason,
  type WebhookEndpoint,
  type WebhookEvent,
} from '../domain/webhooks.js';

// Rows of the webhook tables as both dialects read them (numbers and booleans alike), to domain objects.

export interface WebhookEndpointRecord {
  id: number;
  organisationId: number;
  url: string;
  description: string | null;
  events: number;
  enabled: boolean;
  disabledReason: WebhookDisabledReason | null;
  failingSince: number | null;
  dateCreated: number;
}

export function toWebhookEndpoint(record: WebhookEndpointRecord): WebhookEndpoint {
  return {
    id: record.id,
    organisationId: record.organisationId,
    url: record.url,
    description: record.description,
    events: webhookEventsOf(record.events),
    enabled: record.enabled,
    disabledReason: record.disabledReason,
    failingSince: record.failingSince === null ? null : new Date(record.failingSince),
    dateCreated: new Date(record.dateCreated),
  };
}

/** A delivery row with its message's url and event. */
export interface WebhookDeliveryRecord {
  id: number;
  messageId: number;
  organisationId: number;
  taskId: number;
  endpointId: number | null;
  url: string;
  event: WebhookEvent;
  attempt: number;
  outcome: WebhookAttemptOutcome;
  httpStatus: number | null;
  durationMs: number;
  error: string | null;
  nextAttemptAt: number | null;
  dateCreated: number;
}

export function toWebhookDelivery(record: WebhookDeliveryRecord): WebhookDelivery {
  return {
    ...record,
    messageId: webhookIdOf(record.messageId),
    nextAttemptAt: record.nextAttemptAt === null ? null : new Date(record.nextAttemptAt),
    dateCreated: new Date(record.dateCreated),
  };
}
