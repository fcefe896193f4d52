import { and, asc, count, eq, gt, inArray, isNull } from 'drizzle-orm';
import type { Schedule, ScheduleRun } from '../../domain/schedules.js';
import { isTerminal, type Page, type PageRequest, type TaskState } from '../../domain/types.js';
import {
  SCHEDULE_COLUMNS,
  SCHEDULE_RUN_COLUMNS,
  toSchedule,
  toScheduleRun,
  type FireResult,
  type NewSchedule,
  type ScheduleChanges,
  type ScheduleFire,
  type ScheduledTaskRow,
  type ScheduleRecord,
  type ScheduleRunRecord,
  type ScheduleStore,
} from '../schedule-store.js';
import type { Drizzle, SqliteDatabase } from './database.js';
import { insertTasksInTransaction } from './queue/enqueue.js';
import { preparedOnce } from './queue/statements.js';
import { page } from './records/page.js';
import { schedules } from './schema.js';

const fireStatements = preparedOnce((sqlite) => ({
  // A trigger fires a live schedule whatever it waits for; the scheduler only the fire time it planned from.
  liveSchedule: sqlite.prepare(`SELECT id FROM schedules WHERE id = ? AND date_deleted IS NULL`),
  waitingSchedule: sqlite.prepare(`SELECT id FROM schedules WHERE id = ? AND next_run_at = ?`),
  // The schedule's latest task, found backwards along the runs' primary key.
  previousTaskState: sqlite.prepare(
    `SELECT state FROM tasks WHERE id = (SELECT task_id FROM schedule_runs WHERE schedule_id = ? AND task_id IS NOT NULL
       ORDER BY scheduled_for DESC LIMIT 1)`,
  ),
  insertRun: sqlite.prepare(
    `INSERT INTO schedule_runs (schedule_id, scheduled_for, outcome, task_id, date_created) VALUES (?, ?, ?, NULL, ?)
     ON CONFLICT DO NOTHING`,
  ),
  setRunTask: sqlite.prepare(
    `UPDATE schedule_runs SET task_id = ? WHERE schedule_id = ? AND scheduled_for = ? RETURNING ${SCHEDULE_RUN_COLUMNS}`,
  ),
  readRun: sqlite.prepare(`SELECT ${SCHEDULE_RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = ? AND scheduled_for = ?`),
  advance: sqlite.prepare(`UPDATE schedules SET next_run_at = ? WHERE id = ? AND next_run_at = ?`),
  // The partial index schedules_due serves both: its first entry, and its range up to now.
  dueSchedules: sqlite.prepare(
    `SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at LIMIT ?`,
  ),
  earliestNextRun: sqlite.prepare(`SELECT min(next_run_at) AS earliest FROM schedules WHERE next_run_at IS NOT NULL`),
  lastRuns: sqlite.prepare(
    `SELECT ${SCHEDULE_RUN_COLUMNS} FROM json_each(?) AS wanted JOIN schedule_runs
       ON schedule_id = wanted.value
       AND scheduled_for = (SELECT max(scheduled_for) FROM schedule_runs WHERE schedule_id = wanted.value)`,
  ),
  scheduledTasks: sqlite.prepare(
    `SELECT scheduled_for AS scheduledFor, task_id AS taskId FROM schedule_runs
     WHERE schedule_id = ? AND scheduled_for < ? AND task_id IS NOT NULL ORDER BY scheduled_for DESC LIMIT ?`,
  ),
  // Each schedule's range of old runs through the primary key, short of its latest.
  deleteRunsBefore: sqlite.prepare(
    `DELETE FROM schedule_runs WHERE rowid IN (
       SELECT run.rowid FROM schedules JOIN schedule_runs run ON run.schedule_id = schedules.id
       WHERE run.scheduled_for < @before
         AND run.scheduled_for < (SELECT max(latest.scheduled_for) FROM schedule_runs latest WHERE latest.schedule_id = schedules.id)
       LIMIT @limit)`,
  ),
}));

/** The driver's error, or drizzle's around it. */
function isUniqueViolation(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | null)?.cause ?? error;
  return (cause as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class SqliteScheduleStore implements ScheduleStore {
  readonly #database: SqliteDatabase;
  readonly #db: Drizzle;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    this.#db = database.db;
  }

  async createSchedule(input: NewSchedule, now: number): Promise<Schedule | null> {
    try {
      const record = this.#db
        .insert(schedules)
        .values({ ...input, params: JSON.stringify(input.params), dateCreated: now, dateUpdated: now })
        .returning()
        .get();
      return toSchedule(record);
    } catch (error) {
      if (isUniqueViolation(error)) return null;
      throw error;
    }
  }

  async countSchedules(organisationId: number): Promise<number> {
    const row = this.#db
      .select({ count: count() })
      .from(schedules)
      .where(and(eq(schedules.organisationId, organisationId), isNull(schedules.dateDeleted)))
      .get();
    return row?.count ?? 0;
  }

  async getSchedules(organisationId: number, ids: readonly number[]): Promise<Schedule[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(schedules)
      .where(
        and(eq(schedules.organisationId, organisationId), inArray(schedules.id, [...ids]), isNull(schedules.dateDeleted)),
      )
      .all()
      .map(toSchedule);
  }

  async listSchedules(organisationId: number, request: PageRequest): Promise<Page<Schedule>> {
    const rows = this.#db
      .select()
      .from(schedules)
      .where(
        and(
          eq(schedules.organisationId, organisationId),
          isNull(schedules.dateDeleted),
          request.afterId ? gt(schedules.id, request.afterId) : undefined,
        ),
      )
      .orderBy(asc(schedules.id))
      .limit(request.first + 1)
      .all();
    return page(rows.map(toSchedule), request.first);
  }

  async updateSchedule(
    organisationId: number,
    id: number,
    changes: ScheduleChanges,
    now: number,
  ): Promise<Schedule | null | 'NAME_TAKEN'> {
    const { params, ...rest } = changes;
    try {
      const record = this.#db
        .update(schedules)
        .set({ ...rest, ...(params === undefined ? {} : { params: JSON.stringify(params) }), dateUpdated: now })
        .where(and(eq(schedules.id, id), eq(schedules.organisationId, organisationId), isNull(schedules.dateDeleted)))
        .returning()
        .get();
      return record ? toSchedule(record) : null;
    } catch (error) {
      if (isUniqueViolation(error)) return 'NAME_TAKEN';
      throw error;
    }
  }

  async deleteSchedule(organisationId: number, id: number, now: number): Promise<Schedule | null> {
    const record = this.#db
      .update(schedules)
      .set({ dateDeleted: now, dateUpdated: now, nextRunAt: null })
      .where(and(eq(schedules.id, id), eq(schedules.organisationId, organisationId), isNull(schedules.dateDeleted)))
      .returning()
      .get();
    return record ? toSchedule(record) : null;
  }

  async earliestNextRun(): Promise<number | null> {
    const row = fireStatements(this.#database.sqlite).earliestNextRun.get() as { earliest: number | null };
    return row.earliest;
  }

  async dueSchedules(now: number, limit: number): Promise<Schedule[]> {
    const rows = fireStatements(this.#database.sqlite).dueSchedules.all(now, limit) as ScheduleRecord[];
    return rows.map(toSchedule);
  }

  async fireSchedule(fire: ScheduleFire, now: number): Promise<FireResult> {
    const sqlite = this.#database.sqlite;
    const statements = fireStatements(sqlite);
    return sqlite
      .transaction((): FireResult => {
        const schedule =
          fire.from === null
            ? statements.liveSchedule.get(fire.scheduleId)
            : statements.waitingSchedule.get(fire.scheduleId, fire.from);
        if (!schedule) return { fired: false };
        let outcome = fire.outcome;
        if (fire.newTask && fire.skipOverlap) {
          const previous = statements.previousTaskState.get(fire.scheduleId) as { state: TaskState } | undefined;
          if (previous && !isTerminal(previous.state)) outcome = 'SKIPPED_OVERLAP';
        }
        const inserted = statements.insertRun.run(fire.scheduleId, fire.scheduledFor, outcome, now).changes === 1;
        if (fire.from !== null) statements.advance.run(fire.nextRunAt, fire.scheduleId, fire.from);
        // The fire time was served already (a trigger in the same millisecond): its next one is still set.
        if (!inserted) return { fired: false };
        if (outcome !== 'CREATED' || !fire.newTask) {
          const run = statements.readRun.get(fire.scheduleId, fire.scheduledFor) as ScheduleRunRecord;
          return { fired: true, run: toScheduleRun(run), task: null };
        }
        const newTask = { ...fire.newTask, scheduleId: fire.scheduleId, scheduledFor: fire.scheduledFor };
        const result = insertTasksInTransaction(sqlite, [newTask], now);
        if (!result.ok) throw new Error('a scheduled task has no dependencies, yet one was missing');
        const task = result.tasks[0]!.task;
        const run = statements.setRunTask.get(task.id, fire.scheduleId, fire.scheduledFor) as ScheduleRunRecord;
        return { fired: true, run: toScheduleRun(run), task };
      })
      .immediate();
  }

  async lastRuns(scheduleIds: readonly number[]): Promise<ScheduleRun[]> {
    if (scheduleIds.length === 0) return [];
    const rows = fireStatements(this.#database.sqlite).lastRuns.all(JSON.stringify(scheduleIds)) as ScheduleRunRecord[];
    return rows.map(toScheduleRun);
  }

  async scheduledTasks(scheduleId: number, before: number | null, limit: number): Promise<ScheduledTaskRow[]> {
    return fireStatements(this.#database.sqlite).scheduledTasks.all(
      scheduleId,
      before ?? Number.MAX_SAFE_INTEGER,
      limit,
    ) as ScheduledTaskRow[];
  }

  async deleteRunsBefore(before: number, limit: number): Promise<number> {
    return fireStatements(this.#database.sqlite).deleteRunsBefore.run({ before, limit }).changes;
  }
}
