import type { Schedule, ScheduleCatchUp, ScheduleOverlap, ScheduleRun, ScheduleRunOutcome } from '../domain/schedules.js';
import type { Page, PageRequest, Task } from '../domain/types.js';
import type { NewTask } from './contract.js';

export interface NewSchedule {
  organisationId: number;
  keyId: number;
  name: string;
  cron: string;
  timezone: string;
  service: string;
  action: string;
  params: Record<string, unknown>;
  priority: number;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  paused: boolean;
  nextRunAt: number | null;
}

export type ScheduleChanges = Partial<Omit<NewSchedule, 'organisationId' | 'keyId'>>;

/** One fire time of one schedule, as the scheduler (or a trigger) planned it. */
export interface ScheduleFire {
  scheduleId: number;
  scheduledFor: number;
  /**
   * The next_run_at the plan was made from, which the fire moves to `nextRunAt` only if it still
   * holds (another process may have fired it meanwhile); null for a trigger, which moves nothing.
   */
  from: number | null;
  nextRunAt: number | null;
  /** The task to create; null records `outcome` without one. */
  newTask: NewTask | null;
  /** With a task: CREATED, or SKIPPED_OVERLAP instead when `skipOverlap` and the previous task has not ended. */
  outcome: ScheduleRunOutcome;
  skipOverlap: boolean;
}

/** fired false: another process fired this time first, or the schedule changed since it was read. */
export type FireResult = { fired: false } | { fired: true; run: ScheduleRun; task: Task | null };

export interface ScheduledTaskRow {
  scheduledFor: number;
  taskId: number;
}

/** Schedules and their runs: one run per schedule and fire time, whichever process fires it. */
export interface ScheduleStore {
  /** Null when a live schedule of the organisation has that name. */
  createSchedule(input: NewSchedule, now: number): Promise<Schedule | null>;
  countSchedules(organisationId: number): Promise<number>;
  /** The organisation's live schedules among `ids`, in any order. */
  getSchedules(organisationId: number, ids: readonly number[]): Promise<Schedule[]>;
  listSchedules(organisationId: number, page: PageRequest): Promise<Page<Schedule>>;
  /** Null when it is not a live schedule of the organisation; NAME_TAKEN when another has the new name. */
  updateSchedule(organisationId: number, id: number, changes: ScheduleChanges, now: number): Promise<Schedule | null | 'NAME_TAKEN'>;
  deleteSchedule(organisationId: number, id: number, now: number): Promise<Schedule | null>;
  /** The earliest fire time any schedule waits for. */
  earliestNextRun(): Promise<number | null>;
  /** Schedules whose next fire time is at or before `now`, earliest first. */
  dueSchedules(now: number, limit: number): Promise<Schedule[]>;
  /** In one transaction: the run, the task (through the submissions' own insert), the next fire time. */
  fireSchedule(fire: ScheduleFire, now: number): Promise<FireResult>;
  /** The latest run of each of `scheduleIds` that has one. */
  lastRuns(scheduleIds: readonly number[]): Promise<ScheduleRun[]>;
  /** The schedule's tasks, latest fire time first, from before `before` (epoch ms) when given. */
  scheduledTasks(scheduleId: number, before: number | null, limit: number): Promise<ScheduledTaskRow[]>;
  /**
   * Retention: deletes up to `limit` runs of fire times before `before`, every schedule keeping its
   * latest (its lastRun); returns how many. A 1-second schedule records 86,400 runs a day.
   */
  deleteRunsBefore(before: number, limit: number): Promise<number>;
}

/** The columns both dialects' schedules rows read as, to the domain's Schedule. */
export interface ScheduleRecord {
  id: number;
  organisationId: number;
  keyId: number;
  name: string;
  cron: string;
  timezone: string;
  service: string;
  action: string;
  params: string;
  priority: number;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  paused: boolean | number;
  nextRunAt: number | null;
  dateCreated: number;
  dateUpdated: number;
}

export function toSchedule(record: ScheduleRecord): Schedule {
  return {
    id: record.id,
    organisationId: record.organisationId,
    keyId: record.keyId,
    name: record.name,
    cron: record.cron,
    timezone: record.timezone,
    service: record.service,
    action: record.action,
    params: JSON.parse(record.params) as Record<string, unknown>,
    priority: record.priority,
    overlap: record.overlap,
    catchUp: record.catchUp,
    paused: Boolean(record.paused),
    nextRunAt: record.nextRunAt === null ? null : new Date(record.nextRunAt),
    dateCreated: new Date(record.dateCreated),
    dateUpdated: new Date(record.dateUpdated),
  };
}

export interface ScheduleRunRecord {
  scheduleId: number;
  scheduledFor: number;
  outcome: ScheduleRunOutcome;
  taskId: number | null;
  dateCreated: number;
}

export function toScheduleRun(record: ScheduleRunRecord): ScheduleRun {
  return {
    scheduleId: record.scheduleId,
    scheduledFor: new Date(record.scheduledFor),
    outcome: record.outcome,
    taskId: record.taskId,
    dateCreated: new Date(record.dateCreated),
  };
}

/** Raw columns of schedule_runs as ScheduleRunRecord, for statements written by hand. */
export const SCHEDULE_RUN_COLUMNS = `schedule_id AS "scheduleId", scheduled_for AS "scheduledFor", outcome,
  task_id AS "taskId", date_created AS "dateCreated"`;

/** Raw columns of schedules as ScheduleRecord. */
export const SCHEDULE_COLUMNS = `id, organisation_id AS "organisationId", key_id AS "keyId", name, cron, timezone, service,
  action, params, priority, overlap, catch_up AS "catchUp", paused, next_run_at AS "nextRunAt",
  date_created AS "dateCreated", date_updated AS "dateUpdated"`;
