import type { PubSub } from '../domain/events.js';
import type { WebhookApi } from '../domain/webhooks.js';
import type { EngineLogger } from '../engine/logger.js';
import type { Storage } from '../storage/index.js';

export interface WebhooksOptions {
  storage: Storage;
  events: PubSub;
  logger: EngineLogger;
}

/** Webhook endpoints, signing secrets and deliveries, for the API. */
export class Webhooks implements WebhookApi {
  readonly #options: WebhooksOptions;

  constructor(options: WebhooksOptions) {
    this.#options = options;
  }
}
