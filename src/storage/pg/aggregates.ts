import { and, eq, sql } from 'drizzle-orm';
import { FINISHED_MINUTES, type TaskCounts } from '../../domain/aggregates.js';
import type { TaskFilter } from '../../domain/types.js';
import { countsOf, queueFiguresOf, type AggregateStore, type CompletedInBucket, type QueueFigureRow, type QueueFigures } from '../aggregate-store.js';
import { taskFilterSql } from '../task-filter.js';
import type { PgDatabase, PgDrizzle } from './database.js';
import { tasks } from './schema.js';

const MINUTE_MS = 60_000;

const statement = (name: string, text: string) => (values: unknown[]) => ({ name: `aggregates.${name}`, text, values });

// The state lists repeat the partial indexes' predicates word for word, so that the planner can
// use them; each statement then reads its covering index's entries in one range of the organisation's.
export const statements = {
  completedByBucket: statement(
    'completedByBucket',
    `SELECT (date_completed - $2::bigint) / $4::bigint AS bucket, state, count(*) AS count
     FROM tasks
     WHERE organisation_id = $1 AND date_completed >= $2::bigint AND date_completed <= $3::bigint
       AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
     GROUP BY bucket, state`,
  ),
  queueFigures: statement(
    'queueFigures',
    `SELECT service, type AS action, state, count(*) AS count, 0 AS "minutesAgo", min(date_created) AS oldest
     FROM tasks
     WHERE organisation_id = $1 AND state IN ('PENDING', 'SUSPENDED', 'PROCESSING')
     GROUP BY state, service, type
     UNION ALL
     SELECT service, type AS action, state, count(*) AS count, (($2::bigint - date_completed) / ${MINUTE_MS})::int AS "minutesAgo", NULL AS oldest
     FROM tasks
     WHERE organisation_id = $1 AND date_completed > $2::bigint - ${FINISHED_MINUTES * MINUTE_MS} AND date_completed <= $2::bigint
       AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
     GROUP BY service, type, state, "minutesAgo"`,
  ),
};

/** The count by state of the tasks of listTasks's filter: the index the filter's conditions pick. */
export function taskCountsQuery(db: PgDrizzle, organisationId: number, filter: TaskFilter) {
  return db
    .select({ state: tasks.state, count: sql<number>`count(*)` })
    .from(tasks)
    .where(and(eq(tasks.organisationId, organisationId), ...taskFilterSql(tasks, filter)))
    .groupBy(tasks.state);
}

export class PgAggregateStore implements AggregateStore {
  readonly #database: PgDatabase;
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
    this.#database = database;
    this.#db = database.db;
  }

  async taskCounts(organisationId: number, filter: TaskFilter): Promise<TaskCounts> {
    return countsOf(await taskCountsQuery(this.#db, organisationId, filter));
  }

  async completedByBucket(organisationId: number, since: number, until: number, bucketMs: number): Promise<CompletedInBucket[]> {
    const { rows } = await this.#database.pool.query<CompletedInBucket>(statements.completedByBucket([organisationId, since, until, bucketMs]));
    return rows;
  }

  async queueFigures(organisationId: number, now: number): Promise<QueueFigures[]> {
    const { rows } = await this.#database.pool.query<QueueFigureRow>(statements.queueFigures([organisationId, now]));
    return queueFiguresOf(rows);
  }
}
