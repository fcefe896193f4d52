import { MAX_RETRIES_PER_TASK } from '../../../domain/api.js';
import type { Task } from '../../../domain/types.js';
import type { RetryResult } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { DEPENDENCY_FAILED } from './dependents.js';
import { statement } from './statements.js';

// Real-time calls are not queued: they are called again, not retried.
const RETRYABLE = `state IN ('FAILED', 'CANCELLED') AND execution = 'ASYNCHRONOUS' AND retries < ${MAX_RETRIES_PER_TASK}`;

// A task goes back only when none of its dependencies ended without succeeding: it could never run.
const NO_FAILED_DEPENDENCY = `NOT EXISTS (
  SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
  WHERE d.task_id = tasks.id AND t.state IN ('FAILED', 'CANCELLED'))`;

// Every statement takes the whole batch: a few statements per batch however many tasks, each
// locking its rows in id order, so that two bulk retries sharing tasks wait rather than deadlock.
const statements = {
  lockRetryable: statement(
    'lockRetryable',
    `SELECT id, NOT EXISTS (
         SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
         WHERE d.task_id = tasks.id AND t.state <> 'SUCCEEDED') AS ready
     FROM tasks WHERE id = ANY($1::bigint[]) AND organisation_id = $2 AND ${RETRYABLE} AND ${NO_FAILED_DEPENDENCY}
     ORDER BY id FOR NO KEY UPDATE OF tasks`,
  ),
  lockDependentsToRevive: statement(
    'lockDependentsToRevive',
    `SELECT id FROM tasks
     WHERE id = ANY(ARRAY(SELECT task_id FROM task_dependencies WHERE depends_on_id = ANY($1::bigint[])))
       AND organisation_id = $2 AND ${RETRYABLE} AND error_code = '${DEPENDENCY_FAILED}'
       AND ${NO_FAILED_DEPENDENCY}
     ORDER BY id FOR NO KEY UPDATE OF tasks`,
  ),
  recordRuns: statement(
    'recordRuns',
    `INSERT INTO task_retries (task_id, key_id, state, error_code, error_message, attempts, date_started, date_completed, date_retried)
     SELECT id, $2, state, error_code, error_message, attempts, date_started, coalesce(date_completed, $3), $3
     FROM tasks WHERE id = ANY($1::bigint[]) AND ${RETRYABLE} ORDER BY id`,
  ),
  // Attempts keep counting across runs, so that an outcome of an attempt of an earlier run (a worker
  // that lost its lease) can never match the task's current attempt; the run's budget is added on top.
  putBack: statement(
    'putBack',
    `UPDATE tasks SET state = CASE WHEN id = ANY($2::bigint[]) THEN 'PENDING' ELSE 'SUSPENDED' END,
       error_code = NULL, error_message = NULL, date_completed = NULL, progress = NULL,
       cancel_requested = false, result_retrieved = false, retrieval_key_hash = NULL, lease_owner = NULL,
       lease_expires_at = NULL, available_at = GREATEST(coalesce(run_at, 0), $3), retries = retries + 1,
       attempt_budget = coalesce(attempt_budget, max_attempts), max_attempts = attempts + coalesce(attempt_budget, max_attempts)
     WHERE id = ANY($1::bigint[]) AND ${RETRYABLE}
     RETURNING ${TASK_COLUMNS}`,
  ),
};

export async function retry(
  database: PgDatabase,
  organisationId: number,
  keyId: number,
  taskIds: readonly number[],
  now: number,
): Promise<RetryResult> {
  return database.transaction(async (client): Promise<RetryResult> => {
    /** Records the runs of the tasks, locked already, and puts them back; `ready` ones PENDING, the others SUSPENDED. */
    const putBack = async (ids: number[], ready: number[]): Promise<Task[]> => {
      await client.query(statements.recordRuns([ids, keyId, now]));
      const { rows } = await client.query(statements.putBack([ids, ready, now]));
      return (rows as never[]).map(toTask).sort((a, b) => a.id - b.id);
    };
    const locked = await client.query(statements.lockRetryable([[...taskIds], organisationId]));
    const found = locked.rows as { id: number; ready: boolean }[];
    if (found.length === 0) return { retried: [], changed: [] };
    const retried = await putBack(
      found.map((row) => row.id),
      found.filter((row) => row.ready).map((row) => row.id),
    );
    const changed = [...retried];
    // Dependents come back level by level: each level's check sees the one before it back in the queue.
    let level = retried.map((task) => task.id);
    while (level.length > 0) {
      const dependents = await client.query(statements.lockDependentsToRevive([level, organisationId]));
      const ids = (dependents.rows as { id: number }[]).map((row) => row.id);
      if (ids.length === 0) break;
      const revived = await putBack(ids, []);
      changed.push(...revived);
      level = revived.map((task) => task.id);
    }
    return { retried, changed };
  });
}
