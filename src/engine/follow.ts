import type { TaskEngine } from '../domain/api.js';
import { EventStream, queueKey, type TaskChange } from '../domain/events.js';
import { isTerminal, type Actor, type Task, type TaskFilter } from '../domain/types.js';

// Following tasks as they change, for whatever sends the changes on: a GraphQL subscription today,
// webhooks and a dashboard tomorrow. Each follower reads the database on an event (events are
// hints) and ends on its own when the actor's key is revoked or the caller stops it.

/** The last item of a follow that ended before its task did: the key was revoked, or the caller's stop signal fired. */
export const KEY_REVOKED = Symbol('key revoked');
export const STOPPED = Symbol('stopped');
export type FollowEnding = typeof KEY_REVOKED | typeof STOPPED;

/**
 * A stream that carries KEY_REVOKED if the actor's key is revoked, and STOPPED once `stop` fires:
 * whatever was pushed before (the changes a worker wrote during a shutdown's grace period) is
 * ahead of it in the stream.
 */
export function openFollowStream<T>(
  engine: Pick<TaskEngine, 'events'>,
  actor: Actor,
  stop: AbortSignal | null,
): EventStream<T | FollowEnding> {
  const stream = new EventStream<T | FollowEnding>();
  stream.onClose(engine.events.listen('keyRevoked', actor.keyId, () => stream.push(KEY_REVOKED)));
  if (stop) {
    const stopped = () => stream.push(STOPPED);
    stop.addEventListener('abort', stopped, { once: true });
    stream.onClose(() => stop.removeEventListener('abort', stopped));
    if (stop.aborted) stopped();
  }
  return stream;
}

/**
 * The generator may be suspended waiting for its next event when its consumer goes away, and an
 * async generator cannot be returned from while it waits: closing the stream first ends the wait.
 */
export function closingOnReturn<T>(
  updates: AsyncGenerator<T>,
  stream: Pick<EventStream<unknown>, 'close'>,
): AsyncIterableIterator<T> {
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

/**
 * While a queue drains, it advances on every worker turn, and each advance would cost every
 * follower a position query. Positions are recomputed at most this often per follower.
 */
export const QUEUE_POSITION_INTERVAL_MS = 250;

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

/** A task as it is now, with its 0-based queue position while PENDING (null otherwise). */
export interface TaskUpdate {
  task: Task;
  queuePosition: number | null;
}

type TaskSignal = 'taskChanged' | 'queueAdvanced';

async function positionOf(engine: Pick<TaskEngine, 'queuePositions'>, task: Task): Promise<number | null> {
  return task.state === 'PENDING' ? ((await engine.queuePositions([task.id])).get(task.id) ?? null) : null;
}

type FollowingEngine = Pick<TaskEngine, 'events' | 'getTasks' | 'queuePositions'>;

async function* taskUpdates(
  engine: FollowingEngine,
  actor: Actor,
  initial: Task,
  signals: EventStream<TaskSignal | FollowEnding>,
): AsyncGenerator<TaskUpdate | FollowEnding> {
  let stopWatchingQueue: (() => void) | null = null;
  const queueAdvanced = throttled(() => signals.push('queueAdvanced'), QUEUE_POSITION_INTERVAL_MS);
  // Other tasks leaving the queue move this one up, without any event on the task itself.
  const watchQueueWhilePending = (task: Task) => {
    if (task.state === 'PENDING' && !stopWatchingQueue) {
      const stopListening = engine.events.listen('queue', queueKey(task.service, task.type), () => queueAdvanced.request());
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
    let sentPosition = await positionOf(engine, task);
    yield { task, queuePosition: sentPosition };
    if (isTerminal(task.state)) return;

    for await (const signal of signals) {
      // A worker turn announces several changes at once (a log and the progress beside it): they
      // are buffered by now, and one fresh read answers them all.
      const received = [signal, ...signals.takeBuffered()];
      if (received.includes(KEY_REVOKED)) {
        yield KEY_REVOKED;
        return;
      }
      const changes = received.filter((update) => update !== STOPPED);
      if (changes.length > 0) {
        const [fresh] = await engine.getTasks(actor, [task.id]);
        if (!fresh) return;
        const position = await positionOf(engine, fresh);
        const onlyQueueMoved = changes.every((update) => update === 'queueAdvanced');
        if (!onlyQueueMoved || position !== sentPosition) {
          task = fresh;
          sentPosition = position;
          watchQueueWhilePending(task);
          yield { task, queuePosition: position };
          if (isTerminal(task.state)) return;
        }
      }
      if (changes.length < received.length) {
        yield STOPPED;
        return;
      }
    }
  } finally {
    signals.close();
  }
}

/**
 * The task as it is now, then again after every change to it (state, queue position, progress,
 * log, result), until a terminal state, the key's revocation (KEY_REVOKED) or `stop` (STOPPED,
 * after the changes that came before it). Null when the actor has no such task.
 */
export async function followTask(
  engine: FollowingEngine,
  actor: Actor,
  taskId: number,
  stop: AbortSignal | null,
): Promise<AsyncIterableIterator<TaskUpdate | FollowEnding> | null> {
  // Listening starts before the first read, so no change can fall between the two.
  const signals = openFollowStream<TaskSignal>(engine, actor, stop);
  signals.onClose(engine.events.listen('task', taskId, () => signals.push('taskChanged')));
  let task: Task | null | undefined;
  try {
    [task] = await engine.getTasks(actor, [taskId]);
  } catch (error) {
    signals.close();
    throw error;
  }
  if (!task) {
    signals.close();
    return null;
  }
  return closingOnReturn(taskUpdates(engine, actor, task, signals), signals);
}

/** How many PENDING tasks one follower of queue positions follows. */
export const MAX_FOLLOWED_POSITIONS = 1000;

/**
 * Follows the queue positions of the PENDING tasks it is shown, and turns the advances of their
 * queues into QUEUE_POSITION changes pushed into `changes`, throttled; it stops when `changes` closes.
 */
export function followQueuePositions(
  engine: Pick<TaskEngine, 'events' | 'queuePositions' | 'listTasks'>,
  changes: EventStream<TaskChange | FollowEnding>,
) {
  const positions = new Map<number, { organisationId: number; position: number | null }>();
  const queues = new Map<string, () => void>();
  const recompute = throttled(() => {
    void (async () => {
      const ids = [...positions.keys()];
      if (ids.length === 0 || changes.closed) return;
      const current = await engine.queuePositions(ids);
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
  const observe = (task: Task) => {
    if (task.state !== 'PENDING') {
      positions.delete(task.id);
      return;
    }
    if (positions.has(task.id) || positions.size >= MAX_FOLLOWED_POSITIONS) return;
    positions.set(task.id, { organisationId: task.organisationId, position: null });
    recompute.request();
    const queue = queueKey(task.service, task.type);
    if (!queues.has(queue)) queues.set(queue, engine.events.listen('queue', queue, () => recompute.request()));
  };
  return {
    /** The first position of a task is only recorded: the event that made it PENDING carried it. */
    observe,
    /** Tasks already PENDING when following starts move without any event of their own. */
    async observePending(actor: Actor, filter: TaskFilter): Promise<void> {
      if (filter.state?.length && !filter.state.includes('PENDING')) return;
      const pending = await engine.listTasks(actor, { ...filter, state: ['PENDING'] }, { first: MAX_FOLLOWED_POSITIONS });
      for (const task of pending.items) observe(task);
    },
  };
}
