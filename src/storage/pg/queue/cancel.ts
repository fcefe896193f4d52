import type { CancelManyResult, CancelResult } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { settleDependents } from './dependents.js';
import { statement } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';

const statements = {
  cancelWaiting: statement(
    'cancelWaiting',
    `UPDATE tasks SET state = 'CANCELLED', error_code = 'CANCELLED', error_message = 'Cancelled on request.',
       date_completed = $3
     WHERE id = $1 AND organisation_id = $2 AND state IN ('PENDING', 'SUSPENDED')
     RETURNING ${TASK_COLUMNS}`,
  ),
  requestCancel: statement(
    'requestCancel',
    `UPDATE tasks SET cancel_requested = true
     WHERE id = $1 AND organisation_id = $2 AND state = 'PROCESSING'
     RETURNING ${TASK_COLUMNS}`,
  ),
  findTask: statement('findTask', `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1 AND organisation_id = $2`),
};

export async function cancel(database: PgDatabase, organisationId: number, taskId: number, now: number): Promise<CancelResult> {
  return database.transaction(async (client): Promise<CancelResult> => {
    const cancelled = await client.query(statements.cancelWaiting([taskId, organisationId, now]));
    if (cancelled.rows.length > 0) {
      const task = toTask(cancelled.rows[0] as never);
      const changed = [task];
      await settleDependents(client, task, now, changed);
      await writeWebhookMessages(client, database, completions(changed), now);
      return { outcome: 'cancelled', changed };
    }
    const requested = await client.query(statements.requestCancel([taskId, organisationId]));
    if (requested.rows.length > 0) return { outcome: 'requested', task: toTask(requested.rows[0] as never) };
    const current = await client.query(statements.findTask([taskId, organisationId]));
    return current.rows.length > 0 ? { outcome: 'terminal', task: toTask(current.rows[0] as never) } : { outcome: 'not-found' };
  });
}

// The many-task forms lock their rows in id order: two bulk cancels sharing tasks wait for each
// other rather than deadlock.
const manyStatements = {
  cancelWaitingMany: statement(
    'cancelWaitingMany',
    `UPDATE tasks SET state = 'CANCELLED', error_code = 'CANCELLED', error_message = 'Cancelled on request.',
       date_completed = $3
     WHERE id IN (
       SELECT id FROM tasks WHERE id = ANY($1::bigint[]) AND organisation_id = $2 AND state IN ('PENDING', 'SUSPENDED')
       ORDER BY id FOR NO KEY UPDATE)
     RETURNING ${TASK_COLUMNS}`,
  ),
  requestCancelMany: statement(
    'requestCancelMany',
    `UPDATE tasks SET cancel_requested = true
     WHERE id IN (
       SELECT id FROM tasks WHERE id = ANY($1::bigint[]) AND organisation_id = $2 AND state = 'PROCESSING'
       ORDER BY id FOR NO KEY UPDATE)
     RETURNING ${TASK_COLUMNS}`,
  ),
  withDependents: statement(
    'withDependents',
    `SELECT DISTINCT depends_on_id AS id FROM task_dependencies WHERE depends_on_id = ANY($1::bigint[])`,
  ),
};

export async function cancelMany(
  database: PgDatabase,
  organisationId: number,
  taskIds: readonly number[],
  now: number,
): Promise<CancelManyResult> {
  return database.transaction(async (client): Promise<CancelManyResult> => {
    const ids = [...taskIds];
    const cancelledRows = await client.query(manyStatements.cancelWaitingMany([ids, organisationId, now]));
    const cancelled = (cancelledRows.rows as never[]).map(toTask).sort((a, b) => a.id - b.id);
    const changed = [...cancelled];
    if (cancelled.length > 0) {
      // Only the tasks that have dependents cost a statement each.
      const { rows } = await client.query(manyStatements.withDependents([cancelled.map((task) => task.id)]));
      const depended = new Set((rows as { id: number }[]).map((row) => row.id));
      for (const task of cancelled) if (depended.has(task.id)) await settleDependents(client, task, now, changed);
    }
    const requested = await client.query(manyStatements.requestCancelMany([ids, organisationId]));
    await writeWebhookMessages(client, database, completions(changed), now);
    return { cancelled, requested: (requested.rows as never[]).map(toTask), changed };
  });
}
