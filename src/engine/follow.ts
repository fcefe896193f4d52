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
    if (stop.aborted) stopped();
    else stream.onClose(onAbort(stop, stopped));
  }
  return stream;
}

const abortListeners = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Every follower of a server listens to its one shutdown signal, and an EventTarget looks through
 * all its listeners on each addEventListener: 5,000 followers took a second to subscribe. The
 * signal gets one listener, which calls a set. Returns the function that stops listening.
 */
function onAbort(signal: AbortSignal, listener: () => void): () => void {
  let listeners = abortListeners.get(signal);
  if (!listeners) {
    const created = new Set<() => void>();
    abortListeners.set(signal, (listeners = created));
    signal.addEventListener('abort', () => {
      for (const abortListener of [...created]) abortListener();
    }, { once: true });
  }
  listeners.add(listener);
  return () => listeners.delete(listener);
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

// One changed task has many followers (200 sockets × 25 subscriptions of one task stalled the
// server 2 s when each read it for itself). A follower may answer an event with any read that
// started after the event arrived, so the followers of one task share their reads: a read is
// kept, and given to a later follower whose newest event arrived before the read started.

/** Orders the arrival of events against the start of reads. */
let clock = 0;
const tick = () => ++clock;

/** Every listener of one publish is given the same object: it arrived when the first of them saw it. */
const arrivals = new WeakMap<object, number>();

/** When this process first saw the event; a listener calls it as the event comes, before it is buffered. */
export function arrivalOf(event: object): number {
  let arrived = arrivals.get(event);
  if (arrived === undefined) arrivals.set(event, (arrived = tick()));
  return arrived;
}

/** Reads kept for sharing, at most, and for at most this long after they settle. */
export const SHARED_READS = Object.freeze({ kept: 1024, keptForMs: 1000 });

class SharedReads {
  readonly #reads = new Map<string, { startedAt: number; value: Promise<unknown> }>();

  /** `load`'s result, or that of a read of `key` that started after `notBefore`. */
  read<T>(key: string, notBefore: number, load: () => Promise<T>): Promise<T> {
    const kept = this.#reads.get(key);
    if (kept && kept.startedAt > notBefore) return kept.value as Promise<T>;
    const entry = { startedAt: tick(), value: load() as Promise<unknown> };
    this.#reads.delete(key);
    this.#reads.set(key, entry);
    const forget = () => {
      if (this.#reads.get(key) === entry) this.#reads.delete(key);
    };
    entry.value.then(
      () => setTimeout(forget, SHARED_READS.keptForMs).unref(),
      forget,
    );
    for (const oldest of this.#reads.keys()) {
      if (this.#reads.size <= SHARED_READS.kept) break;
      this.#reads.delete(oldest);
    }
    return entry.value as Promise<T>;
  }
}

const sharedReadsOf = new WeakMap<object, SharedReads>();

function sharedReads(engine: object): SharedReads {
  let reads = sharedReadsOf.get(engine);
  if (!reads) sharedReadsOf.set(engine, (reads = new SharedReads()));
  return reads;
}

/**
 * The task as the actor sees it, read after `notBefore` (an arrivalOf), shared with the other
 * followers of its organisation: the read is the organisation's, so each sees exactly what a
 * read of its own would show.
 */
export function readTaskAfter(
  engine: Pick<TaskEngine, 'getTasks'>,
  actor: Actor,
  taskId: number,
  notBefore: number,
): Promise<Task | null> {
  return sharedReads(engine).read(`task:${actor.organisationId}:${taskId}`, notBefore, async () => {
    const [task] = await engine.getTasks(actor, [taskId]);
    return task ?? null;
  });
}

/** A task as it is now, with its 0-based queue position while PENDING (null otherwise). */
export interface TaskUpdate {
  task: Task;
  queuePosition: number | null;
}

type TaskSignal = TaskChange | 'queueAdvanced';

/**
 * Queue positions asked for on one turn of the event loop, read in one statement: when a queue
 * advances, each of its followers asks for its own task's position at once, and 750 single reads
 * of 1,000 followers held the loop 2 s.
 */
class PositionBatch {
  readonly #engine: Pick<TaskEngine, 'queuePositions'>;
  #waiting = new Map<number, ((position: Promise<number | null>) => void)[]>();

  constructor(engine: Pick<TaskEngine, 'queuePositions'>) {
    this.#engine = engine;
  }

  get(taskId: number): Promise<number | null> {
    if (this.#waiting.size === 0) setImmediate(() => this.#read());
    return new Promise((resolve) => {
      const waiting = this.#waiting.get(taskId);
      if (waiting) waiting.push(resolve);
      else this.#waiting.set(taskId, [resolve]);
    });
  }

  #read(): void {
    const waiting = this.#waiting;
    this.#waiting = new Map();
    const positions = this.#engine.queuePositions([...waiting.keys()]);
    for (const [taskId, resolvers] of waiting) {
      const position = positions.then((found) => found.get(taskId) ?? null);
      for (const resolve of resolvers) resolve(position);
    }
  }
}

const positionBatches = new WeakMap<object, PositionBatch>();

async function positionOf(engine: Pick<TaskEngine, 'queuePositions'>, task: Task, notBefore = tick()): Promise<number | null> {
  if (task.state !== 'PENDING') return null;
  let batch = positionBatches.get(engine);
  if (!batch) positionBatches.set(engine, (batch = new PositionBatch(engine)));
  const batched = batch;
  return sharedReads(engine).read(`position:${task.id}`, notBefore, () => batched.get(task.id));
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
async function logsThrough(engine: FollowingEngine, taskId: number, announced: number | null, notBefore: number): Promise<number | null> {
  const after = announced ?? 0;
  return sharedReads(engine).read(`logs:${taskId}:${after}`, notBefore, async () => {
    const logs = (await engine.taskLogs([taskId], null, { first: 100, afterId: after })).get(taskId)?.items ?? [];
    return logs.length > 0 ? logs[logs.length - 1]!.id : announced;
  });
}

async function resultsThrough(engine: FollowingEngine, taskId: number, notBefore: number): Promise<number | null> {
  return sharedReads(engine).read(`results:${taskId}`, notBefore, async () =>
    newest(((await engine.taskResults([taskId])).get(taskId) ?? []).map((result) => result.id)),
  );
}

// Dates and nested objects compare by value; a task read twice serialises the same when nothing changed.
function sameTask(a: Task, b: Task): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

async function* taskUpdates(
  engine: FollowingEngine,
  actor: Actor,
  initial: Task,
  signals: EventStream<TaskSignal | FollowEnding>,
): AsyncGenerator<TaskUpdate | FollowEnding> {
  let stopWatchingQueue: (() => void) | null = null;
  let queueAdvancedAt = 0;
  const queueAdvanced = throttled(() => {
    queueAdvancedAt = tick();
    signals.push('queueAdvanced');
  }, QUEUE_POSITION_INTERVAL_MS);
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
        const notBefore = Math.max(...changes.map((change) => (change === 'queueAdvanced' ? queueAdvancedAt : arrivalOf(change))));
        const fresh = await readTaskAfter(engine, actor, initial.id, notBefore);
        if (!fresh) return;
        const logs = announcedIds(changes, 'LOG');
        const results = announcedIds(changes, 'RESULT');
        const [queuePosition, logsNow, resultsNow] = await Promise.all([
          positionOf(engine, fresh, notBefore),
          logs.length > 0 ? logsThrough(engine, fresh.id, newest(logs), notBefore) : sent.logsThrough,
          results.length > 0 ? resultsThrough(engine, fresh.id, notBefore) : sent.resultsThrough,
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
  signals.onClose(
    engine.events.listen('task', taskId, (change) => {
      arrivalOf(change);
      signals.push(change);
    }),
  );
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
