import { EVERYONE, type PubSub } from '../domain/events.js';
import { isTerminal, type Task } from '../domain/types.js';
import { webhookEventBit, type WebhookEvent } from '../domain/webhooks.js';

// The outbox half that both dialects share: which changes of a transaction are told to which
// receivers. Each dialect writes the planned messages in the transaction that made the changes, so
// a crash loses neither the change nor its message, and cannot leave one without the other.

export interface WebhookChange {
  task: Task;
  event: WebhookEvent;
}

/** An endpoint that may want the changes of its organisation's tasks. */
export interface EndpointSubscription {
  id: number;
  organisationId: number;
  url: string;
  /** A WEBHOOK_EVENTS bit set. */
  events: number;
}

/** The task as a message tells it: what the change left, in plain JSON (ids and epoch milliseconds). */
export interface TaskSnapshot {
  id: number;
  state: Task['state'];
  service: string;
  action: string;
  error: Task['error'];
  progress: number | null;
  priority: number;
  attempts: number;
  maxAttempts: number;
  retries: number;
  user: string | null;
  session: string | null;
  poll: string | null;
  target: string | null;
  idempotencyKey: string | null;
  scheduleId: number | null;
  scheduledFor: number | null;
  dateCreated: number;
  dateStarted: number | null;
  dateCompleted: number | null;
}

export interface NewWebhookMessage {
  organisationId: number;
  taskId: number;
  /** Null for the task's own webhook. */
  endpointId: number | null;
  url: string;
  event: WebhookEvent;
  /** JSON of a TaskSnapshot. */
  task: string;
}

/** What a work turn changed, in the order receivers hear of it: results, progress, ends, then starts. */
export function workChanges(parts: {
  resulted?: readonly Task[];
  progressed?: readonly Task[];
  changed?: readonly Task[];
  claimed?: readonly Task[];
}): WebhookChange[] {
  const changes: WebhookChange[] = [];
  for (const task of parts.resulted ?? []) changes.push({ task, event: 'RESULT' });
  // A task that reported progress several times since the last flush is told of where it got to.
  const progressed = new Map((parts.progressed ?? []).map((task) => [task.id, task]));
  for (const task of progressed.values()) changes.push({ task, event: 'PROGRESS' });
  for (const task of parts.changed ?? []) if (isTerminal(task.state)) changes.push({ task, event: 'COMPLETED' });
  for (const task of parts.claimed ?? []) changes.push({ task, event: 'STARTED' });
  return changes;
}

/** The tasks among `tasks` that ended, each a COMPLETED change. */
export function completions(tasks: readonly Task[]): WebhookChange[] {
  return workChanges({ changed: tasks });
}

/** Of `ids`, those no write of the turn returned (`latest`): only they need reading for their messages. */
export function unreturnedIds(ids: readonly number[], latest: readonly Task[]): number[] {
  const returned = new Set(latest.map((task) => task.id));
  return [...new Set(ids)].filter((id) => !returned.has(id));
}

/**
 * The tasks of `ids` as the turn left them, once each, in ascending id order: a task a write of
 * the turn returned as its last such write (the later in `latest`) returned it, the others as `read`.
 */
export function tasksAsLeft(ids: readonly number[], latest: readonly Task[], read: readonly Task[]): Task[] {
  const byId = new Map<number, Task>();
  for (const task of read) byId.set(task.id, task);
  for (const task of latest) byId.set(task.id, task);
  return [...new Set(ids)]
    .sort((a, b) => a - b)
    .flatMap((id) => {
      const task = byId.get(id);
      return task ? [task] : [];
    });
}

export function organisationsOf(changes: readonly WebhookChange[]): number[] {
  return [...new Set(changes.map((change) => change.task.organisationId))];
}

/** Each change once per receiver that asked for its event: the task's own webhook, then its organisation's endpoints. */
export function plannedMessages(
  changes: readonly WebhookChange[],
  endpoints: readonly EndpointSubscription[],
): NewWebhookMessage[] {
  const endpointsOf = new Map<number, EndpointSubscription[]>();
  for (const endpoint of endpoints) {
    const list = endpointsOf.get(endpoint.organisationId) ?? [];
    list.push(endpoint);
    endpointsOf.set(endpoint.organisationId, list);
  }
  const messages: NewWebhookMessage[] = [];
  for (const change of changes) {
    const { task, event } = change;
    let snapshot: string | null = null;
    const add = (endpointId: number | null, url: string) => {
      snapshot ??= snapshotJson(task);
      messages.push({ organisationId: task.organisationId, taskId: task.id, endpointId, url, event, task: snapshot });
    };
    if (task.webhook && ownWebhookWants(change)) add(null, task.webhook.url);
    const bit = webhookEventBit(event);
    for (const endpoint of endpointsOf.get(task.organisationId) ?? []) {
      if ((endpoint.events & bit) !== 0) add(endpoint.id, endpoint.url);
    }
  }
  return messages;
}

/** Whether the task's own webhook asked for the change's event. */
export function ownWebhookWants({ task, event }: WebhookChange): boolean {
  return task.webhook?.events.includes(event) ?? false;
}

/** The JSON of the task's TaskSnapshot, as a message stores it. */
export function snapshotJson(task: Task): string {
  return JSON.stringify(snapshotOf(task));
}

function snapshotOf(task: Task): TaskSnapshot {
  return {
    id: task.id,
    state: task.state,
    service: task.service,
    action: task.type,
    error: task.error,
    progress: task.progress,
    priority: task.priority,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    retries: task.retries,
    user: task.user,
    session: task.session,
    poll: task.poll,
    target: task.target,
    idempotencyKey: task.idempotencyKey,
    scheduleId: task.scheduleId,
    scheduledFor: task.scheduledFor?.getTime() ?? null,
    dateCreated: task.dateCreated.getTime(),
    dateStarted: task.dateStarted?.getTime() ?? null,
    dateCompleted: task.dateCompleted?.getTime() ?? null,
  };
}

/**
 * Tells deliverers in every process that messages were written, at most once per turn of the
 * event loop however many transactions wrote some: a burst of endings is one wake-up.
 */
export class WebhooksDueNotice {
  readonly #events: PubSub;
  #scheduled = false;

  constructor(events: PubSub) {
    this.#events = events;
  }

  written(count: number): void {
    if (count === 0 || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#events.publish('webhooksDue', EVERYONE, {});
    });
  }
}
