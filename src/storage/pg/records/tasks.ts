import { and, asc, desc, eq, lt, sql, type SQL } from 'drizzle-orm';
import type { LogLevel, Page, PageRequest, Task, TaskFilter, TaskLog, TaskResult } from '../../../domain/types.js';
import { LOG_LEVELS } from '../../../domain/types.js';
import type { PgDatabase, PgDrizzle } from '../database.js';
import { levelNumber, toTask, toTaskLog, toTaskResult } from '../../rows.js';
import { taskDependencies, taskLogs, taskResults, tasks } from '../schema.js';
import { anyOf } from './any-of.js';
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

// Logs under a list of tasks: one page per task in one statement. The index orders a task's logs by
// level, then id, so a page in id order is merged from one short, LIMITed read per level, as in the
// SQLite statement: a long log is never read to its end. A minLevel of 0 or an afterId of 0 matches
// every row, as no condition would.
const firstRowsOfLevel = (level: number) =>
  `(SELECT id, task_id, level, message, source, timestamp FROM task_logs
    WHERE task_id = wanted.task_id AND level = ${level} AND $2::int <= ${level} AND id > $3::bigint
    ORDER BY id LIMIT $4::int + 1)`;
const TASK_LOG_PAGES_SQL = `SELECT l.id, l.task_id AS "taskId", l.level, l.message, l.source, l.timestamp
  FROM unnest($1::bigint[]) AS wanted(task_id)
  CROSS JOIN LATERAL (
    SELECT * FROM (${LOG_LEVELS.map((_, level) => firstRowsOfLevel(level)).join(' UNION ALL ')}) AS of_levels
    ORDER BY id LIMIT $4::int + 1) AS l
  ORDER BY l.task_id, l.id`;

/** Tasks as their lists and loaders read them, with their logs, results and dependencies. */
export class TaskRecords {
  readonly #db: PgDrizzle;
  readonly #database: PgDatabase;

  readonly #getTasksStatement;

  constructor(database: PgDatabase) {
    this.#database = database;
    this.#db = database.db;
    // Run on every request, or for every batch of a loader: named, so each connection plans them once.
    this.#getTasksStatement = this.#db
      .select()
      .from(tasks)
      .where(and(eq(tasks.organisationId, sql.placeholder('organisationId')), anyOf(tasks.id, sql.placeholder('ids'))))
      .prepare('records_get_tasks');
  }

  async getTasks(organisationId: number, ids: readonly number[]): Promise<Task[]> {
    if (ids.length === 0) return [];
    const records = await this.#getTasksStatement.execute({ organisationId, ids: [...ids] });
    return records.map(toTask);
  }

  async listTasks(organisationId: number, filter: TaskFilter, request: PageRequest): Promise<Page<Task>> {
    const conditions = taskFilterConditions(organisationId, filter, request);
    const rows = await this.#db
      .select()
      .from(tasks)
      .where(and(...conditions))
      .orderBy(desc(tasks.id))
      .limit(request.first + 1);
    return page(rows.map(toTask), request.first);
  }

  async getLogs(ids: readonly number[]): Promise<TaskLog[]> {
    if (ids.length === 0) return [];
    const records = await this.#db.select().from(taskLogs).where(anyOf(taskLogs.id, ids));
    return records.map(toTaskLog);
  }

  async taskLogs(
    taskIds: readonly number[],
    minLevel: LogLevel | null,
    request: PageRequest,
  ): Promise<Map<number, Page<TaskLog>>> {
    const pages = new Map<number, Page<TaskLog>>();
    if (taskIds.length === 0) return pages;
    // The pool's own query: it reads int8 as numbers, where drizzle's raw execute would give strings.
    const { rows } = await this.#database.pool.query<typeof taskLogs.$inferSelect>({
      name: 'records_task_log_pages',
      text: TASK_LOG_PAGES_SQL,
      values: [taskIds, minLevel === null ? 0 : levelNumber(minLevel), request.afterId ?? 0, request.first],
    });
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
    const records = await this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .where(anyOf(taskResults.taskId, taskIds))
      .orderBy(asc(taskResults.id));
    return records.map(toTaskResult);
  }

  async getResults(organisationId: number, ids: readonly number[]): Promise<TaskResult[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .innerJoin(tasks, eq(tasks.id, taskResults.taskId))
      .where(and(eq(tasks.organisationId, organisationId), anyOf(taskResults.id, ids)));
    return records.map(toTaskResult);
  }

  async dependencies(taskIds: readonly number[]): Promise<{ taskId: number; dependsOnId: number }[]> {
    if (taskIds.length === 0) return [];
    return this.#db
      .select()
      .from(taskDependencies)
      .where(anyOf(taskDependencies.taskId, taskIds))
      .orderBy(asc(taskDependencies.dependsOnId));
  }

  async dependents(taskId: number, limit: number): Promise<number[]> {
    const rows = await this.#db
      .select({ taskId: taskDependencies.taskId })
      .from(taskDependencies)
      .where(eq(taskDependencies.dependsOnId, taskId))
      .orderBy(asc(taskDependencies.taskId))
      .limit(limit);
    return rows.map((row) => row.taskId);
  }
}
