// Schedules: recurring tasks from cron expressions. Leaf module.

/** SKIP: no new task while the schedule's previous one has not ended. */
export const SCHEDULE_OVERLAPS = Object.freeze(['ALLOW', 'SKIP'] as const);
export type ScheduleOverlap = (typeof SCHEDULE_OVERLAPS)[number];

/**
 * After fire times were missed (no process was running): NONE skips them and waits for the next;
 * LATEST creates one task for the most recent of them.
 */
export const SCHEDULE_CATCH_UPS = Object.freeze(['NONE', 'LATEST'] as const);
export type ScheduleCatchUp = (typeof SCHEDULE_CATCH_UPS)[number];

/** What became of one fire time: a task, or why none. */
export const SCHEDULE_RUN_OUTCOMES = Object.freeze(['CREATED', 'SKIPPED_OVERLAP', 'MISSED'] as const);
export type ScheduleRunOutcome = (typeof SCHEDULE_RUN_OUTCOMES)[number];

export const SCHEDULE_LIMITS = Object.freeze({
  nameLength: 200,
  /** A fire time this late is missed, not run late: what catchUp decides about. */
  missedAfterMs: 60_000,
  nextRunsMax: 100,
  schedulesPerOrganisation: 10_000,
});

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

/** What the API layers ask of schedules. */
export interface ScheduleApi {}
