import { GraphQLError } from 'graphql';
import type { ResultDelivery } from '../domain/api.js';
import { MAX_BUFFERED_EVENTS, TASK_EVENT_KINDS, type EventStream, type TaskChange, type TaskEventKind } from '../domain/events.js';
import { matchesTaskFilter } from '../domain/task-filter.js';
import type { Task, TaskFilter, TaskLog, TaskResultPayload } from '../domain/types.js';
import {
  arrivalOf,
  closingOnReturn,
  followQueuePositions,
  followTask,
  KEY_REVOKED,
  openFollowStream,
  readTaskAfter,
  SLOW_CONSUMER,
  STOPPED,
  type FollowEnding,
} from '../engine/follow.js';
import { builder } from './builder.js';
import { requireActor, type GraphQLContext } from './context.js';
import { decodeId } from './ids.js';
import { TaskFilterInput, TaskLogRef, TaskRef, TaskResultPayloadRef, toEngineFilter } from './tasks.js';

function failOnEnding<T>(update: T | FollowEnding): T {
  if (update === KEY_REVOKED) {
    throw new GraphQLError('The API key was revoked', { extensions: { code: 'UNAUTHENTICATED' } });
  }
  // The subscriptions are stopped by the server's shutdown signal, and by nothing else.
  if (update === STOPPED) {
    throw new GraphQLError('The server is shutting down; subscribe again once it is back', {
      extensions: { code: 'SHUTTING_DOWN' },
    });
  }
  if (update === SLOW_CONSUMER) {
    throw new GraphQLError(
      `This subscription fell ${MAX_BUFFERED_EVENTS.toLocaleString('en')} events behind and was ended: read its messages as they come, then subscribe again`,
      { extensions: { code: 'SLOW_CONSUMER', limit: MAX_BUFFERED_EVENTS } },
    );
  }
  return update;
}

function taskNotFound(id: string): GraphQLError {
  return new GraphQLError(`No task ${id}`, { extensions: { code: 'NOT_FOUND' } });
}

interface TaskEvent {
  kind: TaskEventKind;
  task: Task;
  log: TaskLog | null;
  result: TaskResultPayload | null;
  at: Date;
}

/** On the CHANNEL protocol a result is pushed once, to whichever subscriber claims it first. */
async function claimDelivery(context: GraphQLContext, task: Task, change: TaskChange): Promise<ResultDelivery | null> {
  if (change.kind !== 'RESULT' || change.resultId == null || task.retrievalProtocol !== 'CHANNEL') return null;
  return context.engine.claimResultDelivery(change.resultId);
}

/** The line a LOG change announces: in the change when this process wrote it, else read by its id. */
async function logOf(context: GraphQLContext, task: Task, change: TaskChange): Promise<TaskLog | null> {
  if (change.kind !== 'LOG') return null;
  if (change.log) return change.log;
  if (change.logId == null) return null;
  const [log] = await context.engine.getLogs([change.logId]);
  return log?.taskId === task.id ? log : null;
}

async function* matchingEvents(
  context: GraphQLContext,
  filter: TaskFilter,
  changes: EventStream<TaskChange | FollowEnding>,
): AsyncGenerator<TaskEvent | FollowEnding> {
  const queuePositions = followQueuePositions(context.engine, changes);
  let unconfirmed: ResultDelivery | null = null;
  try {
    const actor = requireActor(context);
    await queuePositions.observePending(actor, filter);
    for await (const change of changes) {
      if (change === KEY_REVOKED || change === STOPPED || change === SLOW_CONSUMER) {
        yield change;
        return;
      }
      context.refreshLoaders();
      const task = await readTaskAfter(context.engine, actor, change.taskId, arrivalOf(change));
      if (!task || !matchesTaskFilter(task, filter)) continue;
      context.loaders.tasks.prime(task.id, task);
      queuePositions.observe(task);
      const log = await logOf(context, task, change);
      const delivery = await claimDelivery(context, task, change);
      unconfirmed = delivery;
      yield { kind: change.kind, task, log, result: delivery?.payload ?? null, at: change.at };
      // Resumed: the transport asks for the next message, so it has taken this one; graphql-ws asks
      // once its send completed, yoga's SSE as it dequeues the message, before writing it.
      unconfirmed = null;
      if (delivery) {
        if (!(await context.connectionFlushed())) {
          await delivery.release();
          return;
        }
        await delivery.confirm();
      }
    }
  } finally {
    changes.close();
    // A failed release leaves the claim behind, which only keeps other subscribers from sending
    // the payload: retrieveResults still returns it.
    await (unconfirmed as ResultDelivery | null)?.release().catch(() => {});
  }
}

const TaskEventKindEnum = builder.enumType('TaskEventKind', {
  values: TASK_EVENT_KINDS,
});

const TaskEventRef = builder.objectRef<TaskEvent>('TaskEvent').implement({
  fields: (t) => ({
    kind: t.expose('kind', { type: TaskEventKindEnum }),
    task: t.field({ type: TaskRef, resolve: (event) => event.task }),
    log: t.expose('log', { type: TaskLogRef, nullable: true, description: 'For LOG.' }),
    result: t.expose('result', {
      type: TaskResultPayloadRef,
      nullable: true,
      description:
        'For RESULT on a CHANNEL task: the payload, sent to one subscriber only. It counts as delivered, and is dropped, ' +
        'once this message has been written to the connection; if the subscription ends first, retrieveResults returns it.',
    }),
    at: t.expose('at', {
      type: 'DateTime',
      description:
        'When the server announced the change: a stream’s events arrive in the order of `at`. A log line also carries the time it was written, in `log.timestamp`.',
    }),
  }),
});

const SLOW_CONSUMER_DESCRIPTION =
  `A client that leaves ${MAX_BUFFERED_EVENTS.toLocaleString('en')} changes unread (it stopped reading its connection) gets a last error ` +
  'with extensions.code SLOW_CONSUMER and the stream completes: the changes in between are not sent; subscribe again and read the task afresh.';

builder.subscriptionFields((t) => ({
  taskUpdated: t.field({
    type: TaskRef,
    description:
      'The task as it is now, then again after every change (state, queue position, progress, log, result); completes after a terminal state. ' +
      'While the server shuts down, changes keep coming during its grace period; a task still running then goes back to the queue (PENDING), ' +
      'and the last message is an error with extensions.code SHUTTING_DOWN before the stream completes (over graphql-ws the socket then closes with 1001). ' +
      'A revoked key ends it the same way, with UNAUTHENTICATED. ' +
      SLOW_CONSUMER_DESCRIPTION,
    args: { id: t.arg.id({ required: true }) },
    subscribe: async (_root, { id }, context) => {
      const actor = requireActor(context);
      const taskId = decodeId(String(id), 'Task');
      if (taskId === null) throw taskNotFound(String(id));
      const updates = await followTask(context.engine, actor, taskId, context.shutdownSignal);
      if (!updates) throw taskNotFound(String(id));
      return updates;
    },
    resolve: (update, _args, context) => {
      const { task, queuePosition } = failOnEnding(update);
      // The task's fields answer from this very read (queuePosition included); what they load
      // besides (logs, results) is read fresh, not taken from an earlier message.
      context.refreshLoaders();
      context.loaders.tasks.prime(task.id, task);
      context.loaders.queuePositions.prime(task.id, queuePosition);
      return task;
    },
  }),
  taskEvents: t.field({
    type: TaskEventRef,
    description:
      "Every change to the organisation's tasks that match the filter, until the client stops. " +
      'Changes keep coming during a shutdown\'s grace period; then the last message is an error with extensions.code SHUTTING_DOWN ' +
      'before the stream completes (over graphql-ws the socket then closes with 1001). A revoked key ends it with UNAUTHENTICATED. ' +
      SLOW_CONSUMER_DESCRIPTION,
    args: { filter: t.arg({ type: TaskFilterInput }) },
    subscribe: (_root, { filter }, context) => {
      const actor = requireActor(context);
      const changes = openFollowStream<TaskChange>(context.engine, actor, context.shutdownSignal);
      const engineFilter = toEngineFilter(filter);
      // A filter naming a key or account that cannot exist matches nothing; only revocation and
      // shutdown can still end the subscription.
      if (engineFilter !== null) {
        changes.onClose(
          context.engine.events.listen('organisation', actor.organisationId, (change) => {
            arrivalOf(change);
            changes.push(change);
          }),
        );
      }
      return closingOnReturn(matchingEvents(context, engineFilter ?? {}, changes), changes);
    },
    resolve: (event) => failOnEnding(event),
  }),
}));
