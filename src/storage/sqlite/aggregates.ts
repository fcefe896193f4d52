import type Database from 'better-sqlite3';
import { and, eq, sql } from 'drizzle-orm';
import type { TaskCounts } from '../../domain/aggregates.js';
import type { TaskFilter } from '../../domain/types.js';
import { countsOf, queueFiguresOf, type AggregateStore, type CompletedInBucket, type QueueFigureRow, type QueueFigures } from '../aggregate-store.js';
import { taskFilterSql } from '../task-filter.js';
import type { Drizzle, SqliteDatabase } from './database.js';
import { tasks } from './schema.js';

const MINUTE_MS = 60_000;

export class SqliteAggregateStore implements AggregateStore {
  readonly #db: Drizzle;
  readonly #statements: Record<'completedByBucket' | 'queueFigures', Database.Statement>;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
    const sqlite = database.sqlite;
    // INDEXED BY: each reads its covering index's entries in one range of the organisation's, and
    // fails to prepare rather than fall back to the table if a change of schema breaks that.
    this.#statements = {
      completedByBucket: sqlite.prepare(
        // better-sqlite3 binds a number as a REAL: the cast makes the division an integer's.
        `SELECT CAST((date_completed - @since) / @bucketMs AS INTEGER) AS bucket, state, count(*) AS count
         FROM tasks INDEXED BY tasks_completed_by_queue
         WHERE organisation_id = @organisationId AND date_completed >= @since AND date_completed <= @until
           AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
         GROUP BY bucket, state`,
      ),
      queueFigures: sqlite.prepare(
        `SELECT service, type AS action, state, count(*) AS count, 0 AS last5, 0 AS last1, min(date_created) AS oldest
         FROM tasks INDEXED BY tasks_active_by_queue
         WHERE organisation_id = @organisationId AND state IN ('PENDING', 'SUSPENDED', 'PROCESSING')
         GROUP BY state, service, type
         UNION ALL
         SELECT service, type AS action, state, count(*) AS count,
           sum(date_completed > @now - ${5 * MINUTE_MS}) AS last5, sum(date_completed > @now - ${MINUTE_MS}) AS last1, NULL AS oldest
         FROM tasks INDEXED BY tasks_completed_by_queue
         WHERE organisation_id = @organisationId AND date_completed > @now - ${15 * MINUTE_MS} AND date_completed <= @now
           AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
         GROUP BY service, type, state`,
      ),
    };
  }

  async taskCounts(organisationId: number, filter: TaskFilter): Promise<TaskCounts> {
    const rows = this.#db
      .select({ state: tasks.state, count: sql<number>`count(*)` })
      .from(tasks)
      .where(and(eq(tasks.organisationId, organisationId), ...taskFilterSql(tasks, filter)))
      .groupBy(tasks.state)
      .all();
    return countsOf(rows);
  }

  async completedByBucket(organisationId: number, since: number, until: number, bucketMs: number): Promise<CompletedInBucket[]> {
    return this.#statements.completedByBucket.all({ organisationId, since, until, bucketMs }) as CompletedInBucket[];
  }

  async queueFigures(organisationId: number, now: number): Promise<QueueFigures[]> {
    return queueFiguresOf(this.#statements.queueFigures.all({ organisationId, now }) as QueueFigureRow[]);
  }
}
