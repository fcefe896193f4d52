import type { PubSub, TaskEventKind } from '../domain/events.js';
import type { Task } from '../domain/types.js';

/** Announces tasks whose state changed, and the queues whose order they changed. */
export function publishChanges(events: PubSub, tasks: readonly Task[], kind: TaskEventKind, at = new Date()): void {
  if (tasks.length === 0) return;
  const queues = new Map<string, { service: string; type: string }>();
  for (const task of tasks) {
    const change = { kind, taskId: task.id, organisationId: task.organisationId, at, state: task.state };
    events.publish('task', task.id, change);
    events.publish('organisation', task.organisationId, change);
    queues.set(`${task.service}/${task.type}`, { service: task.service, type: task.type });
  }
  for (const [key, queue] of queues) events.publish('queue', key, queue);
}
