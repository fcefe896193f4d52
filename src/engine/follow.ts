import type { TaskEngine } from '../domain/api.js';
import { EventStream, queueKey, type TaskChange } from '../domain/events.js';
import { isTerminal, type Actor, type Task, type TaskFilter } from '../domain/types.js';

// Following tasks as they change, for whatever sends the changes on: a GraphQL subscription today,
// webhooks and a dashboard tomorrow. Each follower reads the database on an event (events are
// hints) and ends on its own when the actor's key is revoked or the caller stops it.

/**
 * The last item of a follow that ended before its task did: the key was revoked, the caller's
 * stop signal fired, or the consumer left MAX_BUFFERED_EVENTS (src/domain/events.ts) untaken.
 */
export const KEY_REVOKED = Symbol('key revoked');
export const STOPPED = Symbol('stopped');
export const SLOW_CONSUMER = Symbol('slow consumer');
export type FollowEnding = typeof KEY_REVOKED | typeof STOPPED | typeof SLOW_CONSUMER;

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
  const stream = new EventStream<T | FollowEnding>({ overflow: SLOW_CONSUMER });
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

type TaskSignal = TaskChange | 'queueAdvanced';

async function positionOf(engine: Pick<TaskEngine, 'queuePositions'>, task: Task): Promise<number | null> {
  return task.state === 'PENDING' ? ((await engine.queuePositions([task.id])).get(task.id) ?? null) : null;
}

type FollowingEngine = Pick<TaskEngine, 'events' | 'getTasks' | 'queuePositions' | 'taskLogs' | 'taskResults'>;

/**
 * What the last update was read from. `logsThrough` and `resultsThrough` are ids up to which every
 * log line and result of the task existed when it was read (null when not known): an update was
 * sent after those, and whatever sends it on reads the logs and results it shows later still.
 */
interface Sent {
  task: Task;
  queuePosition: number | null;
  logsThrough: number | null;
  resultsThrough: number | null;
}

/** Null when the change does not say which line or result it announces. */
function announcedIds(changes: readonly TaskSignal[], kind: 'LOG' | 'RESULT'): (number | null)[] {
  return changes.flatMap((change) =>
    change !== 'queueAdvanced' && change.kind === kind ? [(kind === 'LOG' ? (change.logId ?? change.log?.id) : change.resultId) ?? null] : [],
  );
}

function newest(ids: readonly (number | null)[]): number | null {
  const known = ids.filter((id) => id !== null);
  return known.length > 0 ? Math.max(...known) : null;
}

function coveredBy(ids: readonly (number | null)[], through: number | null): boolean {
  return ids.every((id) => id !== null && through !== null && id <= through);
}

// A task's lines and results are written one after the other by the worker running it, so every
// id up to the newest one read existed then. The announced lines existed before their event was sent.
async function logsThrough(engine: FollowingEngine, taskId: number, announced: number | null): Promise<number | null> {
  const after = announced ?? 0;
  const logs = (await engine.taskLogs([taskId], null, { first: 100, afterId: after })).get(taskId)?.items ?? [];
  return logs.length > 0 ? logs[logs.length - 1]!.id : announced;
}

async function resultsThrough(engine: FollowingEngine, taskId: number): Promise<number | null> {
  return newest(((await engine.taskResults([taskId])).get(taskId) ?? []).map((result) => result.id));
}

// Dates and nested objects compare by value; a task read twice serialises the same when nothing changed.
function sameTask(a: Task, b: Task): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

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
    watchQueueWhilePending(initial);
    let sent: Sent = { task: initial, queuePosition: await positionOf(engine, initial), logsThrough: null, resultsThrough: null };
    yield { task: initial, queuePosition: sent.queuePosition };
    if (isTerminal(initial.state)) return;

    for await (const signal of signals) {
      // A worker turn announces several changes at once (a log and the progress beside it): they
      // are buffered by now, and one fresh read answers them all.
      const received = [signal, ...signals.takeBuffered()];
      const ending = received.find((update): update is FollowEnding => update === KEY_REVOKED || update === SLOW_CONSUMER);
      if (ending) {
        yield ending;
        return;
      }
      const changes = received.filter((update): update is TaskSignal => update !== STOPPED);
      if (changes.length > 0) {
        const [fresh] = await engine.getTasks(actor, [initial.id]);
        if (!fresh) return;
        const logs = announcedIds(changes, 'LOG');
        const results = announcedIds(changes, 'RESULT');
        const [queuePosition, logsNow, resultsNow] = await Promise.all([
          positionOf(engine, fresh),
          logs.length > 0 ? logsThrough(engine, fresh.id, newest(logs)) : sent.logsThrough,
          results.length > 0 ? resultsThrough(engine, fresh.id) : sent.resultsThrough,
        ]);
        const onlyQueueMoved = changes.every((update) => update === 'queueAdvanced');
        // A slow read can take in the changes of the next worker turn, whose events then come in
        // after it: read again, the task is the one already sent, and so are the announced lines.
        const alreadySent =
          queuePosition === sent.queuePosition &&
          (onlyQueueMoved ||
            (sameTask(fresh, sent.task) && coveredBy(logs, sent.logsThrough) && coveredBy(results, sent.resultsThrough)));
        if (!alreadySent) {
          sent = { task: fresh, queuePosition, logsThrough: logsNow, resultsThrough: resultsNow };
          watchQueueWhilePending(fresh);
          yield { task: fresh, queuePosition };
          if (isTerminal(fresh.state)) return;
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
  signals.onClose(engine.events.listen('task', taskId, (change) => signals.push(change)));
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
