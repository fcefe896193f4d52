import type { Catalog } from '../catalog/index.js';
import { ConflictError, LimitExceededError, NotFoundError, requireAdmin, ValidationError } from '../domain/errors.js';
import { EVERYONE, type PubSub } from '../domain/events.js';
import {
  DEFAULT_SCHEDULE_TIMEZONE,
  SCHEDULE_LIMITS,
  type Schedule,
  type ScheduleApi,
  type ScheduleChangesInput,
  type ScheduledTaskRef,
  type ScheduleInput,
  type ScheduleRun,
} from '../domain/schedules.js';
import type { Actor, Organisation, Page, PageRequest, Task } from '../domain/types.js';
import type { EngineLogger } from '../engine/logger.js';
import { publishChanges } from '../engine/publish.js';
import { prepareSubmission } from '../engine/submission.js';
import type { NewTask, Storage } from '../storage/index.js';
import type { NewSchedule, ScheduleFire } from '../storage/schedule-store.js';
import { parseCron, type CronTimes } from './cron.js';

export interface SchedulesOptions {
  storage: Storage;
  catalog: Catalog;
  events: PubSub;
  logger: EngineLogger;
  /** The clock fire times are compared with; tests move it past a stopped period. */
  now?: () => number;
}

/** The timer never sleeps longer than this, should a change of another process go unheard. */
const MAX_WAIT_MS = 60_000;
/** How soon a pass runs again when a due schedule could not be fired (the database failed). */
const RETRY_MS = 1000;
/** Due schedules one read takes; a pass that fired a whole batch reads the next at once. */
const DUE_BATCH = 100;

/** What one pass does with one due schedule. */
interface FirePlan {
  scheduledFor: number;
  nextRunAt: number | null;
  /** False: the fire time was missed, and catchUp NONE only records it. */
  run: boolean;
}

function timesOf(schedule: Pick<Schedule, 'cron' | 'timezone'>): CronTimes | null {
  const parsed = parseCron(schedule.cron, schedule.timezone);
  return parsed.ok ? parsed.times : null;
}

function nextAfter(times: CronTimes, after: number): number | null {
  return times.nextRuns(1, new Date(after))[0]?.getTime() ?? null;
}

/**
 * The latest fire time at or before `limit`, knowing that `earliest` (a fire time) is one: the
 * window before `limit` doubles until a fire time falls in it, so that a schedule down for a year
 * costs some 35 steps, not a walk through every second of it.
 */
export function latestFireTime(times: CronTimes, earliest: number, limit: number): number {
  let span = 1000;
  let from = Math.max(earliest - 1, limit - span);
  let first = nextAfter(times, from);
  while (first === null || first > limit) {
    span *= 2;
    from = Math.max(earliest - 1, limit - span);
    first = nextAfter(times, from);
  }
  let latest = first;
  for (;;) {
    const following = times.nextRuns(100, new Date(latest)).map((date) => date.getTime());
    const within = following.filter((time) => time <= limit);
    if (within.length > 0) latest = within.at(-1)!;
    if (within.length < following.length || following.length === 0) return latest;
  }
}

/**
 * Decides a due schedule's fire: a fire time at most SCHEDULE_LIMITS.missedAfterMs late runs, and
 * the next is the one after it (a pass a few seconds late catches up one fire time per pass). Past
 * that, the fire times up to now - missedAfterMs were missed: the latest of them runs for LATEST
 * and is recorded as MISSED for NONE, and the schedule waits for the first one after them.
 */
export function planFire(schedule: Schedule, times: CronTimes, now: number): FirePlan {
  const due = schedule.nextRunAt!.getTime();
  const cutoff = now - SCHEDULE_LIMITS.missedAfterMs;
  if (due > cutoff) return { scheduledFor: due, nextRunAt: nextAfter(times, due), run: true };
  return {
    scheduledFor: latestFireTime(times, due, cutoff),
    nextRunAt: nextAfter(times, cutoff),
    run: schedule.catchUp === 'LATEST',
  };
}

type Creator = { ok: true; actor: Actor; organisation: Organisation } | { ok: false; reason: string };

interface CheckedSchedule {
  fields: Omit<NewSchedule, 'organisationId' | 'keyId' | 'paused' | 'nextRunAt'>;
  times: CronTimes;
}

/** Schedules for the API, and the scheduler that fires them: every process runs one. */
export class Schedules implements ScheduleApi {
  readonly #options: SchedulesOptions;
  readonly #now: () => number;
  #stopped = true;
  #timer: NodeJS.Timeout | null = null;
  #passes: Promise<void> | null = null;
  #wokenDuringPass = false;
  #stopListening: (() => void) | null = null;

  constructor(options: SchedulesOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get #store() {
    return this.#options.storage.schedules;
  }

  // ------------------------------------------------------------ the scheduler

  async start(): Promise<void> {
    this.#stopped = false;
    this.#stopListening = this.#options.events.listen('schedulesChanged', EVERYONE, () => this.#wake());
    this.#wake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopListening?.();
    this.#stopListening = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#passes;
  }

  #wake(): void {
    if (this.#stopped) return;
    if (this.#passes) {
      this.#wokenDuringPass = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#passes = this.#runPasses().finally(() => {
      this.#passes = null;
    });
  }

  async #runPasses(): Promise<void> {
    try {
      do {
        this.#wokenDuringPass = false;
        // A pass that fired something may have left a fire time due that is still due (a late pass).
        while (!this.#stopped && (await this.fireDue()) > 0);
      } while (this.#wokenDuringPass && !this.#stopped);
      await this.#arm();
    } catch (error) {
      this.#options.logger.error({ err: error }, 'the scheduler failed; it tries again');
      this.#armIn(RETRY_MS);
    }
  }

  async #arm(): Promise<void> {
    const earliest = await this.#store.earliestNextRun();
    if (earliest === null) return this.#armIn(MAX_WAIT_MS);
    const wait = earliest - this.#now();
    // Still due after a pass: its fire failed, and is tried again after a pause rather than at once.
    this.#armIn(wait <= 0 ? RETRY_MS : Math.min(wait, MAX_WAIT_MS));
  }

  #armIn(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#wake(), ms).unref();
  }

  /**
   * One pass: every schedule due now fires at most once. Returns how many fire times this process
   * served (lost races and failures not counted). The timer calls it; so may a test, with its clock.
   */
  async fireDue(): Promise<number> {
    const now = this.#now();
    const due = await this.#store.dueSchedules(now, DUE_BATCH);
    const creators = new Map<number, Promise<Creator>>();
    let fired = 0;
    for (const schedule of due) {
      try {
        if (await this.#fireOne(schedule, now, creators)) fired++;
      } catch (error) {
        this.#options.logger.error({ err: error, scheduleId: schedule.id }, 'a schedule could not fire');
      }
    }
    return fired;
  }

  async #fireOne(schedule: Schedule, now: number, creators: Map<number, Promise<Creator>>): Promise<boolean> {
    const from = schedule.nextRunAt!.getTime();
    const times = timesOf(schedule);
    if (!times) {
      // Validated when written; a croner that no longer reads it must not fire it in a loop.
      return this.#fire(
        { scheduleId: schedule.id, scheduledFor: from, from, nextRunAt: null, newTask: null, outcome: 'REFUSED', skipOverlap: false },
        now,
      );
    }
    const plan = planFire(schedule, times, now);
    const fire: ScheduleFire = {
      scheduleId: schedule.id,
      scheduledFor: plan.scheduledFor,
      from,
      nextRunAt: plan.nextRunAt,
      newTask: null,
      outcome: 'MISSED',
      skipOverlap: schedule.overlap === 'SKIP',
    };
    if (plan.run) {
      const prepared = await this.#taskOf(schedule, creators);
      if (prepared.ok) Object.assign(fire, { newTask: prepared.newTask, outcome: 'CREATED' });
      else {
        fire.outcome = 'REFUSED';
        this.#options.logger.warn({ scheduleId: schedule.id, reason: prepared.reason }, 'a schedule could not submit its task');
      }
    }
    return this.#fire(fire, now);
  }

  async #fire(fire: ScheduleFire, now: number): Promise<boolean> {
    const result = await this.#store.fireSchedule(fire, now);
    if (result.fired && result.task) publishChanges(this.#options.events, [result.task], 'CREATED');
    return result.fired;
  }

  /** The schedule's key as an actor, or why it can no longer submit. */
  async #creatorOf(schedule: Schedule): Promise<Creator> {
    const { records } = this.#options.storage;
    const [key] = await records.getApiKeys(schedule.organisationId, [schedule.keyId]);
    if (!key || key.revoked) return { ok: false, reason: 'the key that created the schedule was revoked' };
    const organisation = await records.getOrganisation(schedule.organisationId);
    if (!organisation) return { ok: false, reason: 'the organisation no longer exists' };
    const actor: Actor = { organisationId: key.organisationId, keyId: key.id, role: key.role, permissions: key.permissions };
    return { ok: true, actor, organisation };
  }

  /**
   * The task as the schedule's key would submit it now, or why that key cannot. `creators` keeps
   * the keys one pass has read: many schedules of one key fire at the same minute.
   */
  async #taskOf(
    schedule: Schedule,
    creators = new Map<number, Promise<Creator>>(),
  ): Promise<{ ok: true; newTask: NewTask } | { ok: false; reason: string }> {
    const { records } = this.#options.storage;
    let pending = creators.get(schedule.keyId);
    if (!pending) {
      pending = this.#creatorOf(schedule);
      creators.set(schedule.keyId, pending);
    }
    const creator = await pending;
    if (!creator.ok) return creator;
    const { actor, organisation } = creator;
    try {
      const newTask = await prepareSubmission(this.#options.catalog, records, actor, organisation, {
        service: schedule.service,
        action: schedule.action,
        params: schedule.params,
        priority: schedule.priority,
      }, null);
      return { ok: true, newTask };
    } catch (error) {
      if (error instanceof ValidationError) return { ok: false, reason: `${error.field ?? 'input'}: ${error.message}` };
      throw error;
    }
  }

  // ------------------------------------------------------------ the API

  /** Throws the ValidationError that names the field at fault, as a submission of the same task would. */
  async #check(actor: Actor, input: ScheduleInput): Promise<CheckedSchedule> {
    const name = input.name.trim();
    if (name.length === 0 || name.length > SCHEDULE_LIMITS.nameLength) {
      throw new ValidationError('INVALID', `name must be 1 to ${SCHEDULE_LIMITS.nameLength} characters`, 'name');
    }
    const timezone = input.timezone ?? DEFAULT_SCHEDULE_TIMEZONE;
    const parsed = parseCron(input.cron, timezone);
    if (!parsed.ok) throw new ValidationError('INVALID', parsed.message, parsed.field);
    const organisation = await this.#options.storage.records.getOrganisation(actor.organisationId);
    if (!organisation) throw new NotFoundError('the organisation of this key no longer exists');
    const params = input.params ?? {};
    const prepared = await prepareSubmission(
      this.#options.catalog,
      this.#options.storage.records,
      actor,
      organisation,
      { service: input.service, action: input.action, params, priority: input.priority ?? null },
      null,
    );
    return {
      fields: {
        name,
        cron: input.cron.trim(),
        timezone,
        service: input.service,
        action: input.action,
        params: params as Record<string, unknown>,
        priority: prepared.priority,
        overlap: input.overlap ?? 'ALLOW',
        catchUp: input.catchUp ?? 'NONE',
      },
      times: parsed.times,
    };
  }

  async #one(actor: Actor, id: number): Promise<Schedule> {
    requireAdmin(actor);
    const [schedule] = await this.#store.getSchedules(actor.organisationId, [id]);
    if (!schedule) throw new NotFoundError('no such schedule of this organisation');
    return schedule;
  }

  #changed(schedule: Schedule | null | 'NAME_TAKEN', name: string): Schedule {
    if (schedule === 'NAME_TAKEN') throw new ConflictError('ALREADY_EXISTS', `a schedule named ${name} exists`);
    if (!schedule) throw new NotFoundError('no such schedule of this organisation');
    this.#options.events.publish('schedulesChanged', EVERYONE, {});
    return schedule;
  }

  async createSchedule(actor: Actor, input: ScheduleInput): Promise<Schedule> {
    requireAdmin(actor);
    const { fields, times } = await this.#check(actor, input);
    if ((await this.#store.countSchedules(actor.organisationId)) >= SCHEDULE_LIMITS.schedulesPerOrganisation) {
      throw new LimitExceededError(
        `an organisation has at most ${SCHEDULE_LIMITS.schedulesPerOrganisation} schedules`,
        SCHEDULE_LIMITS.schedulesPerOrganisation,
      );
    }
    const now = this.#now();
    const created = await this.#store.createSchedule(
      { ...fields, organisationId: actor.organisationId, keyId: actor.keyId, paused: false, nextRunAt: nextAfter(times, now) },
      now,
    );
    if (!created) throw new ConflictError('ALREADY_EXISTS', `a schedule named ${fields.name} exists`);
    this.#options.events.publish('schedulesChanged', EVERYONE, {});
    return created;
  }

  async listSchedules(actor: Actor, page: PageRequest): Promise<Page<Schedule>> {
    requireAdmin(actor);
    return this.#store.listSchedules(actor.organisationId, page);
  }

  async getSchedules(actor: Actor, ids: readonly number[]): Promise<(Schedule | null)[]> {
    requireAdmin(actor);
    const found = new Map((await this.#store.getSchedules(actor.organisationId, ids)).map((s) => [s.id, s]));
    return ids.map((id) => found.get(id) ?? null);
  }

  async updateSchedule(actor: Actor, id: number, input: ScheduleChangesInput): Promise<Schedule> {
    const schedule = await this.#one(actor, id);
    const merged: ScheduleInput = {
      name: input.name ?? schedule.name,
      cron: input.cron ?? schedule.cron,
      timezone: input.timezone ?? schedule.timezone,
      service: input.service ?? schedule.service,
      action: input.action ?? schedule.action,
      params: input.params ?? schedule.params,
      priority: input.priority ?? schedule.priority,
      overlap: input.overlap ?? schedule.overlap,
      catchUp: input.catchUp ?? schedule.catchUp,
    };
    const { fields, times } = await this.#check(actor, merged);
    // Its tasks are still the creating key's: what that key may no longer do is refused when it fires.
    const timing = fields.cron !== schedule.cron || fields.timezone !== schedule.timezone;
    const now = this.#now();
    const changes = timing && !schedule.paused ? { ...fields, nextRunAt: nextAfter(times, now) } : fields;
    return this.#changed(await this.#store.updateSchedule(actor.organisationId, id, changes, now), fields.name);
  }

  async pauseSchedule(actor: Actor, id: number): Promise<Schedule> {
    const schedule = await this.#one(actor, id);
    const updated = await this.#store.updateSchedule(actor.organisationId, id, { paused: true, nextRunAt: null }, this.#now());
    return this.#changed(updated, schedule.name);
  }

  async resumeSchedule(actor: Actor, id: number): Promise<Schedule> {
    const schedule = await this.#one(actor, id);
    const times = timesOf(schedule);
    const now = this.#now();
    const nextRunAt = times ? nextAfter(times, now) : null;
    const updated = await this.#store.updateSchedule(actor.organisationId, id, { paused: false, nextRunAt }, now);
    return this.#changed(updated, schedule.name);
  }

  async deleteSchedule(actor: Actor, id: number): Promise<Schedule> {
    requireAdmin(actor);
    return this.#changed(await this.#store.deleteSchedule(actor.organisationId, id, this.#now()), '');
  }

  async triggerSchedule(actor: Actor, id: number): Promise<{ schedule: Schedule; task: Task }> {
    const schedule = await this.#one(actor, id);
    const prepared = await this.#taskOf(schedule);
    if (!prepared.ok) throw new ValidationError('INVALID', prepared.reason, 'id');
    const now = this.#now();
    const result = await this.#store.fireSchedule(
      { scheduleId: id, scheduledFor: now, from: null, nextRunAt: null, newTask: prepared.newTask, outcome: 'CREATED', skipOverlap: false },
      now,
    );
    if (!result.fired || !result.task) {
      throw new ConflictError('ALREADY_EXISTS', 'the schedule was triggered in this millisecond already, or deleted');
    }
    publishChanges(this.#options.events, [result.task], 'CREATED');
    return { schedule, task: result.task };
  }

  nextRuns(schedule: Schedule, count: number): Date[] {
    const times = timesOf(schedule);
    const bounded = Math.max(0, Math.min(count, SCHEDULE_LIMITS.nextRunsMax));
    return times && bounded > 0 ? times.nextRuns(bounded, new Date(this.#now())) : [];
  }

  async lastRuns(actor: Actor, ids: readonly number[]): Promise<(ScheduleRun | null)[]> {
    const owned = (await this.getSchedules(actor, ids)).filter((schedule) => schedule !== null);
    const runs = new Map((await this.#store.lastRuns(owned.map((s) => s.id))).map((run) => [run.scheduleId, run]));
    return ids.map((id) => runs.get(id) ?? null);
  }

  async scheduledTasks(actor: Actor, id: number, first: number, afterScheduledFor: number | null): Promise<Page<ScheduledTaskRef>> {
    await this.#one(actor, id);
    const rows = await this.#store.scheduledTasks(id, afterScheduledFor, first + 1);
    return {
      items: rows.slice(0, first).map((row) => ({ scheduledFor: new Date(row.scheduledFor), taskId: row.taskId })),
      hasNextPage: rows.length > first,
    };
  }
}
