import type { PubSub } from '../domain/events.js';
import type { EngineLogger } from '../engine/logger.js';
import type { Storage } from '../storage/index.js';

export interface WebhookDeliveryOptions {
  storage: Storage;
  events: PubSub;
  logger: EngineLogger;
}

/** Sends the outbox's due messages: every process runs one, and a lease keeps each message to one sender at a time. */
export class WebhookDeliverer {
  readonly #options: WebhookDeliveryOptions;

  constructor(options: WebhookDeliveryOptions) {
    this.#options = options;
  }

  start(): void {}

  async stop(): Promise<void> {}
}
