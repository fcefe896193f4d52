import { queueKey, type PubSub, type TaskEventKind } from '../domain/events.js';
import type { Task } from '../domain/types.js';

/** Announces tasks whose state changed, and the queues whose order they changed. */
export function publishChanges(events: PubSub, tasks: readonly Task[], kind: TaskEventKind, at = new Date()): void {
  if (tasks.length === 0) return;
  const queues = new Map<string, { service: string; type: string }>();
  const due = new Set<string>();
  for (const task of tasks) {
    const change = { kind, taskId: task.id, organisationId: task.organisationId, at, state: task.state };
    events.publish('task', task.id, change);
    events.publish('organisation', task.organisationId, change);
    const queue = queueKey(task.service, task.type);
    queues.set(queue, { service: task.service, type: task.type });
    if (task.state === 'PENDING') due.add(queue);
  }
  for (const [key, queue] of queues) {
    events.publish('queue', key, queue);
    if (due.has(key)) events.publish('due', key, queue);
  }
}
