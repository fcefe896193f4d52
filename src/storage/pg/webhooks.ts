import type { LeasedWebhookMessage, WebhookAttempt, WebhookStore } from '../webhook-store.js';
import type { PgDatabase } from './database.js';

const MESSAGE_COLUMNS = `id, organisation_id AS "organisationId", task_id AS "taskId", endpoint_id AS "endpointId", url,
  event, task, body, attempts, date_created AS "dateCreated"`;

const statement = (name: string, text: string) => (values: unknown[]) => ({ name: `webhooks.${name}`, text, values });

const statements = {
  // SKIP LOCKED: deliverers of several processes claiming at once take different messages. The
  // earlier-message test reads webhook_messages_in_order: one probe per candidate.
  claim: statement(
    'claim',
    `UPDATE webhook_messages SET lease_owner = $1, lease_expires_at = $4
     WHERE id IN (
       SELECT message.id FROM webhook_messages message
       WHERE message.status = 'PENDING' AND message.next_attempt_at <= $3
         AND (message.lease_expires_at IS NULL OR message.lease_expires_at <= $3)
         AND NOT EXISTS (
           SELECT 1 FROM webhook_messages earlier
           WHERE earlier.status = 'PENDING' AND earlier.task_id = message.task_id AND earlier.url = message.url
             AND earlier.id < message.id)
       ORDER BY message.next_attempt_at, message.id
       LIMIT $2
       FOR UPDATE SKIP LOCKED)
     RETURNING ${MESSAGE_COLUMNS}`,
  ),
  settle: statement(
    'settle',
    `UPDATE webhook_messages SET
       status = CASE WHEN $3 = 'SUCCEEDED' THEN 'DELIVERED' WHEN $4::bigint IS NULL THEN 'FAILED' ELSE 'PENDING' END,
       attempts = attempts + 1, next_attempt_at = COALESCE($4::bigint, next_attempt_at),
       body = COALESCE(body, $5), lease_owner = NULL, lease_expires_at = NULL
     WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'
     RETURNING organisation_id AS "organisationId", task_id AS "taskId", endpoint_id AS "endpointId", url, attempts`,
  ),
  insertDelivery: statement(
    'insertDelivery',
    `INSERT INTO webhook_deliveries (message_id, organisation_id, task_id, endpoint_id, attempt, outcome, http_status,
       duration_ms, error, next_attempt_at, date_created)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
  ),
  endpointSucceeded: statement(
    'endpointSucceeded',
    `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`,
  ),
  endpointFailed: statement(
    'endpointFailed',
    `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1 RETURNING failing_since AS "failingSince"`,
  ),
  disableEndpoint: statement(
    'disableEndpoint',
    `UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1 AND enabled`,
  ),
  failEndpointMessages: statement(
    'failEndpointMessages',
    `UPDATE webhook_messages SET status = 'FAILED' WHERE endpoint_id = $1 AND status = 'PENDING' AND lease_owner IS NULL`,
  ),
  failTaskMessagesTo: statement(
    'failTaskMessagesTo',
    `UPDATE webhook_messages SET status = 'FAILED' WHERE task_id = $1 AND url = $2 AND status = 'PENDING' AND endpoint_id IS NULL`,
  ),
  nextDueAt: statement('nextDueAt', `SELECT min(next_attempt_at) AS at FROM webhook_messages WHERE status = 'PENDING'`),
};

export class PgWebhookStore implements WebhookStore {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }

  async claimDueMessages(owner: string, limit: number, now: number, until: number): Promise<LeasedWebhookMessage[]> {
    const { rows } = await this.#database.pool.query(statements.claim([owner, limit, now, until]));
    return (rows as LeasedWebhookMessage[]).sort((a, b) => a.id - b.id);
  }

  async recordAttempt(attempt: WebhookAttempt, now: number, disableFailingBefore: number): Promise<boolean> {
    return this.#database.transaction(async (client) => {
      const { rows } = await client.query(
        statements.settle([attempt.messageId, attempt.owner, attempt.outcome, attempt.nextAttemptAt, attempt.body]),
      );
      const settled = rows[0] as
        | { organisationId: number; taskId: number; endpointId: number | null; url: string; attempts: number }
        | undefined;
      if (!settled) return false;
      await client.query(
        statements.insertDelivery([
          attempt.messageId,
          settled.organisationId,
          settled.taskId,
          settled.endpointId,
          settled.attempts,
          attempt.outcome,
          attempt.httpStatus,
          attempt.durationMs,
          attempt.error,
          attempt.outcome === 'SUCCEEDED' ? null : attempt.nextAttemptAt,
          now,
        ]),
      );
      if (settled.endpointId === null) {
        if (attempt.gone) await client.query(statements.failTaskMessagesTo([settled.taskId, settled.url]));
        return true;
      }
      if (attempt.outcome === 'SUCCEEDED') {
        await client.query(statements.endpointSucceeded([settled.endpointId]));
        return true;
      }
      const failed = await client.query(statements.endpointFailed([settled.endpointId, now]));
      const { failingSince } = failed.rows[0] as { failingSince: number };
      const reason = attempt.gone ? 'GONE' : failingSince <= disableFailingBefore ? 'FAILING' : null;
      if (reason !== null) {
        await client.query(statements.disableEndpoint([settled.endpointId, reason]));
        await client.query(statements.failEndpointMessages([settled.endpointId]));
      }
      return true;
    });
  }

  async nextDueAt(): Promise<number | null> {
    const { rows } = await this.#database.pool.query(statements.nextDueAt([]));
    const at = (rows[0] as { at: number | string | null }).at;
    return at === null ? null : Number(at);
  }
}
