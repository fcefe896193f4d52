import type pg from 'pg';
import type { Task } from '../../../domain/types.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { statement } from './statements.js';

export const DEPENDENCY_FAILED = 'DEPENDENCY_FAILED';

const statements = {
  // Two dependencies of one task may succeed in two transactions at once, each seeing the other
  // still running. Locking the dependents first orders them: the second waits for the first to
  // commit, and its releaseDependents, a later statement, sees both dependencies succeeded.
  lockSuspendedDependents: statement(
    'lockSuspendedDependents',
    // The dependents' ids as an array first, then read by key: a semi-join would scan the tasks
    // while the table has no statistics yet.
    `SELECT id FROM tasks
     WHERE id = ANY(ARRAY(SELECT task_id FROM task_dependencies WHERE depends_on_id = ANY($1::bigint[])))
       AND state = 'SUSPENDED'
     ORDER BY id FOR NO KEY UPDATE`,
  ),
  releaseDependents: statement(
    'releaseDependents',
    `UPDATE tasks SET state = 'PENDING', available_at = GREATEST(available_at, $2)
     WHERE id = ANY($1::bigint[]) AND state = 'SUSPENDED'
       AND NOT EXISTS (
         SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
         WHERE d.task_id = tasks.id AND t.state <> 'SUCCEEDED')
     RETURNING ${TASK_COLUMNS}`,
  ),
  failDependents: statement(
    'failDependents',
    `UPDATE tasks SET state = 'FAILED', error_code = '${DEPENDENCY_FAILED}', error_message = $2, date_completed = $3
     WHERE state = 'SUSPENDED' AND id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = $1)
     RETURNING ${TASK_COLUMNS}`,
  ),
};

export async function releaseDependents(client: pg.PoolClient, succeeded: readonly Task[], now: number, changed: Task[]): Promise<void> {
  if (succeeded.length === 0) return;
  const locked = await client.query(statements.lockSuspendedDependents([succeeded.map((task) => task.id)]));
  if (locked.rows.length === 0) return;
  const { rows } = await client.query(statements.releaseDependents([(locked.rows as { id: number }[]).map((row) => row.id), now]));
  changed.push(...(rows as never[]).map(toTask));
}

/** Releases the dependents of a task that succeeded, or fails them (transitively) when it did not. */
export async function settleDependents(client: pg.PoolClient, task: Task, now: number, changed: Task[]): Promise<void> {
  if (task.state === 'SUCCEEDED') {
    await releaseDependents(client, [task], now, changed);
    return;
  }
  if (task.state !== 'FAILED' && task.state !== 'CANCELLED') return;
  const failing = [task.id];
  while (failing.length > 0) {
    const taskId = failing.pop()!;
    const message = `Task it depends on ended ${taskId === task.id ? task.state : 'FAILED'}.`;
    const { rows } = await client.query(statements.failDependents([taskId, message, now]));
    for (const dependent of (rows as never[]).map(toTask)) {
      changed.push(dependent);
      failing.push(dependent.id);
    }
  }
}
