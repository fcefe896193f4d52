import type Database from 'better-sqlite3';
import type { Task } from '../../../domain/types.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { preparedOnce } from './statements.js';

export const DEPENDENCY_FAILED = 'DEPENDENCY_FAILED';

export const dependentsStatements = preparedOnce((sqlite) => ({
  releaseDependents: sqlite.prepare(
    `UPDATE tasks SET state = 'PENDING', available_at = max(available_at, @now)
     WHERE state = 'SUSPENDED'
       AND id IN (SELECT task_id FROM task_dependencies
         WHERE depends_on_id IN (SELECT value FROM json_each(@taskIds)))
       AND NOT EXISTS (
         SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
         WHERE d.task_id = tasks.id AND t.state <> 'SUCCEEDED')
     RETURNING ${TASK_COLUMNS}`,
  ),
  failDependents: sqlite.prepare(
    `UPDATE tasks SET state = 'FAILED', error_code = '${DEPENDENCY_FAILED}', error_message = @message,
       date_completed = @now
     WHERE state = 'SUSPENDED'
       AND id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = @taskId)
     RETURNING ${TASK_COLUMNS}`,
  ),
}));

export function releaseDependents(sqlite: Database.Database, succeeded: readonly Task[], now: number, changed: Task[]): void {
  if (succeeded.length === 0) return;
  const taskIds = JSON.stringify(succeeded.map((task) => task.id));
  changed.push(...(dependentsStatements(sqlite).releaseDependents.all({ taskIds, now }) as never[]).map(toTask));
}

/** Releases the dependents of a task that succeeded, or fails them (transitively) when it did not. */
export function settleDependents(sqlite: Database.Database, task: Task, now: number, changed: Task[]): void {
  if (task.state === 'SUCCEEDED') {
    releaseDependents(sqlite, [task], now, changed);
    return;
  }
  if (task.state !== 'FAILED' && task.state !== 'CANCELLED') return;
  const failing = [task.id];
  while (failing.length > 0) {
    const taskId = failing.pop()!;
    const message = `Task it depends on ended ${taskId === task.id ? task.state : 'FAILED'}.`;
    const dependents = (dependentsStatements(sqlite).failDependents.all({ taskId, message, now }) as never[]).map(toTask);
    for (const dependent of dependents) {
      changed.push(dependent);
      failing.push(dependent.id);
    }
  }
}
