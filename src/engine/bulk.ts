import type { Catalog } from '../catalog/index.js';
import { MAX_BULK_TASKS, MAX_RETRIES_PER_TASK, type BulkOutcome } from '../domain/api.js';
import { ConflictError, ForbiddenError, LimitExceededError, NotFoundError, requireAdmin, ValidationError } from '../domain/errors.js';
import type { PubSub } from '../domain/events.js';
import {
  CANCELLABLE_STATES,
  RETRYABLE_STATES,
  type Actor,
  type Task,
  type TaskFilter,
  type TaskState,
} from '../domain/types.js';
import type { QueueStore, RecordStore } from '../storage/contract.js';
import { publishChanges } from './publish.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface BulkDependencies {
  queue: QueueStore;
  records: RecordStore;
  catalog: Catalog;
  events: PubSub;
}

/** The filter's states that the operation acts on: all of `acting` when the filter names none. */
function narrowedStates(filter: TaskFilter, acting: readonly TaskState[]): TaskState[] {
  const asked = filter.state && filter.state.length > 0 ? filter.state : acting;
  return acting.filter((state) => asked.includes(state));
}

function checkedLimit(limit: number | null): number {
  if (limit === null) return MAX_BULK_TASKS;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('INVALID', 'limit must be a positive integer', 'limit');
  if (limit > MAX_BULK_TASKS) throw new LimitExceededError(`limit is at most ${MAX_BULK_TASKS}; got ${limit}`, MAX_BULK_TASKS);
  return limit;
}

/**
 * Whether the key may run the task again: a retry runs the task's action with its params, which a
 * key narrowed by permissions must not do for an action or parameter value it could not submit.
 */
function mayRun(catalog: Catalog, actor: Actor, task: Task): boolean {
  const permissions = actor.permissions ?? null;
  if (permissions === null) return true;
  const action = catalog.action(task.service, task.type);
  if (!action || !catalog.allows(permissions, task.service, task.type)) return false;
  return catalog.checkParams(action, task.params, catalog.permissions(task.service, action, permissions)).ok;
}

/**
 * Up to `limit` tasks of the filter, newest first, handed to `apply` a batch at a time (the
 * store's bulkBatchSize): each batch is one transaction, and the event loop runs between them.
 */
async function inBatches(
  { queue, records }: Pick<BulkDependencies, 'queue' | 'records'>,
  actor: Actor,
  filter: TaskFilter,
  limit: number,
  apply: (tasks: Task[]) => Promise<BulkOutcome>,
): Promise<BulkOutcome> {
  const outcome: BulkOutcome = { count: 0, dependents: 0 };
  let seen = 0;
  let afterId: number | null = null;
  while (seen < limit) {
    const first = Math.min(queue.bulkBatchSize, limit - seen);
    const page = await records.listTasks(actor.organisationId, filter, { first, afterId });
    if (page.items.length === 0) break;
    seen += page.items.length;
    const done = await apply(page.items);
    outcome.count += done.count;
    outcome.dependents += done.dependents;
    if (!page.hasNextPage) break;
    afterId = page.items.at(-1)!.id;
    await nextTurn();
  }
  return outcome;
}

export async function cancelTasks(
  { queue, records, events }: BulkDependencies,
  actor: Actor,
  filter: TaskFilter,
  limit: number | null,
): Promise<BulkOutcome> {
  requireAdmin(actor);
  const wanted = checkedLimit(limit);
  const state = narrowedStates(filter, CANCELLABLE_STATES);
  if (state.length === 0) return { count: 0, dependents: 0 };
  return inBatches({ queue, records }, actor, { ...filter, state }, wanted, async (tasks) => {
    const result = await queue.cancelMany(
      actor.organisationId,
      tasks.map((task) => task.id),
      Date.now(),
    );
    for (const task of result.requested) events.publish('cancelRequested', task.id, { taskId: task.id });
    publishChanges(events, result.changed, 'STATE_CHANGED');
    return {
      count: result.cancelled.length + result.requested.length,
      dependents: result.changed.length - result.cancelled.length,
    };
  });
}

function retryable(task: Task): boolean {
  return (RETRYABLE_STATES as readonly TaskState[]).includes(task.state) && task.execution === 'ASYNCHRONOUS' && task.retries < MAX_RETRIES_PER_TASK;
}

export async function retryTasks(
  { queue, records, catalog, events }: BulkDependencies,
  actor: Actor,
  filter: TaskFilter,
  limit: number | null,
): Promise<BulkOutcome> {
  requireAdmin(actor);
  const wanted = checkedLimit(limit);
  const state = narrowedStates(filter, RETRYABLE_STATES);
  if (state.length === 0) return { count: 0, dependents: 0 };
  return inBatches({ queue, records }, actor, { ...filter, state }, wanted, async (tasks) => {
    const ids = tasks.filter((task) => retryable(task) && mayRun(catalog, actor, task)).map((task) => task.id);
    if (ids.length === 0) return { count: 0, dependents: 0 };
    const result = await queue.retry(actor.organisationId, actor.keyId, ids, Date.now());
    publishChanges(events, result.changed, 'STATE_CHANGED');
    return { count: result.retried.length, dependents: result.changed.length - result.retried.length };
  });
}

/** Why a task cannot be retried, or null when it can as far as its own row says. */
function notRetryable(task: Task): ConflictError | null {
  if (!(RETRYABLE_STATES as readonly TaskState[]).includes(task.state)) {
    return new ConflictError('NOT_RETRYABLE', `the task is ${task.state}: only FAILED and CANCELLED tasks can be retried`);
  }
  if (task.execution !== 'ASYNCHRONOUS') {
    return new ConflictError('NOT_RETRYABLE', 'a real-time call is not queued: call its execution URL again');
  }
  if (task.retries >= MAX_RETRIES_PER_TASK) {
    return new ConflictError('NOT_RETRYABLE', `the task has been retried ${MAX_RETRIES_PER_TASK} times, the most a task may be`);
  }
  return null;
}

export async function retryTask({ queue, records, catalog, events }: BulkDependencies, actor: Actor, taskId: number): Promise<Task> {
  const notFound = () => new NotFoundError('no task', { typename: 'Task', id: taskId });
  const [task] = await records.getTasks(actor.organisationId, [taskId]);
  if (!task) throw notFound();
  const refused = notRetryable(task);
  if (refused) throw refused;
  if (!mayRun(catalog, actor, task)) {
    throw new ForbiddenError(`This key may not run ${task.service}.${task.type} with these params, so it may not retry the task.`);
  }
  const result = await queue.retry(actor.organisationId, actor.keyId, [taskId], Date.now());
  const retried = result.retried[0];
  if (!retried) {
    // Changed since it was read (retried or deleted meanwhile), or a dependency of it ended unsucceeded.
    const [current] = await records.getTasks(actor.organisationId, [taskId]);
    if (!current) throw notFound();
    throw (
      notRetryable(current) ??
      new ConflictError('NOT_RETRYABLE', 'a task it depends on ended FAILED or CANCELLED: retry that one first')
    );
  }
  publishChanges(events, result.changed, 'STATE_CHANGED');
  return retried;
}
