import type pg from 'pg';
import type { Task } from '../../../domain/types.js';
import { webhookEventBit } from '../../../domain/webhooks.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { ownWebhookWants, snapshotJson, type WebhookChange, type WebhooksDueNotice } from '../../webhook-outbox.js';
import { statement } from './statements.js';

// The statement joins the organisations' endpoints itself: a transaction spends one round trip on
// its messages however many endpoints there are, and none on reading them first.
const statements = {
  insertMessages: statement(
    'insertWebhookMessages',
    `INSERT INTO webhook_messages (organisation_id, task_id, endpoint_id, url, event, task, next_attempt_at, date_created)
     SELECT organisation_id, task_id, endpoint_id, url, event, task, $8, $8 FROM (
       SELECT change.ordinal, 0 AS rank, change.organisation_id, change.task_id, NULL::int AS endpoint_id,
         change.own_url AS url, change.event, change.task
       FROM unnest($1::int[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[], $7::boolean[])
         WITH ORDINALITY AS change (organisation_id, task_id, event, bit, task, own_url, own_wants, ordinal)
       WHERE change.own_wants
       UNION ALL
       SELECT change.ordinal, 1, change.organisation_id, change.task_id, endpoint.id, endpoint.url, change.event, change.task
       FROM unnest($1::int[], $2::bigint[], $3::text[], $4::int[], $5::text[])
         WITH ORDINALITY AS change (organisation_id, task_id, event, bit, task, ordinal)
       JOIN webhook_endpoints endpoint ON endpoint.organisation_id = change.organisation_id
         AND endpoint.enabled AND endpoint.date_deleted IS NULL AND endpoint.events & change.bit <> 0
       ORDER BY 1, 2, 5
     ) AS message`,
  ),
  tasksByIds: statement('webhookTasksByIds', `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ANY($1::bigint[])`),
};

const notices = new WeakMap<object, WebhooksDueNotice>();

/** The store of this database tells deliverers through `notice` when a transaction wrote messages. */
export function announceWebhooks(database: object, notice: WebhooksDueNotice): void {
  notices.set(database, notice);
}

/** The tasks of these ids, for changes that name tasks without reading them (results). */
export async function tasksOf(client: pg.PoolClient, ids: readonly number[]): Promise<Task[]> {
  if (ids.length === 0) return [];
  const { rows } = await client.query(statements.tasksByIds([[...new Set(ids)]]));
  return (rows as never[]).map(toTask);
}

/**
 * Writes the messages of `changes` into the outbox inside the caller's transaction; `database`
 * names the store to announce them through, null to leave them to the deliverers' periodic look.
 */
export async function writeWebhookMessages(
  client: pg.PoolClient,
  database: object | null,
  changes: readonly WebhookChange[],
  now: number,
): Promise<void> {
  if (changes.length === 0) return;
  const result = await client.query(
    statements.insertMessages([
      changes.map((change) => change.task.organisationId),
      changes.map((change) => change.task.id),
      changes.map((change) => change.event),
      changes.map((change) => webhookEventBit(change.event)),
      changes.map((change) => snapshotJson(change.task)),
      changes.map((change) => change.task.webhook?.url ?? null),
      changes.map(ownWebhookWants),
      now,
    ]),
  );
  if (database !== null) notices.get(database)?.written(result.rowCount ?? 0);
}
