import type Database from 'better-sqlite3';
import { MAX_RETRIES_PER_TASK } from '../../../domain/api.js';
import type { Task } from '../../../domain/types.js';
import type { RetryResult } from '../../contract.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { DEPENDENCY_FAILED } from './dependents.js';
import { preparedOnce } from './statements.js';

// Real-time calls are not queued: they are called again, not retried.
const RETRYABLE = `state IN ('FAILED', 'CANCELLED') AND execution = 'ASYNCHRONOUS' AND retries < ${MAX_RETRIES_PER_TASK}`;

// A task goes back only when none of its dependencies ended without succeeding: it could never run.
const NO_FAILED_DEPENDENCY = `NOT EXISTS (
  SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
  WHERE d.task_id = tasks.id AND t.state IN ('FAILED', 'CANCELLED'))`;

export const retryStatements = preparedOnce((sqlite) => ({
  findRetryable: sqlite.prepare(
    `SELECT id, NOT EXISTS (
         SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
         WHERE d.task_id = tasks.id AND t.state <> 'SUCCEEDED') AS ready
     FROM tasks WHERE id = @taskId AND organisation_id = @organisationId AND ${RETRYABLE} AND ${NO_FAILED_DEPENDENCY}`,
  ),
  findDependentsToRevive: sqlite.prepare(
    `SELECT id FROM tasks
     WHERE id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = @taskId)
       AND organisation_id = @organisationId AND ${RETRYABLE} AND error_code = '${DEPENDENCY_FAILED}'
       AND ${NO_FAILED_DEPENDENCY}
     ORDER BY id`,
  ),
  recordRun: sqlite.prepare(
    `INSERT INTO task_retries (task_id, key_id, state, error_code, error_message, attempts, date_started, date_completed, date_retried)
     SELECT id, @keyId, state, error_code, error_message, attempts, date_started, coalesce(date_completed, @now), @now
     FROM tasks WHERE id = @taskId AND ${RETRYABLE}`,
  ),
  // Attempts keep counting across runs, so that an outcome of an attempt of an earlier run (a worker
  // that lost its lease) can never match the task's current attempt; the run's budget is added on top.
  putBack: sqlite.prepare(
    `UPDATE tasks SET state = @state, error_code = NULL, error_message = NULL, date_completed = NULL, progress = NULL,
       cancel_requested = 0, result_retrieved = 0, retrieval_key_hash = NULL, lease_owner = NULL, lease_expires_at = NULL,
       available_at = max(coalesce(run_at, 0), @now), retries = retries + 1,
       attempt_budget = coalesce(attempt_budget, max_attempts), max_attempts = attempts + coalesce(attempt_budget, max_attempts)
     WHERE id = @taskId AND ${RETRYABLE}
     RETURNING ${TASK_COLUMNS}`,
  ),
}));

export function retry(
  sqlite: Database.Database,
  organisationId: number,
  keyId: number,
  taskIds: readonly number[],
  now: number,
): RetryResult {
  const statements = retryStatements(sqlite);
  const putBack = (taskId: number, state: 'PENDING' | 'SUSPENDED'): Task => {
    statements.recordRun.run({ taskId, keyId, now });
    return toTask(statements.putBack.get({ taskId, state, now }) as never);
  };
  const run = sqlite.transaction((): RetryResult => {
    const retried: Task[] = [];
    const changed: Task[] = [];
    // In id order, as on PostgreSQL, where it orders the locks: both stores give the same outcome.
    for (const taskId of [...taskIds].sort((a, b) => a - b)) {
      const found = statements.findRetryable.get({ taskId, organisationId }) as { ready: number } | undefined;
      if (!found) continue;
      const task = putBack(taskId, found.ready ? 'PENDING' : 'SUSPENDED');
      retried.push(task);
      changed.push(task);
      const reviving = [taskId];
      while (reviving.length > 0) {
        const dependencyId = reviving.pop()!;
        const dependents = statements.findDependentsToRevive.all({ taskId: dependencyId, organisationId }) as { id: number }[];
        for (const { id } of dependents) {
          changed.push(putBack(id, 'SUSPENDED'));
          reviving.push(id);
        }
      }
    }
    return { retried, changed };
  });
  return run.immediate();
}
