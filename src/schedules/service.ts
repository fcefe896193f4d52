import type { Catalog } from '../catalog/index.js';
import type { PubSub } from '../domain/events.js';
import type { ScheduleApi } from '../domain/schedules.js';
import type { EngineLogger } from '../engine/logger.js';
import type { Storage } from '../storage/index.js';

export interface SchedulesOptions {
  storage: Storage;
  catalog: Catalog;
  events: PubSub;
  logger: EngineLogger;
}

/** Schedules for the API, and the scheduler that fires them: every process runs one. */
export class Schedules implements ScheduleApi {
  readonly #options: SchedulesOptions;

  constructor(options: SchedulesOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}
}
