import { RETENTION_START, type RecordStore, type RetentionCursor } from '../storage/contract.js';
import type { EngineLogger } from './logger.js';
import type { ScheduleStore } from '../storage/schedule-store.js';

/** How often every process sweeps; on PostgreSQL one of them does the work at a time. */
export const RETENTION_SWEEP_MS = 60_000;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Schedule runs one statement deletes. */
const RUNS_BATCH = 5000;

export interface RetentionOptions {
  records: RecordStore;
  schedules: Pick<ScheduleStore, 'deleteRunsBefore'>;
  /** How long terminal tasks are kept after they completed; null keeps them for ever. */
  retentionMs: number | null;
  logger: EngineLogger;
}

/**
 * Deletes terminal tasks older than the retention period, at start and then every minute, in
 * batches (one transaction each, of the store's size) with a turn of the event loop between them. A sweep still running when the next is due
 * is not doubled; stop() waits for the batch under way.
 */
export class RetentionSweep {
  readonly #options: RetentionOptions;
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<number> | null = null;
  #stopped = false;

  constructor(options: RetentionOptions) {
    this.#options = options;
  }

  get enabled(): boolean {
    return this.#options.retentionMs !== null;
  }

  start(): void {
    if (!this.enabled) return;
    this.#stopped = false;
    void this.sweep();
    this.#timer = setInterval(() => void this.sweep(), RETENTION_SWEEP_MS).unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
  }

  /** One sweep as the timer runs it; resolves with the number of tasks it deleted (0 when off). */
  sweep(now = Date.now()): Promise<number> {
    const { retentionMs } = this.#options;
    if (retentionMs === null) return Promise.resolve(0);
    this.#sweeping ??= this.#sweepBefore(now - retentionMs).finally(() => {
      this.#sweeping = null;
    });
    return this.#sweeping;
  }

  async #sweepBefore(completedBefore: number): Promise<number> {
    let deleted = 0;
    try {
      let cursor: RetentionCursor | null = RETENTION_START;
      while (cursor !== null && !this.#stopped) {
        const batch = await this.#options.records.deleteExpiredTasks(completedBefore, cursor);
        if (batch.busy) break;
        deleted += batch.deleted;
        cursor = batch.next;
        await nextTurn();
      }
      if (deleted > 0) this.#options.logger.info({ tasks: deleted }, 'retention: deleted tasks past the retention period');
      // Runs of fire times as old as the tasks deleted: a schedule's list of tasks ends where its tasks do.
      while (!this.#stopped && (await this.#options.schedules.deleteRunsBefore(completedBefore, RUNS_BATCH)) === RUNS_BATCH) {
        await nextTurn();
      }
    } catch (error) {
      // The next sweep starts again from the oldest: what this one deleted is gone either way.
      this.#options.logger.warn({ err: error }, 'retention: the sweep failed; the next one tries again');
    }
    return deleted;
  }
}
