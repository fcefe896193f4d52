import { asc } from 'drizzle-orm';
import type { TaskRetry } from '../../../domain/types.js';
import type { PgDatabase, PgDrizzle } from '../database.js';
import { toTaskRetry } from '../../rows.js';
import { taskRetries } from '../schema.js';
import { anyOf } from './any-of.js';

/** The runs retried tasks had: written by the queue's retry, read here. */
export class RetryRecords {
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
    this.#db = database.db;
  }

  async taskRetries(taskIds: readonly number[]): Promise<TaskRetry[]> {
    if (taskIds.length === 0) return [];
    const records = await this.#db.select().from(taskRetries).where(anyOf(taskRetries.taskId, taskIds)).orderBy(asc(taskRetries.id));
    return records.map(toTaskRetry);
  }
}
