import { asc, inArray } from 'drizzle-orm';
import type { TaskRetry } from '../../../domain/types.js';
import type { Drizzle, SqliteDatabase } from '../database.js';
import { toTaskRetry } from '../../rows.js';
import { taskRetries } from '../schema.js';

/** The runs retried tasks had: written by the queue's retry, read here. */
export class RetryRecords {
  readonly #db: Drizzle;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
  }

  async taskRetries(taskIds: readonly number[]): Promise<TaskRetry[]> {
    if (taskIds.length === 0) return [];
    return this.#db
      .select()
      .from(taskRetries)
      .where(inArray(taskRetries.taskId, [...taskIds]))
      .orderBy(asc(taskRetries.id))
      .all()
      .map(toTaskRetry);
  }
}
