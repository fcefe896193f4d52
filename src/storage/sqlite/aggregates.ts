import type Database from 'better-sqlite3';
import { and, eq, sql } from 'drizzle-orm';
import { FINISHED_MINUTES, type TaskCounts } from '../../domain/aggregates.js';
import { taskFilterConditions } from '../../domain/task-filter.js';
import type { TaskFilter } from '../../domain/types.js';
import { countsOf, queueFiguresOf, type AggregateStore, type CompletedInBucket, type QueueFigureRow, type QueueFigures } from '../aggregate-store.js';
import { taskFilterSql } from '../task-filter.js';
import type { Drizzle, SqliteDatabase } from './database.js';
import { tasks } from './schema.js';

const MINUTE_MS = 60_000;

// INDEXED BY: each reads its covering index's entries in one range of the organisation's, and
// fails to prepare rather than fall back to the table if a change of schema breaks that.

/**
 * One short range of the index per bucket, counted where it lies: a GROUP BY of the whole range
 * sorted its entries first (a day of 100,000 completions: 50 ms, and 28 ms this way). A bucket
 * past the last one holds the tasks that ended at `until` itself when a bucket ends there.
 * better-sqlite3 binds a number as a REAL: the cast makes the division an integer's.
 */
export const COMPLETED_BY_BUCKET_SQL = `WITH RECURSIVE buckets(n) AS MATERIALIZED (
    SELECT 0 UNION ALL SELECT n + 1 FROM buckets WHERE n < CAST((@until - @since) / @bucketMs AS INTEGER))
  SELECT n AS bucket, (
    SELECT json_array(sum(state = 'SUCCEEDED'), sum(state = 'FAILED'), sum(state = 'CANCELLED'))
    FROM tasks INDEXED BY tasks_completed_by_queue
    WHERE organisation_id = @organisationId AND date_completed >= @since + n * @bucketMs
      AND date_completed < @since + (n + 1) * @bucketMs AND date_completed <= @until
      AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')) AS counts
  FROM buckets`;

/** Each active state's count per queue, then each terminal state's finished in each of the last 15 minutes. */
export const QUEUE_FIGURES_SQL = `SELECT service, type AS action, state, count(*) AS count, 0 AS minutesAgo, min(date_created) AS oldest
  FROM tasks INDEXED BY tasks_active_by_queue
  WHERE organisation_id = @organisationId AND state IN ('PENDING', 'SUSPENDED', 'PROCESSING')
  GROUP BY state, service, type
  UNION ALL
  SELECT service, type AS action, state, count(*) AS count, CAST((@now - date_completed) / ${MINUTE_MS} AS INTEGER) AS minutesAgo, NULL AS oldest
  FROM tasks INDEXED BY tasks_completed_by_queue
  WHERE organisation_id = @organisationId AND date_completed > @now - ${FINISHED_MINUTES * MINUTE_MS} AND date_completed <= @now
    AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
  GROUP BY service, type, state, minutesAgo`;

/**
 * The count by state of the tasks of listTasks's filter. With a condition on another field, the
 * grouping is by `+state`, which no index orders: grouped by the column, SQLite read every row of
 * the organisation through tasks_by_state to spare itself a sort, where the filter's own index
 * (covering with tasks_counts_by_queue or tasks_counts_by_date_created) reads a fraction of them
 * (a service of a million tasks: 680 ms, and 50 ms this way). Without one, tasks_by_state is the
 * covering index to read, in its order.
 */
export function taskCountsQuery(db: Drizzle, organisationId: number, filter: TaskFilter) {
  const byStateOnly = taskFilterConditions(filter).every((condition) => condition.field === 'state');
  return db
    .select({ state: tasks.state, count: sql<number>`count(*)` })
    .from(tasks)
    .where(and(eq(tasks.organisationId, organisationId), ...taskFilterSql(tasks, filter)))
    .groupBy(byStateOnly ? tasks.state : sql`+${tasks.state}`);
}

export class SqliteAggregateStore implements AggregateStore {
  readonly #db: Drizzle;
  readonly #statements: Record<'completedByBucket' | 'queueFigures', Database.Statement>;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
    const sqlite = database.sqlite;
    this.#statements = {
      completedByBucket: sqlite.prepare(COMPLETED_BY_BUCKET_SQL),
      queueFigures: sqlite.prepare(QUEUE_FIGURES_SQL),
    };
  }

  async taskCounts(organisationId: number, filter: TaskFilter): Promise<TaskCounts> {
    return countsOf(taskCountsQuery(this.#db, organisationId, filter).all());
  }

  async completedByBucket(organisationId: number, since: number, until: number, bucketMs: number): Promise<CompletedInBucket[]> {
    const rows = this.#statements.completedByBucket.all({ organisationId, since, until, bucketMs }) as { bucket: number; counts: string }[];
    const completed: CompletedInBucket[] = [];
    for (const { bucket, counts } of rows) {
      const [succeeded, failed, cancelled] = JSON.parse(counts) as (number | null)[];
      if (succeeded) completed.push({ bucket, state: 'SUCCEEDED', count: succeeded });
      if (failed) completed.push({ bucket, state: 'FAILED', count: failed });
      if (cancelled) completed.push({ bucket, state: 'CANCELLED', count: cancelled });
    }
    return completed;
  }

  async queueFigures(organisationId: number, now: number): Promise<QueueFigures[]> {
    return queueFiguresOf(this.#statements.queueFigures.all({ organisationId, now }) as QueueFigureRow[]);
  }
}
