import { TERMINAL_STATES } from '../../../domain/types.js';
import type { RetentionBatch, RetentionCursor } from '../../contract.js';
import type { SqliteDatabase } from '../database.js';
import { deletableOfBatch, RETENTION_CHUNKS } from '../../retention.js';

/** Tasks per transaction: a batch holds the event loop for a few milliseconds (bench/bulk.ts). */
export const RETENTION_BATCH_SIZE = 200;

const TERMINAL = TERMINAL_STATES.map((state) => `'${state}'`).join(', ');
const IDS = `(SELECT value FROM json_each(@ids))`;

/** Retention: terminal tasks past their time are deleted with everything that refers to them. */
export class RetentionRecords {
  readonly #sqlite;
  readonly #statements;

  constructor(database: SqliteDatabase) {
    const sqlite = database.sqlite;
    this.#sqlite = sqlite;
    this.#statements = {
      candidates: sqlite.prepare(
        `SELECT id, date_completed AS dateCompleted FROM tasks
         WHERE date_completed IS NOT NULL AND date_completed < @before
           AND (date_completed, id) > (@afterCompleted, @afterId) AND state IN (${TERMINAL})
         ORDER BY date_completed, id LIMIT @limit`,
      ),
      dependents: sqlite.prepare(
        `SELECT task_id AS taskId, depends_on_id AS dependsOnId FROM task_dependencies WHERE depends_on_id IN ${IDS}`,
      ),
      deleteLogs: sqlite.prepare(
        `DELETE FROM task_logs WHERE id IN (SELECT id FROM task_logs WHERE task_id IN ${IDS} LIMIT @chunk)`,
      ),
      deleteResults: sqlite.prepare(
        `DELETE FROM task_results WHERE id IN (SELECT id FROM task_results WHERE task_id IN ${IDS} LIMIT @chunk)`,
      ),
      deleteRetries: sqlite.prepare(
        `DELETE FROM task_retries WHERE id IN (SELECT id FROM task_retries WHERE task_id IN ${IDS} LIMIT @chunk)`,
      ),
      // Attempts before their messages, which they refer to.
      deleteWebhookDeliveries: sqlite.prepare(
        `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE task_id IN ${IDS} LIMIT @chunk)`,
      ),
      deleteWebhookMessages: sqlite.prepare(
        `DELETE FROM webhook_messages WHERE id IN (SELECT id FROM webhook_messages WHERE task_id IN ${IDS} LIMIT @chunk)`,
      ),
      deleteDependencies: sqlite.prepare(`DELETE FROM task_dependencies WHERE task_id IN ${IDS}`),
      deleteDependedOn: sqlite.prepare(`DELETE FROM task_dependencies WHERE depends_on_id IN ${IDS}`),
      deleteTasks: sqlite.prepare(`DELETE FROM tasks WHERE id IN ${IDS}`),
    };
  }

  async deleteExpiredTasks(completedBefore: number, after: RetentionCursor): Promise<RetentionBatch> {
    const limit = RETENTION_BATCH_SIZE;
    const statements = this.#statements;
    const run = this.#sqlite.transaction((): RetentionBatch => {
      const candidates = statements.candidates.all({
        before: completedBefore,
        afterCompleted: after.dateCompleted,
        afterId: after.id,
        limit,
      }) as RetentionCursor[];
      if (candidates.length === 0) return { busy: false, deleted: 0, next: null };
      const last = candidates.at(-1)!;
      const next = candidates.length < limit ? null : { dateCompleted: last.dateCompleted, id: last.id };
      const edges = statements.dependents.all({ ids: JSON.stringify(candidates.map((task) => task.id)) }) as never[];
      const deletable = deletableOfBatch(candidates, edges);
      if (deletable.length === 0) return { busy: false, deleted: 0, next };
      const ids = JSON.stringify(deletable);
      for (const [children, chunk] of [
        [statements.deleteLogs, RETENTION_CHUNKS.logs],
        [statements.deleteResults, RETENTION_CHUNKS.results],
        [statements.deleteRetries, RETENTION_CHUNKS.retries],
        [statements.deleteWebhookDeliveries, RETENTION_CHUNKS.webhookDeliveries],
        [statements.deleteWebhookMessages, RETENTION_CHUNKS.webhookMessages],
      ] as const) {
        // A full chunk may leave more: the next call goes on from the same cursor.
        if (children.run({ ids, chunk }).changes >= chunk) return { busy: false, deleted: 0, next: after };
      }
      statements.deleteDependencies.run({ ids });
      statements.deleteDependedOn.run({ ids });
      const deleted = statements.deleteTasks.run({ ids }).changes;
      return { busy: false, deleted, next };
    });
    return run.immediate();
  }
}
