import type pg from 'pg';
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
import type { PgDatabase, PgDrizzle } from './database.js';
import { insertSubmissions } from './queue/enqueue.js';
import { schedules } from './schema.js';

/** A named statement: pg prepares it once per connection, then only binds its values. */
const statement = (name: string, text: string) => (values: unknown[]) => ({ name: `schedules.${name}`, text, values });

const statements = {
  // A trigger waits for a scheduler that holds the row; a scheduler skips it, as another process fires it.
  lockLiveSchedule: statement('lockLiveSchedule', `SELECT id FROM schedules WHERE id = $1 AND date_deleted IS NULL FOR UPDATE`),
  claimWaitingSchedule: statement(
    'claimWaitingSchedule',
    `SELECT id FROM schedules WHERE id = $1 AND next_run_at = $2 FOR UPDATE SKIP LOCKED`,
  ),
  // The schedule's latest task, found backwards along the runs' primary key.
  previousTaskState: statement(
    'previousTaskState',
    `SELECT state FROM tasks WHERE id = (SELECT task_id FROM schedule_runs WHERE schedule_id = $1 AND task_id IS NOT NULL
       ORDER BY scheduled_for DESC LIMIT 1)`,
  ),
  insertRun: statement(
    'insertRun',
    `INSERT INTO schedule_runs (schedule_id, scheduled_for, outcome, task_id, date_created) VALUES ($1, $2, $3, NULL, $4)
     ON CONFLICT DO NOTHING RETURNING ${SCHEDULE_RUN_COLUMNS}`,
  ),
  setRunTask: statement(
    'setRunTask',
    `UPDATE schedule_runs SET task_id = $1 WHERE schedule_id = $2 AND scheduled_for = $3 RETURNING ${SCHEDULE_RUN_COLUMNS}`,
  ),
  advance: statement('advance', `UPDATE schedules SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3`),
  // The partial index schedules_due serves both: its first entry, and its range up to now.
  earliestNextRun: statement(
    'earliestNextRun',
    `SELECT min(next_run_at) AS earliest FROM schedules WHERE next_run_at IS NOT NULL`,
  ),
  dueSchedules: statement(
    'dueSchedules',
    `SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= $1 ORDER BY next_run_at LIMIT $2`,
  ),
  lastRuns: statement(
    'lastRuns',
    `SELECT ${SCHEDULE_RUN_COLUMNS} FROM unnest($1::int[]) AS wanted (id)
     CROSS JOIN LATERAL (SELECT * FROM schedule_runs WHERE schedule_id = wanted.id ORDER BY scheduled_for DESC LIMIT 1) AS latest`,
  ),
  scheduledTasks: statement(
    'scheduledTasks',
    `SELECT scheduled_for AS "scheduledFor", task_id AS "taskId" FROM schedule_runs
     WHERE schedule_id = $1 AND scheduled_for < $2 AND task_id IS NOT NULL ORDER BY scheduled_for DESC LIMIT $3`,
  ),
  // Each schedule's range of old runs through the primary key, short of its latest.
  deleteRunsBefore: statement(
    'deleteRunsBefore',
    `DELETE FROM schedule_runs WHERE (schedule_id, scheduled_for) IN (
       SELECT run.schedule_id, run.scheduled_for FROM schedules JOIN schedule_runs run ON run.schedule_id = schedules.id
       WHERE run.scheduled_for < $1
         AND run.scheduled_for < (SELECT max(latest.scheduled_for) FROM schedule_runs latest WHERE latest.schedule_id = schedules.id)
       LIMIT $2)`,
  ),
};

/** The driver's error, or drizzle's around it. */
function isUniqueViolation(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | null)?.cause ?? error;
  return (cause as { code?: unknown } | null)?.code === '23505';
}

export class PgScheduleStore implements ScheduleStore {
  readonly #database: PgDatabase;
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
    this.#database = database;
    this.#db = database.db;
  }

  async createSchedule(input: NewSchedule, now: number): Promise<Schedule | null> {
    try {
      const [record] = await this.#db
        .insert(schedules)
        .values({ ...input, params: JSON.stringify(input.params), dateCreated: now, dateUpdated: now })
        .returning();
      return toSchedule(record!);
    } catch (error) {
      if (isUniqueViolation(error)) return null;
      throw error;
    }
  }

  async countSchedules(organisationId: number): Promise<number> {
    const [row] = await this.#db
      .select({ count: count() })
      .from(schedules)
      .where(and(eq(schedules.organisationId, organisationId), isNull(schedules.dateDeleted)));
    return row?.count ?? 0;
  }

  async getSchedules(organisationId: number, ids: readonly number[]): Promise<Schedule[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select()
      .from(schedules)
      .where(
        and(eq(schedules.organisationId, organisationId), inArray(schedules.id, [...ids]), isNull(schedules.dateDeleted)),
      );
    return records.map(toSchedule);
  }

  async listSchedules(organisationId: number, request: PageRequest): Promise<Page<Schedule>> {
    const records = await this.#db
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
      .limit(request.first + 1);
    return { items: records.slice(0, request.first).map(toSchedule), hasNextPage: records.length > request.first };
  }

  async updateSchedule(
    organisationId: number,
    id: number,
    changes: ScheduleChanges,
    now: number,
  ): Promise<Schedule | null | 'NAME_TAKEN'> {
    const { params, ...rest } = changes;
    try {
      const [record] = await this.#db
        .update(schedules)
        .set({ ...rest, ...(params === undefined ? {} : { params: JSON.stringify(params) }), dateUpdated: now })
        .where(and(eq(schedules.id, id), eq(schedules.organisationId, organisationId), isNull(schedules.dateDeleted)))
        .returning();
      return record ? toSchedule(record) : null;
    } catch (error) {
      if (isUniqueViolation(error)) return 'NAME_TAKEN';
      throw error;
    }
  }

  async deleteSchedule(organisationId: number, id: number, now: number): Promise<Schedule | null> {
    const [record] = await this.#db
      .update(schedules)
      .set({ dateDeleted: now, dateUpdated: now, nextRunAt: null })
      .where(and(eq(schedules.id, id), eq(schedules.organisationId, organisationId), isNull(schedules.dateDeleted)))
      .returning();
    return record ? toSchedule(record) : null;
  }

  async earliestNextRun(): Promise<number | null> {
    const { rows } = await this.#database.pool.query<{ earliest: number | null }>(statements.earliestNextRun([]));
    return rows[0]?.earliest ?? null;
  }

  async dueSchedules(now: number, limit: number): Promise<Schedule[]> {
    const { rows } = await this.#database.pool.query<ScheduleRecord>(statements.dueSchedules([now, limit]));
    return rows.map(toSchedule);
  }

  async fireSchedule(fire: ScheduleFire, now: number): Promise<FireResult> {
    return this.#database.transaction(async (client): Promise<FireResult> => {
      const { rowCount } = await client.query(
        fire.from === null
          ? statements.lockLiveSchedule([fire.scheduleId])
          : statements.claimWaitingSchedule([fire.scheduleId, fire.from]),
      );
      if (!rowCount) return { fired: false };
      let outcome = fire.outcome;
      if (fire.newTask && fire.skipOverlap && (await previousTaskRunning(client, fire.scheduleId))) {
        outcome = 'SKIPPED_OVERLAP';
      }
      const inserted = await client.query<ScheduleRunRecord>(
        statements.insertRun([fire.scheduleId, fire.scheduledFor, outcome, now]),
      );
      if (fire.from !== null) await client.query(statements.advance([fire.nextRunAt, fire.scheduleId, fire.from]));
      // The fire time was served already (a trigger in the same millisecond): its next one is still set.
      const run = inserted.rows[0];
      if (!run) return { fired: false };
      if (outcome !== 'CREATED' || !fire.newTask) return { fired: true, run: toScheduleRun(run), task: null };
      const newTask = { ...fire.newTask, scheduleId: fire.scheduleId, scheduledFor: fire.scheduledFor };
      const [result] = await insertSubmissions(client, [{ newTasks: [newTask], now }]);
      if (!result?.ok) throw new Error('a scheduled task has no dependencies, yet one was missing');
      const task = result.tasks[0]!.task;
      const updated = await client.query<ScheduleRunRecord>(
        statements.setRunTask([task.id, fire.scheduleId, fire.scheduledFor]),
      );
      return { fired: true, run: toScheduleRun(updated.rows[0]!), task };
    });
  }

  async lastRuns(scheduleIds: readonly number[]): Promise<ScheduleRun[]> {
    if (scheduleIds.length === 0) return [];
    const { rows } = await this.#database.pool.query<ScheduleRunRecord>(statements.lastRuns([scheduleIds]));
    return rows.map(toScheduleRun);
  }

  async scheduledTasks(scheduleId: number, before: number | null, limit: number): Promise<ScheduledTaskRow[]> {
    const { rows } = await this.#database.pool.query<ScheduledTaskRow>(
      statements.scheduledTasks([scheduleId, before ?? Number.MAX_SAFE_INTEGER, limit]),
    );
    return rows;
  }

  async deleteRunsBefore(before: number, limit: number): Promise<number> {
    return (await this.#database.pool.query(statements.deleteRunsBefore([before, limit]))).rowCount ?? 0;
  }
}

async function previousTaskRunning(client: pg.PoolClient, scheduleId: number): Promise<boolean> {
  const { rows } = await client.query<{ state: TaskState }>(statements.previousTaskState([scheduleId]));
  return rows[0] !== undefined && !isTerminal(rows[0].state);
}
