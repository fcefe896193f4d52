import { and, asc, desc, eq, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { LogLevel, Page, PageRequest, Task, TaskFilter, TaskLog, TaskResult } from '../../../domain/types.js';
import { LOG_LEVELS } from '../../../domain/types.js';
import type { Drizzle, SqliteDatabase } from '../database.js';
import { levelNumber, toTask, toTaskLog, toTaskResult } from '../../rows.js';
import { taskDependencies, taskLogs, taskResults, tasks } from '../schema.js';
import { page } from './page.js';
import { taskFilterSql } from '../../task-filter.js';

/** The tasks a list shows: the organisation's, as the filter narrows them, from the page's start on. */
function taskFilterConditions(organisationId: number, filter: TaskFilter, request: PageRequest): (SQL | undefined)[] {
  return [
    eq(tasks.organisationId, organisationId),
    ...taskFilterSql(tasks, filter),
    request.afterId ? lt(tasks.id, request.afterId) : undefined,
  ];
}

/**
 * One page of a task list, newest first. The page's ids are found first, from index entries alone,
 * and only then are their rows read: a date range matches its index's entries in date order, so
 * the newest 51 of a month (55,000 tasks in a million) are sorted out of those entries, where one
 * statement read every matching row to sort it, or walked the organisation's tasks from the newest
 * back to the range (140-230 ms, and 7-14 ms this way).
 */
export function listTasksQuery(db: Drizzle, organisationId: number, filter: TaskFilter, request: PageRequest) {
  // The LIMIT is written into the statement: planned with it bound, SQLite walked every task of the
  // organisation from the newest back to a month a year old (530 ms); with it written, it sorts that
  // month's index entries (20 ms). `first` is an integer the API has bounded.
  const limit = sql.raw(String(Math.trunc(request.first) + 1));
  const pageIds = sql`SELECT ${tasks.id} FROM ${tasks} WHERE ${and(...taskFilterConditions(organisationId, filter, request))}
    ORDER BY ${tasks.id} DESC LIMIT ${limit}`;
  return db
    .select()
    .from(tasks)
    .where(sql`${tasks.id} IN (${pageIds})`)
    .orderBy(desc(tasks.id));
}

/** Tasks as their lists and loaders read them, with their logs, results and dependencies. */
export class TaskRecords {
  readonly #db: Drizzle;

  readonly #taskLogPagesStatement;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
    // Logs under a list of tasks: one page per task in one statement. The index orders a task's
    // logs by level, then id, so a page in id order is merged from one short, LIMITed read per
    // level: the first row past the page marks where it ends (and that another page follows), and
    // the page is read up to it, seeking by id within each level. A long log is never read to its
    // end, and a minLevel of 0 or an afterId of 0 matches every row, as no condition would.
    const firstRowsOfLevel = (level: number) =>
      `SELECT id FROM (SELECT id FROM task_logs
         WHERE task_id = wanted_ids.value AND level = ${level} AND @minLevel <= ${level} AND id > @afterId
         ORDER BY id LIMIT @first + 1)`;
    const levels = LOG_LEVELS.map((_, level) => level);
    this.#taskLogPagesStatement = database.sqlite.prepare(
      `WITH wanted AS MATERIALIZED (
         SELECT wanted_ids.value AS task_id,
           (SELECT id FROM (${levels.map(firstRowsOfLevel).join(' UNION ALL ')})
            ORDER BY id LIMIT 1 OFFSET @first) AS past_page_id
         FROM json_each(@taskIds) AS wanted_ids)
       SELECT l.id, l.task_id AS taskId, l.level, l.message, l.source, l.timestamp
       FROM wanted CROSS JOIN task_logs AS l
       WHERE l.task_id = wanted.task_id AND l.level IN (${levels.join(', ')}) AND l.level >= @minLevel
         AND l.id > @afterId AND l.id <= coalesce(wanted.past_page_id, ${Number.MAX_SAFE_INTEGER})
       ORDER BY l.task_id, l.id`,
    );
  }

  async getTasks(organisationId: number, ids: readonly number[]): Promise<Task[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(tasks)
      .where(
        and(
          eq(tasks.organisationId, organisationId),
          sql`${tasks.id} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`,
        ),
      )
      .all()
      .map(toTask);
  }

  async listTasks(organisationId: number, filter: TaskFilter, request: PageRequest): Promise<Page<Task>> {
    const rows = listTasksQuery(this.#db, organisationId, filter, request).all();
    return page(rows.map(toTask), request.first);
  }

  async getLogs(ids: readonly number[]): Promise<TaskLog[]> {
    if (ids.length === 0) return [];
    return this.#db.select().from(taskLogs).where(inArray(taskLogs.id, [...ids])).all().map(toTaskLog);
  }

  async taskLogs(
    taskIds: readonly number[],
    minLevel: LogLevel | null,
    request: PageRequest,
  ): Promise<Map<number, Page<TaskLog>>> {
    const pages = new Map<number, Page<TaskLog>>();
    if (taskIds.length === 0) return pages;
    const rows = this.#taskLogPagesStatement.all({
      taskIds: JSON.stringify(taskIds),
      minLevel: minLevel === null ? 0 : levelNumber(minLevel),
      afterId: request.afterId ?? 0,
      first: request.first,
    }) as (typeof taskLogs.$inferSelect)[];
    const byTask = new Map<number, (typeof taskLogs.$inferSelect)[]>(taskIds.map((id) => [id, []]));
    for (const row of rows) byTask.get(row.taskId)!.push(row);
    for (const [taskId, taskRows] of byTask) pages.set(taskId, page(taskRows.map(toTaskLog), request.first));
    return pages;
  }

  #resultColumns = {
    id: taskResults.id,
    taskId: taskResults.taskId,
    name: taskResults.name,
    contentType: taskResults.contentType,
    size: taskResults.size,
    retrieved: taskResults.retrieved,
    dateCreated: taskResults.dateCreated,
    dateRetrieved: taskResults.dateRetrieved,
  };

  async taskResults(taskIds: readonly number[]): Promise<TaskResult[]> {
    if (taskIds.length === 0) return [];
    return this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .where(inArray(taskResults.taskId, [...taskIds]))
      .orderBy(asc(taskResults.id))
      .all()
      .map(toTaskResult);
  }

  async getResults(organisationId: number, ids: readonly number[]): Promise<TaskResult[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .innerJoin(tasks, eq(tasks.id, taskResults.taskId))
      .where(and(eq(tasks.organisationId, organisationId), inArray(taskResults.id, [...ids])))
      .all()
      .map(toTaskResult);
  }

  async dependencies(taskIds: readonly number[]): Promise<{ taskId: number; dependsOnId: number }[]> {
    if (taskIds.length === 0) return [];
    return this.#db
      .select()
      .from(taskDependencies)
      .where(inArray(taskDependencies.taskId, [...taskIds]))
      .orderBy(asc(taskDependencies.dependsOnId))
      .all();
  }

  async dependents(taskId: number, limit: number): Promise<number[]> {
    const rows = this.#db
      .select({ taskId: taskDependencies.taskId })
      .from(taskDependencies)
      .where(eq(taskDependencies.dependsOnId, taskId))
      .orderBy(asc(taskDependencies.taskId))
      .limit(limit)
      .all();
    return rows.map((row) => row.taskId);
  }
}
