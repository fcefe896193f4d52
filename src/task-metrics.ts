import type { EventMap, Listener, PubSub, TaskChange } from './domain/events.js';
import { isTerminal } from './domain/types.js';
import { taskDuration, tasksProcessed } from './metrics.js';
import type { RecordStore } from './storage/contract.js';

/** Terminal changes are read back at most this often, in one statement per organisation. */
const FLUSH_INTERVAL_MS = 1000;
/** Past this many unread ids a read starts at once, so that the buffer stays small. */
const FLUSH_AT = 2000;
/** A store that stops answering must not let the buffer grow: past this, changes are counted without an action. */
const MAX_UNREAD = 20_000;

/** A bus that hands on every publication, and shows this process's task changes to `observe` on the way. */
class ObservedPubSub implements PubSub {
  readonly #events: PubSub;
  readonly #observe: (change: TaskChange) => void;

  constructor(events: PubSub, observe: (change: TaskChange) => void) {
    this.#events = events;
    this.#observe = observe;
  }

  publish<C extends keyof EventMap>(channel: C, key: string | number, event: EventMap[C]): void {
    this.#events.publish(channel, key, event);
    if (channel === 'task') this.#observe(event as TaskChange);
  }

  listen<C extends keyof EventMap>(channel: C, key: string | number, listener: Listener<EventMap[C]>): () => void {
    return this.#events.listen(channel, key, listener);
  }

  listenerCount(): number {
    return this.#events.listenerCount();
  }
}

export interface TaskMetrics {
  /** The bus to hand the engine: this process's publications pass through it on their way. */
  events: PubSub;
  /** Reads and counts what is buffered (a scrape calls it, so that its counters are current). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Counts the tasks this process brings to an end (its worker's, its cancellations, its real-time
 * calls) from the terminal changes it publishes. A change names only the task, so their action
 * and times are read back in batches, off the path that published them. Changes other processes
 * publish (PostgreSQL's bus) do not pass here: each process counts its own, as Prometheus expects.
 */
export function observeTaskOutcomes(events: PubSub, records: Pick<RecordStore, 'getTasks'>): TaskMetrics {
  let unread = new Map<number, number[]>();
  let unreadCount = 0;
  let flushing: Promise<void> = Promise.resolve();

  const flush = (): Promise<void> => {
    if (unreadCount === 0) return flushing;
    const batch = unread;
    unread = new Map();
    unreadCount = 0;
    flushing = flushing.then(() => count(batch));
    return flushing;
  };

  const count = async (batch: Map<number, number[]>): Promise<void> => {
    for (const [organisationId, taskIds] of batch) {
      try {
        for (const task of await records.getTasks(organisationId, taskIds)) {
          const labels = { service: task.service, action: task.type };
          tasksProcessed.inc({ ...labels, outcome: task.state });
          if (task.dateStarted && task.dateCompleted) {
            taskDuration.observe(labels, Math.max(0, task.dateCompleted.getTime() - task.dateStarted.getTime()) / 1000);
          }
        }
      } catch {
        // The tasks happened all the same: counted, though their action is not known.
        tasksProcessed.inc({ service: 'unknown', action: 'unknown', outcome: 'unknown' }, taskIds.length);
      }
    }
  };

  const timer = setInterval(() => void flush(), FLUSH_INTERVAL_MS).unref();

  const observe = (change: TaskChange): void => {
    if (change.kind !== 'STATE_CHANGED' || !change.state || !isTerminal(change.state)) return;
    if (unreadCount >= MAX_UNREAD) {
      tasksProcessed.inc({ service: 'unknown', action: 'unknown', outcome: change.state });
      return;
    }
    const ids = unread.get(change.organisationId);
    if (ids) ids.push(change.taskId);
    else unread.set(change.organisationId, [change.taskId]);
    unreadCount += 1;
    if (unreadCount >= FLUSH_AT) void flush();
  };

  const observed = new ObservedPubSub(events, (change) => observe(change));

  return {
    events: observed,
    flush,
    close: async () => {
      clearInterval(timer);
      await flush();
    },
  };
}
