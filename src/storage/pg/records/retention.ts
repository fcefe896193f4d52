import { TERMINAL_STATES } from '../../../domain/types.js';
import type { RetentionBatch, RetentionCursor } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { deletableOfBatch, RETENTION_CHUNKS } from '../../retention.js';

/**
 * Tasks per transaction: a commit waits for its WAL to reach the disk, which costs more than the
 * deletes of a batch (bench/bulk.ts), and the event loop runs meanwhile.
 */
export const RETENTION_BATCH_SIZE = 500;

const TERMINAL = TERMINAL_STATES.map((state) => `'${state}'`).join(', ');

/**
 * Held for each batch's transaction: a process that cannot take it leaves the sweep to the one
 * that has it, so that one process at a time deletes, however many run.
 */
const RETENTION_LOCK = 0x74617274; // "tart"

const statements = {
  lock: { name: 'records.retention.lock', text: `SELECT pg_try_advisory_xact_lock(${RETENTION_LOCK}) AS locked` },
  // SKIP LOCKED: a task a retry holds now is passed over; if it is still expired, a later sweep takes it.
  candidates: {
    name: 'records.retention.candidates',
    text: `SELECT id, date_completed AS "dateCompleted" FROM tasks
      WHERE date_completed IS NOT NULL AND date_completed < $1
        AND (date_completed, id) > ($2::bigint, $3::bigint) AND state IN (${TERMINAL})
      ORDER BY date_completed, id LIMIT $4
      FOR UPDATE SKIP LOCKED`,
  },
  dependents: {
    name: 'records.retention.dependents',
    text: `SELECT task_id AS "taskId", depends_on_id AS "dependsOnId" FROM task_dependencies WHERE depends_on_id = ANY($1::bigint[])`,
  },
  deleteLogs: {
    name: 'records.retention.deleteLogs',
    text: `DELETE FROM task_logs WHERE id = ANY(ARRAY(SELECT id FROM task_logs WHERE task_id = ANY($1::bigint[]) LIMIT $2))`,
  },
  deleteResults: {
    name: 'records.retention.deleteResults',
    text: `DELETE FROM task_results WHERE id = ANY(ARRAY(SELECT id FROM task_results WHERE task_id = ANY($1::bigint[]) LIMIT $2))`,
  },
  // Attempts before their messages, which they refer to.
  deleteWebhookDeliveries: {
    name: 'records.retention.deleteWebhookDeliveries',
    text: `DELETE FROM webhook_deliveries WHERE id = ANY(ARRAY(SELECT id FROM webhook_deliveries WHERE task_id = ANY($1::bigint[]) LIMIT $2))`,
  },
  deleteWebhookMessages: {
    name: 'records.retention.deleteWebhookMessages',
    text: `DELETE FROM webhook_messages WHERE id = ANY(ARRAY(SELECT id FROM webhook_messages WHERE task_id = ANY($1::bigint[]) LIMIT $2))`,
  },
  deleteRetries: {
    name: 'records.retention.deleteRetries',
    text: `DELETE FROM task_retries WHERE id = ANY(ARRAY(SELECT id FROM task_retries WHERE task_id = ANY($1::bigint[]) LIMIT $2))`,
  },
  deleteDependencies: {
    name: 'records.retention.deleteDependencies',
    text: `DELETE FROM task_dependencies WHERE task_id = ANY($1::bigint[]) OR depends_on_id = ANY($1::bigint[])`,
  },
  deleteTasks: { name: 'records.retention.deleteTasks', text: `DELETE FROM tasks WHERE id = ANY($1::bigint[])` },
};

/** Retention: terminal tasks past their time are deleted with everything that refers to them. */
export class RetentionRecords {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }

  async deleteExpiredTasks(completedBefore: number, after: RetentionCursor): Promise<RetentionBatch> {
    const limit = RETENTION_BATCH_SIZE;
    return this.#database.transaction(async (client): Promise<RetentionBatch> => {
      const lock = await client.query<{ locked: boolean }>(statements.lock);
      if (!lock.rows[0]?.locked) return { busy: true };
      const { rows: candidates } = await client.query<RetentionCursor>({
        ...statements.candidates,
        values: [completedBefore, after.dateCompleted, after.id, limit],
      });
      if (candidates.length === 0) return { busy: false, deleted: 0, next: null };
      const last = candidates.at(-1)!;
      const next = candidates.length < limit ? null : { dateCompleted: last.dateCompleted, id: last.id };
      const { rows: edges } = await client.query<{ taskId: number; dependsOnId: number }>({
        ...statements.dependents,
        values: [candidates.map((task) => task.id)],
      });
      const deletable = deletableOfBatch(candidates, edges);
      if (deletable.length === 0) return { busy: false, deleted: 0, next };
      for (const [children, chunk] of [
        [statements.deleteLogs, RETENTION_CHUNKS.logs],
        [statements.deleteResults, RETENTION_CHUNKS.results],
        [statements.deleteRetries, RETENTION_CHUNKS.retries],
        [statements.deleteWebhookDeliveries, RETENTION_CHUNKS.webhookDeliveries],
        [statements.deleteWebhookMessages, RETENTION_CHUNKS.webhookMessages],
      ] as const) {
        // A full chunk may leave more: the next call goes on from the same cursor.
        const removed = await client.query({ ...children, values: [deletable, chunk] });
        if ((removed.rowCount ?? 0) >= chunk) return { busy: false, deleted: 0, next: after };
      }
      await client.query({ ...statements.deleteDependencies, values: [deletable] });
      const removed = await client.query({ ...statements.deleteTasks, values: [deletable] });
      return { busy: false, deleted: removed.rowCount ?? 0, next };
    });
  }
}
