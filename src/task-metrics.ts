import type { EventMap, Listener, PubSub, TaskChange } from './domain/events.js';
import { isTerminal } from './domain/types.js';
import { taskDuration, tasksProcessed } from './metrics.js';

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

/**
 * Counts the tasks this process brings to an end (its worker's, its cancellations, its real-time
 * calls) from the terminal changes it publishes, which carry the task's action and run time
 * (`TaskChange.ended`): counting reads nothing, so it costs the worker's hot path nothing that
 * grows with the tasks. The engine is handed the bus it returns. Changes other processes publish
 * (PostgreSQL's bus) do not pass here: each process counts its own, as Prometheus expects.
 */
export function observeTaskOutcomes(events: PubSub): PubSub {
  const observe = (change: TaskChange): void => {
    if (change.kind !== 'STATE_CHANGED' || !change.state || !isTerminal(change.state)) return;
    const labels = change.ended
      ? { service: change.ended.service, action: change.ended.action }
      : { service: 'unknown', action: 'unknown' };
    tasksProcessed.inc({ ...labels, outcome: change.state });
    if (change.ended?.durationMs != null) taskDuration.observe(labels, change.ended.durationMs / 1000);
  };
  return new ObservedPubSub(events, observe);
}
