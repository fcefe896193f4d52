// Schedules: recurring tasks from cron expressions. Leaf module.

import type { Actor, Page, PageRequest, Task } from './types.js';

/** SKIP: no new task while the schedule's previous one has not ended. */
export const SCHEDULE_OVERLAPS = Object.freeze(['ALLOW', 'SKIP'] as const);
export type ScheduleOverlap = (typeof SCHEDULE_OVERLAPS)[number];

/**
 * After fire times were missed (no process was running): NONE skips them and waits for the next;
 * LATEST creates one task for the most recent of them.
 */
export const SCHEDULE_CATCH_UPS = Object.freeze(['NONE', 'LATEST'] as const);
export type ScheduleCatchUp = (typeof SCHEDULE_CATCH_UPS)[number];

/**
 * What became of one fire time: a task, or why none. REFUSED: the task could not be submitted as
 * the schedule's key (revoked, or the action or its params no longer allowed).
 */
export const SCHEDULE_RUN_OUTCOMES = Object.freeze(['CREATED', 'SKIPPED_OVERLAP', 'MISSED', 'REFUSED'] as const);
export type ScheduleRunOutcome = (typeof SCHEDULE_RUN_OUTCOMES)[number];

export const SCHEDULE_LIMITS = Object.freeze({
  nameLength: 200,
  /** A fire time this late is missed, not run late: what catchUp decides about. */
  missedAfterMs: 60_000,
  nextRunsMax: 100,
  schedulesPerOrganisation: 10_000,
  /** The default of Schedule.nextRuns(count). */
  nextRunsDefault: 5,
});

export const DEFAULT_SCHEDULE_TIMEZONE = 'UTC';

export interface Schedule {
  id: number;
  organisationId: number;
  /** The key that created it: its tasks are submitted as that key's, within its permissions. */
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
  /** The fire time it waits for; null while paused. */
  nextRunAt: Date | null;
  dateCreated: Date;
  dateUpdated: Date;
}

export interface ScheduleRun {
  scheduleId: number;
  scheduledFor: Date;
  outcome: ScheduleRunOutcome;
  taskId: number | null;
  dateCreated: Date;
}

export interface ScheduleInput {
  name: string;
  cron: string;
  /** IANA; UTC when absent. */
  timezone?: string | null;
  service: string;
  action: string;
  params?: unknown;
  priority?: number | null;
  overlap?: ScheduleOverlap | null;
  catchUp?: ScheduleCatchUp | null;
}

/** Absent or null fields keep their value. */
export type ScheduleChangesInput = { [Field in keyof ScheduleInput]?: ScheduleInput[Field] | null };

/** A task a schedule created, and the fire time it was created for. */
export interface ScheduledTaskRef {
  scheduledFor: Date;
  taskId: number;
}

/** What the API layers ask of schedules. Every method needs an ADMIN actor. */
export interface ScheduleApi {
  createSchedule(actor: Actor, input: ScheduleInput): Promise<Schedule>;
  listSchedules(actor: Actor, page: PageRequest): Promise<Page<Schedule>>;
  /** In the order asked; null for ids that are not the organisation's live schedules. */
  getSchedules(actor: Actor, ids: readonly number[]): Promise<(Schedule | null)[]>;
  updateSchedule(actor: Actor, id: number, input: ScheduleChangesInput): Promise<Schedule>;
  pauseSchedule(actor: Actor, id: number): Promise<Schedule>;
  /** Waits for the next fire time after now: the ones passed while paused are not run. */
  resumeSchedule(actor: Actor, id: number): Promise<Schedule>;
  deleteSchedule(actor: Actor, id: number): Promise<Schedule>;
  /** One task now, for the fire time now, paused or not. */
  triggerSchedule(actor: Actor, id: number): Promise<{ schedule: Schedule; task: Task }>;
  /** The next `count` fire times after now, paused or not. */
  nextRuns(schedule: Schedule, count: number): Date[];
  /** The latest run of each schedule, in the order asked. */
  lastRuns(actor: Actor, ids: readonly number[]): Promise<(ScheduleRun | null)[]>;
  /** Its tasks, newest fire time first; `afterScheduledFor` continues a page (epoch ms). */
  scheduledTasks(actor: Actor, id: number, first: number, afterScheduledFor: number | null): Promise<Page<ScheduledTaskRef>>;
}
