import { queueKey, type EndedTask, type PubSub, type TaskChange, type TaskEventKind } from '../domain/events.js';
import { isTerminal, type Task } from '../domain/types.js';

function endedTask(task: Task): EndedTask {
  const { dateStarted, dateCompleted } = task;
  return {
    service: task.service,
    action: task.type,
    durationMs: dateStarted && dateCompleted ? Math.max(0, dateCompleted.getTime() - dateStarted.getTime()) : null,
  };
}

/** Announces tasks whose state changed, and the queues whose order they changed. */
export function publishChanges(events: PubSub, tasks: readonly Task[], kind: TaskEventKind, at = new Date()): void {
  if (tasks.length === 0) return;
  const queues = new Map<string, { service: string; type: string }>();
  const due = new Set<string>();
  for (const task of tasks) {
    const change: TaskChange = { kind, taskId: task.id, organisationId: task.organisationId, at, state: task.state };
    if (kind === 'STATE_CHANGED' && isTerminal(task.state)) change.ended = endedTask(task);
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
