import type { WebhookAttemptOutcome, WebhookEvent } from '../domain/webhooks.js';

/** A message leased to one deliverer, as the outbox holds it. */
export interface LeasedWebhookMessage {
  id: number;
  organisationId: number;
  taskId: number;
  /** Null for the task's own webhook. */
  endpointId: number | null;
  url: string;
  event: WebhookEvent;
  /** JSON of the TaskSnapshot (storage/webhook-outbox.ts) the change left. */
  task: string;
  /** The bytes an earlier attempt sent; null before the first. */
  body: string | null;
  /** Attempts recorded so far. */
  attempts: number;
  dateCreated: number;
}

export interface WebhookAttempt {
  messageId: number;
  /** The lease the deliverer holds: an attempt recorded after the lease passed to another changes nothing. */
  owner: string;
  /** What was sent; kept so that every later attempt and redelivery sends the same bytes. */
  body: string;
  outcome: WebhookAttemptOutcome;
  httpStatus: number | null;
  durationMs: number;
  error: string | null;
  /** When to try again; null ends the message: DELIVERED on success, FAILED otherwise. */
  nextAttemptAt: number | null;
  /** The receiver answered 410 Gone: its endpoint is disabled, and the task's other messages to it end. */
  gone: boolean;
}

/** The webhook outbox as the deliverer works it: claiming due messages, recording each attempt. */
export interface WebhookStore {
  /**
   * Leases to `owner`, until `until`, up to `limit` due PENDING messages, oldest due first, each
   * the oldest pending message of its task to its URL, so that one receiver hears of a task in order.
   * A message whose lease ran out (its deliverer died) is due again.
   */
  claimDueMessages(owner: string, limit: number, now: number, until: number): Promise<LeasedWebhookMessage[]>;
  /**
   * Records one attempt and settles its message in one transaction, while `owner` holds the lease;
   * false when it no longer does (nothing is written). Tracks the endpoint: a success clears its
   * failing streak; a failure starts one, and one older than `disableFailingBefore` disables the
   * endpoint, as a 410 does, failing its pending messages.
   */
  recordAttempt(attempt: WebhookAttempt, now: number, disableFailingBefore: number): Promise<boolean>;
  /**
   * When the earliest PENDING message falls due; null when none is pending. It may be in the past
   * while that message is leased or waits behind an older one of its task.
   */
  nextDueAt(): Promise<number | null>;
}
