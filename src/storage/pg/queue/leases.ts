import type { Task } from '../../../domain/types.js';
import type { PgDatabase } from '../database.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { settleDependents } from './dependents.js';
import { statement } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';

const statements = {
  renewLeases: statement(
    'renewLeases',
    `UPDATE tasks SET lease_expires_at = $3
     WHERE id = ANY($2::bigint[]) AND state = 'PROCESSING' AND lease_owner = $1
     RETURNING id, cancel_requested AS "cancelRequested"`,
  ),
  // SKIP LOCKED: a task another process is reclaiming is its business; each task changes once. NO KEY
  // UPDATE (here and in the claim) is the lock the update takes anyway: a worker inserting the task's
  // logs (KEY SHARE through the foreign key) does not make it skipped.
  requeueExpired: statement(
    'requeueExpired',
    `UPDATE tasks SET state = 'PENDING', available_at = $1, lease_owner = NULL, lease_expires_at = NULL
     WHERE id IN (
       SELECT id FROM tasks
       WHERE state = 'PROCESSING' AND lease_expires_at <= $1 AND attempts < max_attempts AND NOT cancel_requested
       FOR NO KEY UPDATE SKIP LOCKED)
     RETURNING ${TASK_COLUMNS}`,
  ),
  failExpired: statement(
    'failExpired',
    `UPDATE tasks SET
       state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'FAILED' END,
       error_code = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'WORKER_LOST' END,
       error_message = CASE WHEN cancel_requested THEN 'Cancelled on request.'
         ELSE 'The worker running the last attempt stopped before it finished.' END,
       date_completed = $1, lease_owner = NULL, lease_expires_at = NULL
     WHERE id IN (
       SELECT id FROM tasks WHERE state = 'PROCESSING' AND lease_expires_at <= $1 FOR NO KEY UPDATE SKIP LOCKED)
     RETURNING ${TASK_COLUMNS}`,
  ),
};

export async function renewLeases(
  database: PgDatabase,
  owner: string,
  taskIds: readonly number[],
  until: number,
): Promise<{ held: number[]; cancelRequested: number[] }> {
  const { rows } = await database.pool.query(statements.renewLeases([owner, taskIds, until]));
  const renewed = rows as { id: number; cancelRequested: boolean }[];
  return { held: renewed.map((row) => row.id), cancelRequested: renewed.filter((row) => row.cancelRequested).map((row) => row.id) };
}

export async function reclaimExpiredLeases(database: PgDatabase, now: number): Promise<Task[]> {
  return database.transaction(async (client): Promise<Task[]> => {
    const changed = ((await client.query(statements.requeueExpired([now]))).rows as never[]).map(toTask);
    const failed = ((await client.query(statements.failExpired([now]))).rows as never[]).map(toTask);
    for (const task of failed) {
      changed.push(task);
      await settleDependents(client, task, now, changed);
    }
    await writeWebhookMessages(client, database, completions(changed), now);
    return changed;
  });
}
