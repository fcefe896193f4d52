import DataLoader from 'dataloader';
import { MAX_BULK_TASKS, MAX_RETRIES_PER_TASK, type BulkOutcome } from '../domain/api.js';
import { ConflictError, LimitExceededError, NotFoundError, requireAdmin, ValidationError } from '../domain/errors.js';
import type { TaskRetry } from '../domain/types.js';
import { builder, type GraphQLContext } from './builder.js';
import { requireActor } from './context.js';
import { decodeId } from './ids.js';
import { ApiKeyRef } from './keys.js';
import { loadExisting, TaskErrorRef, TaskFilterInput, TaskRef, TaskStateEnum, toEngineFilter } from './tasks.js';

// Retry of one task and the bulk operations over a TaskFilter. A retry puts the task back in its
// queue in place: same id, so subscriptions, polls, idempotency keys and dependents' edges keep
// working; the runs it had before are kept in retryHistory.

const TaskRetryRef = builder.objectRef<TaskRetry>('TaskRetry').implement({
  description: 'How one run of a task ended, before retryTask or retryTasks put the task back in its queue.',
  fields: (t) => ({
    state: t.expose('state', { type: TaskStateEnum, description: 'FAILED or CANCELLED.' }),
    error: t.expose('error', { type: TaskErrorRef, nullable: true }),
    attempts: t.exposeInt('attempts', { description: "Attempts made when the run ended, counted from the task's first." }),
    dateStarted: t.expose('dateStarted', { type: 'DateTime', nullable: true }),
    dateCompleted: t.expose('dateCompleted', { type: 'DateTime' }),
    dateRetried: t.expose('dateRetried', { type: 'DateTime' }),
    retriedBy: t.field({
      type: ApiKeyRef,
      description: 'The key that asked for the retry; for a dependent that came back with a task, the key that retried that one.',
      resolve: (retry, _args, context) => loadExisting(context.loaders.apiKeys.load(retry.keyId), 'ApiKey', retry.keyId),
    }),
  }),
});

// One read for the retryHistory of every task of a response, as the context's loaders do.
const retryLoaders = new WeakMap<GraphQLContext, DataLoader<number, TaskRetry[]>>();
function retryLoader(context: GraphQLContext): DataLoader<number, TaskRetry[]> {
  let loader = retryLoaders.get(context);
  if (!loader) {
    loader = new DataLoader(async (ids) => {
      const byTask = await context.engine.taskRetries(ids);
      return ids.map((id) => byTask.get(id) ?? []);
    });
    retryLoaders.set(context, loader);
  }
  return loader;
}

builder.objectFields(TaskRef, (t) => ({
  retries: t.exposeInt('retries', {
    description:
      'Times the task was put back in its queue after it ended (retryTask, retryTasks, or as a dependent of a task retried). ' +
      '`attempts` and `maxAttempts` count over every run: a retry raises maxAttempts to the attempts made plus the budget the task was submitted with.',
  }),
  retryHistory: t.field({
    type: [TaskRetryRef],
    description: `The runs before each retry, oldest first; at most ${MAX_RETRIES_PER_TASK}, the most retries a task may have.`,
    resolve: (task, _args, context) => (task.retries === 0 ? [] : retryLoader(context).load(task.id)),
  }),
}));

const RetryTaskSuccess = builder.simpleObject('RetryTaskSuccess', {
  fields: (t) => ({ task: t.field({ type: TaskRef }) }),
});

const CancelTasksSuccess = builder.simpleObject('CancelTasksSuccess', {
  description: 'How many tasks cancelTasks cancelled.',
  fields: (t) => ({
    count: t.int({
      description: 'Tasks of the filter cancelled at once (PENDING, SUSPENDED) or told to stop (PROCESSING).',
    }),
    dependents: t.int({ description: 'Their SUSPENDED dependents, which failed with DEPENDENCY_FAILED.' }),
  }),
});

const RetryTasksSuccess = builder.simpleObject('RetryTasksSuccess', {
  description: 'How many tasks retryTasks put back in their queues.',
  fields: (t) => ({
    count: t.int({ description: 'Tasks of the filter put back in their queues.' }),
    dependents: t.int({ description: 'Their DEPENDENCY_FAILED dependents, which came back SUSPENDED with them.' }),
  }),
});

const bulkArgs = (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0]) => ({
  filter: t.arg({ type: TaskFilterInput, required: true }),
  limit: t.arg.int({
    description: `How many of the filter's tasks, newest first, it takes (default and at most ${MAX_BULK_TASKS.toLocaleString('en')}).`,
  }),
});

/** A filter naming a key or account by an id that cannot exist: the role is checked as for any other. */
function nothingMatches(actor: Parameters<typeof requireAdmin>[0]): BulkOutcome {
  requireAdmin(actor);
  return { count: 0, dependents: 0 };
}

builder.mutationFields((t) => ({
  retryTask: t.field({
    type: RetryTaskSuccess,
    description:
      'Puts a FAILED or CANCELLED task back in its queue in place (same id) with a new attempt budget; its earlier runs stay in retryHistory, ' +
      'its logs and results stay, and its dependents that failed with DEPENDENCY_FAILED come back SUSPENDED. ' +
      'It goes back SUSPENDED when a task it depends on has not yet succeeded; ConflictError NOT_RETRYABLE when one ended FAILED or CANCELLED ' +
      '(retry that one), for a task in another state, for a real-time call, and after ' +
      `${MAX_RETRIES_PER_TASK} retries. A key whose permissions do not cover the task's action and params gets FORBIDDEN.`,
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError, ConflictError], directResult: true, union: { name: 'RetryTaskResult' } },
    resolve: async (_root, { id }, context) => {
      const taskId = decodeId(String(id), 'Task');
      if (taskId === null) throw new NotFoundError(`No task ${id}`);
      return { task: await context.engine.retryTask(requireActor(context), taskId) };
    },
  }),
  cancelTasks: t.field({
    type: CancelTasksSuccess,
    description:
      'cancelTask for the PENDING, SUSPENDED and PROCESSING tasks among the newest `limit` of the filter (the filter of `tasks`), ' +
      'in batches, each its own transaction. Needs an ADMIN key. Tasks that have ended are left as they are.',
    args: bulkArgs(t),
    errors: { types: [ValidationError, LimitExceededError], directResult: true, union: { name: 'CancelTasksResult' } },
    resolve: async (_root, { filter, limit }, context) => {
      const actor = requireActor(context);
      const engineFilter = toEngineFilter(filter);
      if (engineFilter === null) return nothingMatches(actor);
      return context.engine.cancelTasks(actor, engineFilter, limit ?? null);
    },
  }),
  retryTasks: t.field({
    type: RetryTasksSuccess,
    description:
      'retryTask for the FAILED and CANCELLED tasks among the newest `limit` of the filter (the filter of `tasks`), in batches, ' +
      "each its own transaction. Needs an ADMIN key. Tasks retryTask would refuse, and those beyond the key's permissions, are left as they are.",
    args: bulkArgs(t),
    errors: { types: [ValidationError, LimitExceededError], directResult: true, union: { name: 'RetryTasksResult' } },
    resolve: async (_root, { filter, limit }, context) => {
      const actor = requireActor(context);
      const engineFilter = toEngineFilter(filter);
      if (engineFilter === null) return nothingMatches(actor);
      return context.engine.retryTasks(actor, engineFilter, limit ?? null);
    },
  }),
}));
