import type Database from 'better-sqlite3';
import type { CancelManyResult, CancelResult } from '../../contract.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { settleDependents } from './dependents.js';
import { preparedOnce } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';

export const cancelStatements = preparedOnce((sqlite) => ({
  cancelWaiting: sqlite.prepare(
    `UPDATE tasks SET state = 'CANCELLED', error_code = 'CANCELLED', error_message = 'Cancelled on request.',
       date_completed = @now
     WHERE id = @taskId AND organisation_id = @organisationId AND state IN ('PENDING', 'SUSPENDED')
     RETURNING ${TASK_COLUMNS}`,
  ),
  requestCancel: sqlite.prepare(
    `UPDATE tasks SET cancel_requested = 1
     WHERE id = @taskId AND organisation_id = @organisationId AND state = 'PROCESSING'
     RETURNING ${TASK_COLUMNS}`,
  ),
  findTask: sqlite.prepare(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ? AND organisation_id = ?`),
}));

export function cancel(sqlite: Database.Database, organisationId: number, taskId: number, now: number): CancelResult {
  const statements = cancelStatements(sqlite);
  const run = sqlite.transaction((): CancelResult => {
    const cancelled = statements.cancelWaiting.get({ taskId, organisationId, now });
    if (cancelled) {
      const task = toTask(cancelled as never);
      const changed = [task];
      settleDependents(sqlite, task, now, changed);
      writeWebhookMessages(sqlite, completions(changed), now);
      return { outcome: 'cancelled', changed };
    }
    const requested = statements.requestCancel.get({ taskId, organisationId });
    if (requested) return { outcome: 'requested', task: toTask(requested as never) };
    const current = statements.findTask.get(taskId, organisationId);
    return current ? { outcome: 'terminal', task: toTask(current as never) } : { outcome: 'not-found' };
  });
  return run.immediate();
}

export function cancelMany(
  sqlite: Database.Database,
  organisationId: number,
  taskIds: readonly number[],
  now: number,
): CancelManyResult {
  const statements = cancelStatements(sqlite);
  const run = sqlite.transaction((): CancelManyResult => {
    const result: CancelManyResult = { cancelled: [], requested: [], changed: [] };
    // In id order, as on PostgreSQL, where it orders the locks: both stores give the same outcome.
    for (const taskId of [...taskIds].sort((a, b) => a - b)) {
      const cancelled = statements.cancelWaiting.get({ taskId, organisationId, now });
      if (cancelled) {
        const task = toTask(cancelled as never);
        result.cancelled.push(task);
        result.changed.push(task);
        settleDependents(sqlite, task, now, result.changed);
        continue;
      }
      const requested = statements.requestCancel.get({ taskId, organisationId });
      if (requested) result.requested.push(toTask(requested as never));
    }
    writeWebhookMessages(sqlite, completions(result.changed), now);
    return result;
  });
  return run.immediate();
}
