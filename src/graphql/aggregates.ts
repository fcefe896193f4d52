import {
  AGGREGATE_LIMITS,
  FINISHED_MINUTES,
  FINISHED_WINDOWS_MINUTES,
  type FinishedCounts,
  type QueueStats,
  type TaskCounts,
  type ThroughputBucket,
} from '../domain/aggregates.js';
import { ValidationError } from '../domain/errors.js';
import { builder } from './builder.js';
import { requireActor } from './context.js';
import { TaskFilterInput, toEngineFilter } from './tasks.js';

// Aggregates over the viewer's organisation, for dashboards: each is one statement over an index,
// so that watching a queue costs the same with a million tasks in the store as with a hundred.

const { throughputWindowMs, bucketSecondsMin, bucketSecondsMax, throughputBucketsMax } = AGGREGATE_LIMITS;

const NO_TASKS: TaskCounts = Object.freeze({ PENDING: 0, SUSPENDED: 0, PROCESSING: 0, SUCCEEDED: 0, FAILED: 0, CANCELLED: 0 });

const TaskCountsRef = builder.objectRef<TaskCounts>('TaskCounts').implement({
  description: "The organisation's tasks of a filter, by state.",
  fields: (t) => ({
    pending: t.exposeInt('PENDING'),
    suspended: t.exposeInt('SUSPENDED'),
    processing: t.exposeInt('PROCESSING'),
    succeeded: t.exposeInt('SUCCEEDED'),
    failed: t.exposeInt('FAILED'),
    cancelled: t.exposeInt('CANCELLED'),
    total: t.int({ resolve: (counts) => Object.values(counts).reduce((sum, count) => sum + count, 0) }),
  }),
});

const FinishedCountsRef = builder.objectRef<FinishedCounts>('FinishedCounts').implement({
  description: 'Tasks that ended, by how.',
  fields: (t) => ({
    succeeded: t.exposeInt('SUCCEEDED'),
    failed: t.exposeInt('FAILED'),
    cancelled: t.exposeInt('CANCELLED'),
    total: t.int({ resolve: (counts) => counts.SUCCEEDED + counts.FAILED + counts.CANCELLED }),
  }),
});

const ThroughputBucketRef = builder.objectRef<ThroughputBucket>('ThroughputBucket').implement({
  description: 'The tasks whose dateCompleted falls in [start, start + bucketSeconds), by how they ended.',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime' }),
    succeeded: t.int({ resolve: (bucket) => bucket.completed.SUCCEEDED }),
    failed: t.int({ resolve: (bucket) => bucket.completed.FAILED }),
    cancelled: t.int({ resolve: (bucket) => bucket.completed.CANCELLED }),
  }),
});

const TaskThroughputSuccess = builder.simpleObject('TaskThroughputSuccess', {
  fields: (t) => ({
    buckets: t.field({ type: [ThroughputBucketRef], description: 'Oldest first; the last one holds the present.' }),
  }),
});

const [lastMinute, last5Minutes, last15Minutes] = FINISHED_WINDOWS_MINUTES;

const QueueStatsRef = builder.objectRef<QueueStats>('QueueStats').implement({
  description: "One queue (an action of a service) of the organisation's tasks.",
  fields: (t) => ({
    service: t.exposeString('service'),
    action: t.exposeString('action'),
    pending: t.exposeInt('pending'),
    processing: t.exposeInt('processing'),
    suspended: t.exposeInt('suspended'),
    oldestPendingDate: t.expose('oldestPendingDate', {
      type: 'DateTime',
      nullable: true,
      description: 'dateCreated of its oldest PENDING task; null when none is pending.',
    }),
    finishedLastMinute: t.field({
      type: FinishedCountsRef,
      description: `Tasks whose dateCompleted is in the last ${lastMinute} minute.`,
      resolve: (queue) => queue.finished[lastMinute],
    }),
    finishedLast5Minutes: t.field({
      type: FinishedCountsRef,
      description: `Tasks whose dateCompleted is in the last ${last5Minutes} minutes.`,
      resolve: (queue) => queue.finished[last5Minutes],
    }),
    finishedLast15Minutes: t.field({
      type: FinishedCountsRef,
      description: `Tasks whose dateCompleted is in the last ${last15Minutes} minutes.`,
      resolve: (queue) => queue.finished[last15Minutes],
    }),
    finishedPerMinute: t.field({
      type: [FinishedCountsRef],
      description: `The last ${FINISHED_MINUTES} minutes, minute by minute, oldest first: always ${FINISHED_MINUTES} entries, the last one the minute up to now.`,
      resolve: (queue) => queue.finishedPerMinute,
    }),
  }),
});

builder.queryFields((t) => ({
  taskCounts: t.field({
    type: TaskCountsRef,
    description: "How many of the organisation's tasks the filter (the filter of `tasks`) selects, by state; every task without one.",
    args: { filter: t.arg({ type: TaskFilterInput }) },
    resolve: async (_root, { filter }, context) => {
      const actor = requireActor(context);
      const engineFilter = toEngineFilter(filter);
      return engineFilter === null ? NO_TASKS : context.engine.taskCounts(actor, engineFilter);
    },
  }),
  taskThroughput: t.field({
    type: TaskThroughputSuccess,
    description:
      "The organisation's tasks that ended (by dateCompleted), per bucket of bucketSeconds from `since` to now, every bucket present. " +
      `ValidationError naming the argument unless since is within the last ${throughputWindowMs / 3_600_000} hours, ` +
      `bucketSeconds from ${bucketSecondsMin} to ${bucketSecondsMax}, and they make at most ${throughputBucketsMax.toLocaleString('en')} buckets.`,
    args: {
      since: t.arg({ type: 'DateTime', required: true }),
      bucketSeconds: t.arg.int({ required: true }),
    },
    errors: { types: [ValidationError], directResult: true, union: { name: 'TaskThroughputResult' } },
    resolve: async (_root, { since, bucketSeconds }, context) => ({
      buckets: await context.engine.taskThroughput(requireActor(context), since, bucketSeconds),
    }),
  }),
  queueStats: t.field({
    type: [QueueStatsRef],
    description:
      'Each queue the organisation has PENDING, SUSPENDED or PROCESSING tasks in, or tasks that ended in the last ' +
      `${last15Minutes} minutes, by service then action.`,
    resolve: (_root, _args, context) => context.engine.queueStats(requireActor(context)),
  }),
}));
