import type Database from 'better-sqlite3';
import type { LeasedWebhookMessage, WebhookAttempt, WebhookStore } from '../webhook-store.js';
import type { SqliteDatabase } from './database.js';

const MESSAGE_COLUMNS = `id, organisation_id AS organisationId, task_id AS taskId, endpoint_id AS endpointId, url,
  event, task, body, attempts, date_created AS dateCreated`;

export class SqliteWebhookStore implements WebhookStore {
  readonly #sqlite: Database.Database;
  readonly #statements;

  constructor(database: SqliteDatabase) {
    const sqlite = database.sqlite;
    this.#sqlite = sqlite;
    this.#statements = {
      // The earlier-message test reads webhook_messages_in_order: one probe per candidate.
      claim: sqlite.prepare(
        `UPDATE webhook_messages SET lease_owner = @owner, lease_expires_at = @until
         WHERE id IN (
           SELECT message.id FROM webhook_messages message
           WHERE message.status = 'PENDING' AND message.next_attempt_at <= @now
             AND (message.lease_expires_at IS NULL OR message.lease_expires_at <= @now)
             AND NOT EXISTS (
               SELECT 1 FROM webhook_messages earlier
               WHERE earlier.status = 'PENDING' AND earlier.task_id = message.task_id AND earlier.url = message.url
                 AND earlier.id < message.id)
           ORDER BY message.next_attempt_at, message.id
           LIMIT @limit)
         RETURNING ${MESSAGE_COLUMNS}`,
      ),
      settle: sqlite.prepare(
        `UPDATE webhook_messages SET
           status = CASE WHEN @outcome = 'SUCCEEDED' THEN 'DELIVERED' WHEN @nextAttemptAt IS NULL THEN 'FAILED' ELSE 'PENDING' END,
           attempts = attempts + 1, next_attempt_at = COALESCE(@nextAttemptAt, next_attempt_at),
           body = COALESCE(body, @body), lease_owner = NULL, lease_expires_at = NULL
         WHERE id = @messageId AND lease_owner = @owner AND status = 'PENDING'
         RETURNING organisation_id AS organisationId, task_id AS taskId, endpoint_id AS endpointId, url, attempts`,
      ),
      insertDelivery: sqlite.prepare(
        `INSERT INTO webhook_deliveries (message_id, organisation_id, task_id, endpoint_id, attempt, outcome, http_status,
           duration_ms, error, next_attempt_at, date_created)
         VALUES (@messageId, @organisationId, @taskId, @endpointId, @attempt, @outcome, @httpStatus, @durationMs, @error,
           @nextAttemptAt, @now)`,
      ),
      endpointSucceeded: sqlite.prepare(`UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`),
      endpointFailed: sqlite.prepare(
        `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, @now)
         WHERE id = @endpointId RETURNING failing_since AS failingSince`,
      ),
      disableEndpoint: sqlite.prepare(
        `UPDATE webhook_endpoints SET enabled = 0, disabled_reason = @reason WHERE id = @endpointId AND enabled`,
      ),
      failEndpointMessages: sqlite.prepare(
        `UPDATE webhook_messages SET status = 'FAILED', lease_owner = NULL, lease_expires_at = NULL
         WHERE endpoint_id = ? AND status = 'PENDING' AND lease_owner IS NULL`,
      ),
      failTaskMessagesTo: sqlite.prepare(
        `UPDATE webhook_messages SET status = 'FAILED' WHERE task_id = ? AND url = ? AND status = 'PENDING' AND endpoint_id IS NULL`,
      ),
      nextDueAt: sqlite.prepare(`SELECT min(next_attempt_at) AS at FROM webhook_messages WHERE status = 'PENDING'`),
    };
  }

  async claimDueMessages(owner: string, limit: number, now: number, until: number): Promise<LeasedWebhookMessage[]> {
    const rows = this.#statements.claim.all({ owner, limit, now, until }) as LeasedWebhookMessage[];
    return rows.sort((a, b) => a.id - b.id);
  }

  async recordAttempt(attempt: WebhookAttempt, now: number, disableFailingBefore: number): Promise<boolean> {
    const statements = this.#statements;
    return this.#sqlite
      .transaction((): boolean => {
        const settled = statements.settle.get({
          messageId: attempt.messageId,
          owner: attempt.owner,
          outcome: attempt.outcome,
          nextAttemptAt: attempt.nextAttemptAt,
          body: attempt.body,
        }) as
          | { organisationId: number; taskId: number; endpointId: number | null; url: string; attempts: number }
          | undefined;
        if (!settled) return false;
        statements.insertDelivery.run({
          messageId: attempt.messageId,
          organisationId: settled.organisationId,
          taskId: settled.taskId,
          endpointId: settled.endpointId,
          attempt: settled.attempts,
          outcome: attempt.outcome,
          httpStatus: attempt.httpStatus,
          durationMs: attempt.durationMs,
          error: attempt.error,
          nextAttemptAt: attempt.outcome === 'SUCCEEDED' ? null : attempt.nextAttemptAt,
          now,
        });
        if (settled.endpointId === null) {
          if (attempt.gone) statements.failTaskMessagesTo.run(settled.taskId, settled.url);
          return true;
        }
        if (attempt.outcome === 'SUCCEEDED') {
          statements.endpointSucceeded.run(settled.endpointId);
          return true;
        }
        const { failingSince } = statements.endpointFailed.get({ endpointId: settled.endpointId, now }) as { failingSince: number };
        const reason = attempt.gone ? 'GONE' : failingSince <= disableFailingBefore ? 'FAILING' : null;
        if (reason !== null) {
          statements.disableEndpoint.run({ endpointId: settled.endpointId, reason });
          statements.failEndpointMessages.run(settled.endpointId);
        }
        return true;
      })
      .immediate();
  }

  async nextDueAt(): Promise<number | null> {
    return (this.#statements.nextDueAt.get() as { at: number | null }).at;
  }
}
