// Schedules: the ADMIN API over recurring tasks, and the fields tasks gain from them.
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { ConflictError, LimitExceededError, NotFoundError, ValidationError } from '../domain/errors.js';
import {
  DEFAULT_SCHEDULE_TIMEZONE,
  SCHEDULE_CATCH_UPS,
  SCHEDULE_LIMITS,
  SCHEDULE_OVERLAPS,
  SCHEDULE_RUN_OUTCOMES,
  type Schedule,
  type ScheduleRun,
} from '../domain/schedules.js';
import type { Task } from '../domain/types.js';
import { builder, describedValues, type GraphQLContext } from './builder.js';
import { requireActor } from './context.js';
import { decodeId, pageRequest, toConnection } from './ids.js';
import { TaskRef } from './tasks.js';

export const ScheduleRef = builder.objectRef<Schedule>('Schedule');

const ScheduleOverlapEnum = builder.enumType('ScheduleOverlap', {
  values: describedValues(SCHEDULE_OVERLAPS, {
    ALLOW: 'A task at every fire time, however many of its earlier ones still run.',
    SKIP: 'No task while the previous one has not ended; the fire time is recorded as SKIPPED_OVERLAP.',
  }),
});

const ScheduleCatchUpEnum = builder.enumType('ScheduleCatchUp', {
  values: describedValues(SCHEDULE_CATCH_UPS, {
    NONE: `Fire times more than ${SCHEDULE_LIMITS.missedAfterMs / 1000} s late (no process was running) are recorded as MISSED; the schedule waits for the next.`,
    LATEST: 'One task for the most recent of the missed fire times, then the next as usual.',
  }),
});

const ScheduleRunOutcomeEnum = builder.enumType('ScheduleRunOutcome', {
  values: describedValues(SCHEDULE_RUN_OUTCOMES, {
    CREATED: 'A task was created.',
    SKIPPED_OVERLAP: 'overlap SKIP, and the previous task had not ended.',
    MISSED: 'catchUp NONE, and no process fired it in time.',
    REFUSED: "The schedule's key could not submit the task (revoked, or the action or its params no longer allowed).",
  }),
});

/** A request's schedules read by id in one batch, for the tasks of a page that each name theirs. */
const scheduleLoaders = new WeakMap<GraphQLContext, DataLoader<number, Schedule | null>>();
function loadSchedule(context: GraphQLContext, id: number): Promise<Schedule | null> {
  let loader = scheduleLoaders.get(context);
  if (!loader) {
    loader = new DataLoader((ids) => context.engine.schedules.getSchedules(requireActor(context), ids));
    scheduleLoaders.set(context, loader);
  }
  return loader.load(id);
}

/** Node lookup: schedules are an ADMIN's to see. */
export function loadScheduleNode(context: GraphQLContext, id: number): Promise<Schedule | null> {
  return context.actor?.role === 'ADMIN' ? loadSchedule(context, id) : Promise.resolve(null);
}

const lastRunLoaders = new WeakMap<GraphQLContext, DataLoader<number, ScheduleRun | null>>();
function loadLastRun(context: GraphQLContext, id: number): Promise<ScheduleRun | null> {
  let loader = lastRunLoaders.get(context);
  if (!loader) {
    loader = new DataLoader((ids) => context.engine.schedules.lastRuns(requireActor(context), ids));
    lastRunLoaders.set(context, loader);
  }
  return loader.load(id);
}

const ScheduleRunRef = builder.objectRef<ScheduleRun>('ScheduleRun').implement({
  description: 'What became of one fire time.',
  fields: (t) => ({
    scheduledFor: t.expose('scheduledFor', { type: 'DateTime' }),
    outcome: t.expose('outcome', { type: ScheduleRunOutcomeEnum }),
    task: t.field({
      type: TaskRef,
      nullable: true,
      description: 'The task it created; null when none was, or retention has deleted it.',
      resolve: (run, _args, context) => (run.taskId === null ? null : context.loaders.tasks.load(run.taskId)),
    }),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
  }),
});

const ScheduleTaskConnection = builder.connectionObject(
  { type: TaskRef, name: 'ScheduleTaskConnection' },
  { name: 'ScheduleTaskEdge' },
);

builder.node(ScheduleRef, {
  description: 'Tasks created from a cron expression, as the key that created the schedule would submit them.',
  id: { resolve: (schedule) => schedule.id },
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Unique among the organisation’s schedules.' }),
    cron: t.exposeString('cron', { description: '5 fields, or 6 with seconds first, or a nickname such as @hourly.' }),
    timezone: t.exposeString('timezone', { description: 'The IANA time zone the expression is read in.' }),
    service: t.exposeString('service'),
    action: t.exposeString('action'),
    params: t.field({ type: 'JSON', resolve: (schedule) => schedule.params }),
    priority: t.exposeInt('priority'),
    overlap: t.expose('overlap', { type: ScheduleOverlapEnum }),
    catchUp: t.expose('catchUp', { type: ScheduleCatchUpEnum }),
    paused: t.exposeBoolean('paused'),
    nextRuns: t.field({
      type: ['DateTime'],
      description: `The next fire times after now, paused or not; count at most ${SCHEDULE_LIMITS.nextRunsMax}.`,
      args: { count: t.arg.int({ defaultValue: SCHEDULE_LIMITS.nextRunsDefault }) },
      resolve: (schedule, { count }, context) => {
        const wanted = count ?? SCHEDULE_LIMITS.nextRunsDefault;
        if (wanted < 0 || wanted > SCHEDULE_LIMITS.nextRunsMax) {
          throw new GraphQLError(`count must be from 0 to ${SCHEDULE_LIMITS.nextRunsMax}`, { extensions: { code: 'INVALID' } });
        }
        return context.engine.schedules.nextRuns(schedule, wanted);
      },
    }),
    lastRun: t.field({
      type: ScheduleRunRef,
      nullable: true,
      resolve: (schedule, _args, context) => loadLastRun(context, schedule.id),
    }),
    tasks: t.field({
      type: ScheduleTaskConnection,
      description: 'The tasks it created, latest fire time first.',
      args: { first: t.arg.int(), after: t.arg.string() },
      resolve: async (schedule, args, context) => {
        const request = pageRequest(args);
        const page = await context.engine.schedules.scheduledTasks(
          requireActor(context),
          schedule.id,
          request.first,
          request.afterId ?? null,
        );
        // Cursors are fire times: the runs' key, in the order of the page.
        const tasks = await Promise.all(page.items.map((item) => context.loaders.tasks.load(item.taskId)));
        const items = page.items.flatMap((item, index) => (tasks[index] ? [{ id: item.scheduledFor.getTime(), task: tasks[index] }] : []));
        const connection = toConnection({ items, hasNextPage: page.hasNextPage }, request);
        return {
          ...connection,
          edges: connection.edges.map(async (edge) => {
            const { cursor, node } = await edge;
            return { cursor, node: node.task };
          }),
        };
      },
    }),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
    dateUpdated: t.expose('dateUpdated', { type: 'DateTime' }),
  }),
});

builder.objectFields(TaskRef, (t) => ({
  schedule: t.field({
    type: ScheduleRef,
    nullable: true,
    description: 'The schedule that created it; null for a submitted task, a deleted schedule, and to a MEMBER key.',
    resolve: (task: Task, _args, context) =>
      task.scheduleId === null || context.actor?.role !== 'ADMIN' ? null : loadSchedule(context, task.scheduleId),
  }),
  scheduledFor: t.field({
    type: 'DateTime',
    nullable: true,
    description: 'The fire time its schedule created it for.',
    resolve: (task: Task) => task.scheduledFor,
  }),
}));

const CRON_DESCRIPTION = '5 fields, or 6 with seconds first (e.g. "*/10 * * * * *"), or @hourly, @daily, …';
const TIMEZONE_DESCRIPTION = `An IANA time zone; ${DEFAULT_SCHEDULE_TIMEZONE} by default.`;
const PARAMS_DESCRIPTION = 'Checked as a submission’s are, against the key creating it.';

const CreateScheduleInput = builder.inputType('CreateScheduleInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    cron: t.string({ required: true, description: CRON_DESCRIPTION }),
    timezone: t.string({ description: TIMEZONE_DESCRIPTION }),
    service: t.string({ required: true }),
    action: t.string({ required: true }),
    params: t.field({ type: 'JSON', description: PARAMS_DESCRIPTION }),
    priority: t.int(),
    overlap: t.field({ type: ScheduleOverlapEnum, description: 'ALLOW by default.' }),
    catchUp: t.field({ type: ScheduleCatchUpEnum, description: 'NONE by default.' }),
  }),
});

const UpdateScheduleInput = builder.inputType('UpdateScheduleInput', {
  description: 'Absent fields keep their value.',
  fields: (t) => ({
    name: t.string(),
    cron: t.string({ description: CRON_DESCRIPTION }),
    timezone: t.string(),
    service: t.string(),
    action: t.string(),
    params: t.field({ type: 'JSON', description: PARAMS_DESCRIPTION }),
    priority: t.int(),
    overlap: t.field({ type: ScheduleOverlapEnum }),
    catchUp: t.field({ type: ScheduleCatchUpEnum }),
  }),
});

const ScheduleSuccess = builder.simpleObject('ScheduleSuccess', {
  fields: (t) => ({ schedule: t.field({ type: ScheduleRef }) }),
});

const TriggerScheduleSuccess = builder.simpleObject('TriggerScheduleSuccess', {
  fields: (t) => ({ schedule: t.field({ type: ScheduleRef }), task: t.field({ type: TaskRef }) }),
});

const ScheduleConnection = builder.connectionObject({ type: ScheduleRef, name: 'ScheduleConnection' }, { name: 'ScheduleEdge' });

function scheduleIdOf(id: string | number): number {
  const scheduleId = decodeId(String(id), 'Schedule');
  if (scheduleId === null) throw new NotFoundError(`no schedule ${id}`);
  return scheduleId;
}

builder.queryFields((t) => ({
  schedules: t.field({
    type: ScheduleConnection,
    description: "The organisation's schedules, oldest first. ADMIN only.",
    authScopes: { admin: true },
    args: { first: t.arg.int(), after: t.arg.string() },
    resolve: async (_root, args, context) => {
      const request = pageRequest(args);
      return toConnection(await context.engine.schedules.listSchedules(requireActor(context), request), request);
    },
  }),
  schedule: t.field({
    type: ScheduleRef,
    nullable: true,
    description: 'ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, context) => {
      const scheduleId = decodeId(String(id), 'Schedule');
      return scheduleId === null ? null : loadSchedule(context, scheduleId);
    },
  }),
}));

builder.mutationFields((t) => ({
  createSchedule: t.field({
    type: ScheduleSuccess,
    description: 'Tasks from a cron expression, submitted as this key. ADMIN only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateScheduleInput, required: true }) },
    errors: {
      types: [ValidationError, ConflictError, LimitExceededError],
      directResult: true,
      union: { name: 'CreateScheduleResult' },
    },
    resolve: async (_root, { input }, context) => ({
      schedule: await context.engine.schedules.createSchedule(requireActor(context), input),
    }),
  }),
  updateSchedule: t.field({
    type: ScheduleSuccess,
    description: 'A new cron or time zone waits for its next fire time after now. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateScheduleInput, required: true }) },
    errors: { types: [ValidationError, ConflictError, NotFoundError], directResult: true, union: { name: 'UpdateScheduleResult' } },
    resolve: async (_root, { id, input }, context) => ({
      schedule: await context.engine.schedules.updateSchedule(requireActor(context), scheduleIdOf(id), input),
    }),
  }),
  pauseSchedule: t.field({
    type: ScheduleSuccess,
    description: 'No tasks until it is resumed. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'PauseScheduleResult' } },
    resolve: async (_root, { id }, context) => ({
      schedule: await context.engine.schedules.pauseSchedule(requireActor(context), scheduleIdOf(id)),
    }),
  }),
  resumeSchedule: t.field({
    type: ScheduleSuccess,
    description: 'Waits for its next fire time after now: the ones passed while paused are not run. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'ResumeScheduleResult' } },
    resolve: async (_root, { id }, context) => ({
      schedule: await context.engine.schedules.resumeSchedule(requireActor(context), scheduleIdOf(id)),
    }),
  }),
  deleteSchedule: t.field({
    type: ScheduleSuccess,
    description: 'No more tasks; the ones it created keep naming it until retention deletes them. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'DeleteScheduleResult' } },
    resolve: async (_root, { id }, context) => ({
      schedule: await context.engine.schedules.deleteSchedule(requireActor(context), scheduleIdOf(id)),
    }),
  }),
  triggerSchedule: t.field({
    type: TriggerScheduleSuccess,
    description: 'One task now, for the fire time now, even while paused; overlap does not apply. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: {
      types: [NotFoundError, ValidationError, ConflictError],
      directResult: true,
      union: { name: 'TriggerScheduleResult' },
    },
    resolve: (_root, { id }, context) => context.engine.schedules.triggerSchedule(requireActor(context), scheduleIdOf(id)),
  }),
}));
