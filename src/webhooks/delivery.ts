import { randomUUID } from 'node:crypto';
import { EVERYONE, type PubSub } from '../domain/events.js';
import { WEBHOOK_LIMITS, webhookIdOf, type WebhookAttemptOutcome } from '../domain/webhooks.js';
import type { EngineLogger } from '../engine/logger.js';
import type { Storage } from '../storage/index.js';
import type { LeasedWebhookMessage } from '../storage/webhook-store.js';
import { messageBody, type ResultMetadata } from './body.js';
import { DEFAULT_WEBHOOK_RETRY_SCHEDULE, nextAttemptDelay } from './retry-schedule.js';
import { sendWebhook, type SendOutcome } from './send.js';
import { signMessage } from './signing.js';

export interface WebhookDeliverySettings {
  /** Delays before each attempt, the first 0 (TASKPORT_WEBHOOK_RETRY_SCHEDULE). */
  retryScheduleMs: readonly number[];
  /** Whether receivers may be on loopback, private and link-local addresses. */
  allowPrivate: boolean;
  /** Messages this process sends at once; 0 leaves delivery to other processes. */
  maxInFlight: number;
  /** One attempt, from connecting to the last byte read. */
  timeoutMs: number;
}

export const DEFAULT_WEBHOOK_DELIVERY: WebhookDeliverySettings = Object.freeze({
  retryScheduleMs: DEFAULT_WEBHOOK_RETRY_SCHEDULE,
  allowPrivate: false,
  maxInFlight: 16,
  timeoutMs: 15_000,
});

/** What one attempt did, for metrics. */
export interface WebhookAttemptReport {
  outcome: WebhookAttemptOutcome;
  durationMs: number;
}

export interface WebhookDeliveryOptions {
  storage: Storage;
  events: PubSub;
  logger: EngineLogger;
  settings?: WebhookDeliverySettings;
  onAttempt?: (report: WebhookAttemptReport) => void;
}

/** At most this many messages per claim: a claim is one statement, and the slots fill as sends end. */
const CLAIM_BATCH = 50;
/** While sends are under way, a claim waits until this many slots are free. */
const CLAIM_AT_LEAST = 4;
/** The longest wait between looks at the outbox: a wake-up lost with a dropped bus connection costs no more. */
const IDLE_POLL_MS = 5000;
/** Due messages that could not be claimed (in flight elsewhere, or behind an older one of their task) are looked at again this often. */
const BLOCKED_POLL_MS = 1000;
/** Beyond an attempt's timeout, the time its lease allows for reading secrets and recording the attempt. */
const LEASE_MARGIN_MS = 30_000;
/** How long a stop waits for sends under way; one that outlasts it is sent again by whoever claims it next. */
const STOP_WAIT_MS = 2000;
const EVENTS_WITH_RESULTS = new Set(['COMPLETED', 'RESULT']);

/**
 * Sends the outbox's due messages: every process runs one, and a lease keeps each message to one
 * sender at a time. A message is sent at least once; its `webhook-id` lets the receiver drop a repeat.
 */
export class WebhookDeliverer {
  readonly #storage: Storage;
  readonly #events: PubSub;
  readonly #logger: EngineLogger;
  readonly #settings: WebhookDeliverySettings;
  readonly #onAttempt: ((report: WebhookAttemptReport) => void) | undefined;
  readonly #owner = `webhooks-${randomUUID()}`;
  readonly #inFlight = new Set<Promise<void>>();
  #running = false;
  #loop: Promise<void> | null = null;
  #stopListening: (() => void) | null = null;
  #wake: (() => void) | null = null;
  #woken = false;

  constructor(options: WebhookDeliveryOptions) {
    this.#storage = options.storage;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#settings = options.settings ?? DEFAULT_WEBHOOK_DELIVERY;
    this.#onAttempt = options.onAttempt;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  start(): void {
    if (this.#running || this.#settings.maxInFlight === 0) return;
    this.#running = true;
    this.#stopListening = this.#events.listen('webhooksDue', EVERYONE, () => this.#poke());
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#stopListening?.();
    this.#poke();
    await this.#loop;
    const sends = Promise.all(this.#inFlight);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([sends, new Promise((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  #poke(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#woken = false;
      const free = this.#settings.maxInFlight - this.#inFlight.size;
      // A claim is a statement: while sends are under way, one is made for several free slots, not for each.
      if (free <= 0 || (free < Math.min(CLAIM_AT_LEAST, this.#settings.maxInFlight) && this.#inFlight.size > 0)) {
        await Promise.race([...this.#inFlight, this.#sleep(IDLE_POLL_MS)]);
        continue;
      }
      let claimed: LeasedWebhookMessage[] = [];
      const now = Date.now();
      try {
        claimed = await this.#storage.webhooks.claimDueMessages(
          this.#owner,
          Math.min(free, CLAIM_BATCH),
          now,
          now + this.#settings.timeoutMs + LEASE_MARGIN_MS,
        );
      } catch (error) {
        this.#logger.warn({ err: error }, 'webhooks: claiming due messages failed; trying again shortly');
        await this.#sleep(BLOCKED_POLL_MS);
        continue;
      }
      const reads = this.#sharedReads(claimed, now);
      for (const message of claimed) {
        const send: Promise<void> = this.#deliver(message, reads).finally(() => {
          this.#inFlight.delete(send);
          // A send that ended frees a slot, and may let the next message of its task go.
          this.#poke();
        });
        this.#inFlight.add(send);
      }
      if (claimed.length > 0 || this.#woken) continue;
      await this.#sleep(await this.#idleWait());
    }
  }

  /**
   * The secrets and results a claim's messages need, read once per organisation and endpoint and
   * once for all their tasks: a burst of endings is a few reads, not a few per message.
   */
  #sharedReads(claimed: readonly LeasedWebhookMessage[], now: number): SharedReads {
    const secrets = new Map<string, Promise<string[]>>();
    let results: Promise<Map<number, ResultMetadata[]>> | null = null;
    const withResults = claimed.filter((message) => EVENTS_WITH_RESULTS.has(message.event)).map((message) => message.taskId);
    return {
      secretsOf: (message) => {
        const key = `${message.organisationId}/${message.endpointId}`;
        let read = secrets.get(key);
        if (!read) {
          read = this.#storage.webhookEndpoints.liveSigningSecrets(message.organisationId, message.endpointId, now);
          secrets.set(key, read);
        }
        return read;
      },
      resultsOf: async (message) => {
        if (!EVENTS_WITH_RESULTS.has(message.event)) return [];
        results ??= this.#storage.records.taskResults(withResults).then((rows) => {
          const byTask = new Map<number, ResultMetadata[]>();
          for (const row of rows) byTask.set(row.taskId, [...(byTask.get(row.taskId) ?? []), row]);
          return byTask;
        });
        return (await results).get(message.taskId) ?? [];
      },
    };
  }

  async #idleWait(): Promise<number> {
    try {
      const dueAt = await this.#storage.webhooks.nextDueAt();
      if (dueAt === null) return IDLE_POLL_MS;
      const wait = dueAt - Date.now();
      return wait <= 0 ? BLOCKED_POLL_MS : Math.min(wait, IDLE_POLL_MS);
    } catch {
      return BLOCKED_POLL_MS;
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken || !this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }

  /** One attempt: never throws; what it cannot record stays leased, and is tried again once the lease runs out. */
  async #deliver(message: LeasedWebhookMessage, reads: SharedReads): Promise<void> {
    let body = message.body;
    let outcome: SendOutcome;
    // A message whose endpoint was deleted or disabled meanwhile is refused once, without retries.
    let receiverGone = false;
    try {
      const secrets = await reads.secretsOf(message);
      body ??= messageBody(message, await reads.resultsOf(message));
      receiverGone = secrets.length === 0;
      outcome = receiverGone
        ? refused('the endpoint was deleted or disabled')
        : await sendWebhook(
            { url: message.url, headers: { ...signMessage(secrets, webhookIdOf(message.id), Math.floor(Date.now() / 1000), body) }, body },
            { timeoutMs: this.#settings.timeoutMs, allowPrivate: this.#settings.allowPrivate },
          );
    } catch (error) {
      this.#logger.warn({ err: error, messageId: message.id }, 'webhooks: preparing a message failed; it is tried again when its lease runs out');
      return;
    }
    const ended = Date.now();
    const attemptsMade = message.attempts + 1;
    const delay =
      outcome.outcome === 'SUCCEEDED' || outcome.gone || receiverGone
        ? null
        : nextAttemptDelay(this.#settings.retryScheduleMs, attemptsMade, { retryAfterMs: outcome.retryAfterMs });
    const nextAttemptAt = delay === null ? null : ended + delay;
    try {
      const recorded = await this.#storage.webhooks.recordAttempt(
        {
          messageId: message.id,
          owner: this.#owner,
          body,
          outcome: outcome.outcome,
          httpStatus: outcome.httpStatus,
          durationMs: outcome.durationMs,
          error: outcome.error,
          nextAttemptAt,
          gone: outcome.gone,
        },
        ended,
        ended - WEBHOOK_LIMITS.disableAfterMs,
      );
      if (!recorded) this.#logger.warn({ messageId: message.id }, 'webhooks: the lease of a message ran out during its attempt; its attempt is not recorded');
    } catch (error) {
      this.#logger.warn({ err: error, messageId: message.id }, 'webhooks: recording an attempt failed; the message is tried again when its lease runs out');
      return;
    }
    this.#onAttempt?.({ outcome: outcome.outcome, durationMs: outcome.durationMs });
    if (outcome.outcome !== 'SUCCEEDED') {
      this.#logger.warn(
        {
          messageId: message.id,
          taskId: message.taskId,
          endpointId: message.endpointId,
          receiver: originOf(message.url),
          attempt: attemptsMade,
          outcome: outcome.outcome,
          httpStatus: outcome.httpStatus,
          error: outcome.error,
          nextAttemptAt: nextAttemptAt === null ? null : new Date(nextAttemptAt).toISOString(),
        },
        nextAttemptAt === null ? 'webhooks: an attempt failed, and was the last' : 'webhooks: an attempt failed; it is retried',
      );
    }
  }
}

interface SharedReads {
  secretsOf(message: LeasedWebhookMessage): Promise<string[]>;
  resultsOf(message: LeasedWebhookMessage): Promise<ResultMetadata[]>;
}

function refused(error: string): SendOutcome {
  return { outcome: 'REFUSED', httpStatus: null, durationMs: 0, error, retryAfterMs: null, gone: false };
}

/** The receiver as a log names it: a URL's path and query may carry its secrets. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an invalid URL';
  }
}
