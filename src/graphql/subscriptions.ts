import { GraphQLError } from 'graphql';
import type { ResultDelivery } from '../domain/api.js';
import { EventStream, queueKey, type TaskChange, type TaskEventKind } from '../domain/events.js';
import { matchesTaskFilter } from '../domain/task-filter.js';
import {
  isTerminal,
  type Actor,
  type Task,
  type TaskFilter,
  type TaskLog,
  type TaskResultPayload,
} from '../domain/types.js';
import { builder } from './builder.js';
import { requireActor, type GraphQLContext } from './context.js';
import { decodeId } from './ids.js';
import { TaskFilterInput, TaskLogRef, TaskRef, TaskResultPayloadRef, toEngineFilter } from './tasks.js';

/**
 * Yielded as the last message of a subscription the server ends early: the field's resolve turns
 * it into an error (UNAUTHENTICATED when the key is revoked, SHUTTING_DOWN when the server stops),
 * and the stream completes after it.
 */
const KEY_REVOKED = Symbol('key revoked');
const SHUTTING_DOWN = Symbol('shutting down');
type Ending = typeof KEY_REVOKED | typeof SHUTTING_DOWN;

function failOnEnding<T>(update: T | Ending): T {
  if (update === KEY_REVOKED) {
    throw new GraphQLError('The API key was revoked', { extensions: { code: 'UNAUTHENTICATED' } });
  }
  if (update === SHUTTING_DOWN) {
    throw new GraphQLError('The server is shutting down; subscribe again once it is back', {
      extensions: { code: 'SHUTTING_DOWN' },
    });
  }
  return update;
}

/**
 * A stream that carries KEY_REVOKED if the actor's key is revoked, and SHUTTING_DOWN once the
 * server closes its subscriptions: by then the worker has written what it did during the grace
 * period, and those events are ahead of it in the stream.
 */
function openStream<T>(context: GraphQLContext, actor: Actor): EventStream<T | Ending> {
  const stream = new EventStream<T | Ending>();
  stream.onClose(context.engine.events.listen('keyRevoked', actor.keyId, () => stream.push(KEY_REVOKED)));
  const { shutdownSignal } = context;
  const shuttingDown = () => stream.push(SHUTTING_DOWN);
  shutdownSignal.addEventListener('abort', shuttingDown, { once: true });
  stream.onClose(() => shutdownSignal.removeEventListener('abort', shuttingDown));
  if (shutdownSignal.aborted) shuttingDown();
  return stream;
}

/**
 * The generator may be suspended waiting for its next event when the client goes away, and an
 * async generator cannot be returned from while it waits: closing the stream first ends the wait.
 */
function closingOnReturn<T>(updates: AsyncGenerator<T>, stream: Pick<EventStream<unknown>, 'close'>): AsyncIterableIterator<T> {
  return {
    next: () => updates.next(),
    return: (value?: unknown) => {
      stream.close();
      return updates.return(value as never);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

type TaskSignal = 'taskChanged' | 'queueAdvanced';

/**
 * While a queue drains, it advances on every worker turn, and each advance would cost every
 * subscriber a position query. Positions are recomputed at most this often per subscription.
 */
const QUEUE_POSITION_INTERVAL_MS = 250;

/** Runs `action` at once, then at most once per `intervalMs` however often it is asked. */
function throttled(action: () => void, intervalMs: number): { request(): void; cancel(): void } {
  let coolingUntil = 0;
  let timer: NodeJS.Timeout | null = null;
  return {
    request() {
      if (timer) return;
      const wait = coolingUntil - Date.now();
      if (wait <= 0) {
        coolingUntil = Date.now() + intervalMs;
        action();
        return;
      }
      timer = setTimeout(() => {
        timer = null;
        coolingUntil = Date.now() + intervalMs;
        action();
      }, wait);
    },
    cancel() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

function taskNotFound(id: string): GraphQLError {
  return new GraphQLError(`No task ${id}`, { extensions: { code: 'NOT_FOUND' } });
}

function positionOf(context: GraphQLContext, task: Task): Promise<number | null> {
  return task.state === 'PENDING' ? context.loaders.queuePositions.load(task.id) : Promise.resolve(null);
}

async function* followTask(
  context: GraphQLContext,
  initial: Task,
  signals: EventStream<TaskSignal | Ending>,
): AsyncGenerator<Task | Ending> {
  let stopWatchingQueue: (() => void) | null = null;
  const queueAdvanced = throttled(() => signals.push('queueAdvanced'), QUEUE_POSITION_INTERVAL_MS);
  // Other tasks leaving the queue move this one up, without any event on the task itself.
  const watchQueueWhilePending = (task: Task) => {
    if (task.state === 'PENDING' && !stopWatchingQueue) {
      const stopListening = context.engine.events.listen('queue', queueKey(task.service, task.type), () =>
        queueAdvanced.request(),
      );
      stopWatchingQueue = () => {
        stopListening();
        queueAdvanced.cancel();
      };
    } else if (task.state !== 'PENDING' && stopWatchingQueue) {
      stopWatchingQueue();
      stopWatchingQueue = null;
    }
  };
  signals.onClose(() => stopWatchingQueue?.());

  try {
    let task = initial;
    watchQueueWhilePending(task);
    // Loaded through the request's loader, so the queuePosition field sends this very value.
    let sentPosition = await positionOf(context, task);
    yield task;
    if (isTerminal(task.state)) return;

    for await (const signal of signals) {
      // A worker turn announces several changes at once (a log and the progress beside it): they
      // are buffered by now, and one fresh read answers them all.
      const received = [signal, ...signals.takeBuffered()];
      if (received.includes(KEY_REVOKED)) {
        yield KEY_REVOKED;
        return;
      }
      const changes = received.filter((update) => update !== SHUTTING_DOWN);
      if (changes.length > 0) {
        context.refreshLoaders();
        const fresh = await context.loaders.tasks.load(task.id);
        if (!fresh) return;
        const position = await positionOf(context, fresh);
        const onlyQueueMoved = changes.every((update) => update === 'queueAdvanced');
        if (!onlyQueueMoved || position !== sentPosition) {
          task = fresh;
          sentPosition = position;
          watchQueueWhilePending(task);
          yield task;
          if (isTerminal(task.state)) return;
        }
      }
      if (changes.length < received.length) {
        yield SHUTTING_DOWN;
        return;
      }
    }
  } finally {
    signals.close();
  }
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

/** How many PENDING tasks one taskEvents subscription follows for QUEUE_POSITION events. */
const MAX_FOLLOWED_POSITIONS = 1000;

/**
 * Follows the queue positions of the PENDING tasks a taskEvents subscription has seen, and turns
 * the advances of their queues into QUEUE_POSITION changes, throttled.
 */
function followQueuePositions(context: GraphQLContext, changes: EventStream<TaskChange | Ending>) {
  const positions = new Map<number, { organisationId: number; position: number | null }>();
  const queues = new Map<string, () => void>();
  const recompute = throttled(() => {
    void (async () => {
      const ids = [...positions.keys()];
      if (ids.length === 0 || changes.closed) return;
      const current = await context.engine.queuePositions(ids);
      const at = new Date();
      for (const [taskId, followed] of positions) {
        const position = current.get(taskId) ?? null;
        if (position === null) {
          positions.delete(taskId);
        } else if (followed.position === null) {
          followed.position = position;
        } else if (position !== followed.position) {
          followed.position = position;
          changes.push({ kind: 'QUEUE_POSITION', taskId, organisationId: followed.organisationId, at });
        }
      }
    })().catch(() => {});
  }, QUEUE_POSITION_INTERVAL_MS);
  changes.onClose(() => {
    recompute.cancel();
    for (const stop of queues.values()) stop();
  });
  return {
    /** The first position of a task is only recorded: the event that made it PENDING carried it. */
    observe(task: Task) {
      if (task.state !== 'PENDING') {
        positions.delete(task.id);
        return;
      }
      if (positions.has(task.id) || positions.size >= MAX_FOLLOWED_POSITIONS) return;
      positions.set(task.id, { organisationId: task.organisationId, position: null });
      recompute.request();
      const queue = queueKey(task.service, task.type);
      if (!queues.has(queue)) queues.set(queue, context.engine.events.listen('queue', queue, () => recompute.request()));
    },
  };
}

async function* matchingEvents(
  context: GraphQLContext,
  filter: TaskFilter,
  changes: EventStream<TaskChange | Ending>,
): AsyncGenerator<TaskEvent | Ending> {
  const queuePositions = followQueuePositions(context, changes);
  let unconfirmed: ResultDelivery | null = null;
  try {
    if (!filter.state?.length || filter.state.includes('PENDING')) {
      const alreadyPending = await context.engine.listTasks(
        requireActor(context),
        { ...filter, state: ['PENDING'] },
        { first: MAX_FOLLOWED_POSITIONS },
      );
      for (const task of alreadyPending.items) queuePositions.observe(task);
    }
    for await (const change of changes) {
      if (change === KEY_REVOKED || change === SHUTTING_DOWN) {
        yield change;
        return;
      }
      context.refreshLoaders();
      const task = await context.loaders.tasks.load(change.taskId);
      if (!task || !matchesTaskFilter(task, filter)) continue;
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
  values: ['CREATED', 'STATE_CHANGED', 'PROGRESS', 'LOG', 'RESULT', 'QUEUE_POSITION'] as const,
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

builder.subscriptionFields((t) => ({
  taskUpdated: t.field({
    type: TaskRef,
    description:
      'The task as it is now, then again after every change (state, queue position, progress, log, result); completes after a terminal state. ' +
      'While the server shuts down, changes keep coming during its grace period; a task still running then goes back to the queue (PENDING), ' +
      'and the last message is an error with extensions.code SHUTTING_DOWN before the stream completes (over graphql-ws the socket then closes with 1001). ' +
      'A revoked key ends it the same way, with UNAUTHENTICATED.',
    args: { id: t.arg.id({ required: true }) },
    subscribe: async (_root, { id }, context) => {
      const actor = requireActor(context);
      const taskId = decodeId(String(id), 'Task');
      if (taskId === null) throw taskNotFound(String(id));
      // Listening starts before the first read, so no change can fall between the two.
      const signals = openStream<TaskSignal>(context, actor);
      signals.onClose(context.engine.events.listen('task', taskId, () => signals.push('taskChanged')));
      const task = await context.loaders.tasks.load(taskId);
      if (!task) {
        signals.close();
        throw taskNotFound(String(id));
      }
      return closingOnReturn(followTask(context, task, signals), signals);
    },
    resolve: (update) => failOnEnding(update),
  }),
  taskEvents: t.field({
    type: TaskEventRef,
    description:
      "Every change to the organisation's tasks that match the filter, until the client stops. " +
      'Changes keep coming during a shutdown\'s grace period; then the last message is an error with extensions.code SHUTTING_DOWN ' +
      'before the stream completes (over graphql-ws the socket then closes with 1001). A revoked key ends it with UNAUTHENTICATED.',
    args: { filter: t.arg({ type: TaskFilterInput }) },
    subscribe: (_root, { filter }, context) => {
      const actor = requireActor(context);
      const changes = openStream<TaskChange>(context, actor);
      const engineFilter = toEngineFilter(filter);
      // A filter naming a key or account that cannot exist matches nothing; only revocation and
      // shutdown can still end the subscription.
      if (engineFilter !== null) {
        changes.onClose(
          context.engine.events.listen('organisation', actor.organisationId, (change) => changes.push(change)),
        );
      }
      return closingOnReturn(matchingEvents(context, engineFilter ?? {}, changes), changes);
    },
    resolve: (event) => failOnEnding(event),
  }),
}));
