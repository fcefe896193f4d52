import type { CancelResult } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { settleDependents } from './dependents.js';
import { statement } from './statements.js';

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
      return { outcome: 'cancelled', changed };
    }
    const requested = await client.query(statements.requestCancel([taskId, organisationId]));
    if (requested.rows.length > 0) return { outcome: 'requested', task: toTask(requested.rows[0] as never) };
    const current = await client.query(statements.findTask([taskId, organisationId]));
    return current.rows.length > 0 ? { outcome: 'terminal', task: toTask(current.rows[0] as never) } : { outcome: 'not-found' };
  });
}
