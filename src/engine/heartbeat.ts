import { hostname } from 'node:os';
import { WORKER_FORGET_MS, WORKER_HEARTBEAT_MS } from '../domain/workers.js';
import type { WorkerBeat, WorkerRegistry } from '../storage/worker-registry.js';
import type { EngineLogger } from './logger.js';

export interface HeartbeatOptions {
  registry: WorkerRegistry;
  logger: EngineLogger;
  owner: string;
  concurrency: number;
  actions: readonly { service: string; action: string }[];
  /** Tasks the worker runs now. */
  running(): number;
}

/** Keeps this process's row in the registry while its worker runs, and deletes it when the worker stops. */
export class WorkerHeartbeat {
  readonly #options: HeartbeatOptions;
  readonly #startedAt = new Date();
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> = Promise.resolve();

  constructor(options: HeartbeatOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(() => {
      this.#beating = this.#beat();
    }, WORKER_HEARTBEAT_MS).unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#beating;
    try {
      await this.#options.registry.leave(this.#options.owner);
    } catch (error) {
      // Its row goes unlisted once it is WORKER_ALIVE_MS old.
      this.#options.logger.warn({ err: error }, 'could not remove this process from the worker registry');
    }
  }

  async #beat(): Promise<void> {
    const { registry, owner, concurrency, actions, running, logger } = this.#options;
    const beat: WorkerBeat = {
      owner,
      hostname: hostname(),
      pid: process.pid,
      concurrency,
      actions: actions.map(({ service, action }) => `${service}.${action}`),
      running: running(),
      startedAt: this.#startedAt,
    };
    const now = Date.now();
    try {
      await registry.beat(beat, now, now - WORKER_FORGET_MS);
    } catch (error) {
      logger.warn({ err: error }, 'the worker heartbeat failed; retrying at the next one');
    }
  }
}
