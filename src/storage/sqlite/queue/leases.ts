import type Database from 'better-sqlite3';
import type { Task } from '../../../domain/types.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { settleDependents } from './dependents.js';
import { preparedOnce } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';

export const leasesStatements = preparedOnce((sqlite) => ({
  renewLeases: sqlite.prepare(
    `UPDATE tasks SET lease_expires_at = @until
     WHERE id IN (SELECT value FROM json_each(@taskIds)) AND state = 'PROCESSING' AND lease_owner = @owner
     RETURNING id, cancel_requested AS cancelRequested`,
  ),
  requeueExpired: sqlite.prepare(
    `UPDATE tasks SET state = 'PENDING', available_at = @now, lease_owner = NULL, lease_expires_at = NULL
     WHERE state = 'PROCESSING' AND lease_expires_at <= @now AND attempts < max_attempts AND cancel_requested = 0
     RETURNING ${TASK_COLUMNS}`,
  ),
  failExpired: sqlite.prepare(
    `UPDATE tasks SET
       state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'FAILED' END,
       error_code = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'WORKER_LOST' END,
       error_message = CASE WHEN cancel_requested THEN 'Cancelled on request.'
         ELSE 'The worker running the last attempt stopped before it finished.' END,
       date_completed = @now, lease_owner = NULL, lease_expires_at = NULL
     WHERE state = 'PROCESSING' AND lease_expires_at <= @now
     RETURNING ${TASK_COLUMNS}`,
  ),
}));

export function renewLeases(
  sqlite: Database.Database,
  owner: string,
  taskIds: readonly number[],
  until: number,
): { held: number[]; cancelRequested: number[] } {
  const rows = leasesStatements(sqlite).renewLeases.all({ owner, taskIds: JSON.stringify(taskIds), until }) as { id: number; cancelRequested: number }[];
  return { held: rows.map((row) => row.id), cancelRequested: rows.filter((row) => row.cancelRequested).map((row) => row.id) };
}

export function reclaimExpiredLeases(sqlite: Database.Database, now: number): Task[] {
  const statements = leasesStatements(sqlite);
  const run = sqlite.transaction((): Task[] => {
    const changed = (statements.requeueExpired.all({ now }) as never[]).map(toTask);
    const failed = (statements.failExpired.all({ now }) as never[]).map(toTask);
    for (const task of failed) {
      changed.push(task);
      settleDependents(sqlite, task, now, changed);
    }
    writeWebhookMessages(sqlite, completions(changed), now);
    return changed;
  });
  return run.immediate();
}
