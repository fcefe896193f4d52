import type Database from 'better-sqlite3';
import type { Task } from '../../../domain/types.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import {
  organisationsOf,
  plannedMessages,
  type EndpointSubscription,
  type WebhookChange,
  type WebhooksDueNotice,
} from '../../webhook-outbox.js';
import { preparedOnce } from './statements.js';

export const webhookOutboxStatements = preparedOnce((sqlite) => ({
  subscribedEndpoints: sqlite.prepare(
    `SELECT id, organisation_id AS organisationId, url, events FROM webhook_endpoints
     WHERE organisation_id IN (SELECT value FROM json_each(?)) AND enabled AND date_deleted IS NULL`,
  ),
  tasksByIds: sqlite.prepare(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id IN (SELECT value FROM json_each(?))`),
  insertMessages: sqlite.prepare(
    `INSERT INTO webhook_messages (organisation_id, task_id, endpoint_id, url, event, task, next_attempt_at, date_created)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, @now, @now
     FROM json_each(@messages)`,
  ),
}));

const notices = new WeakMap<Database.Database, WebhooksDueNotice>();

/** The store of this connection tells deliverers through `notice` when a transaction wrote messages. */
export function announceWebhooks(sqlite: Database.Database, notice: WebhooksDueNotice): void {
  notices.set(sqlite, notice);
}

/** The tasks of these ids, for changes that name tasks without reading them (results). */
export function tasksOf(sqlite: Database.Database, ids: readonly number[]): Task[] {
  if (ids.length === 0) return [];
  return (webhookOutboxStatements(sqlite).tasksByIds.all(JSON.stringify([...new Set(ids)])) as never[]).map(toTask);
}

/**
 * Writes the messages of `changes` into the outbox, inside the caller's transaction; returns how
 * many. One indexed read of the organisations' endpoints, and one insert when there is anything.
 */
export function writeWebhookMessages(sqlite: Database.Database, changes: readonly WebhookChange[], now: number): number {
  if (changes.length === 0) return 0;
  const statements = webhookOutboxStatements(sqlite);
  const endpoints = statements.subscribedEndpoints.all(JSON.stringify(organisationsOf(changes))) as EndpointSubscription[];
  const messages = plannedMessages(changes, endpoints);
  if (messages.length === 0) return 0;
  statements.insertMessages.run({
    now,
    messages: JSON.stringify(
      messages.map((message) => [message.organisationId, message.taskId, message.endpointId, message.url, message.event, message.task]),
    ),
  });
  notices.get(sqlite)?.written(messages.length);
  return messages.length;
}
