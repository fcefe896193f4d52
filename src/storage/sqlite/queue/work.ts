import type Database from 'better-sqlite3';
import { isTerminal, type Task } from '../../../domain/types.js';
import type { Claim, WorkBatch, WorkReport } from '../../contract.js';
import { levelNumber, TASK_COLUMNS, toTask, toTaskLog, toTaskResult } from '../../rows.js';
import type { WaitingOrganisations } from '../../fair-share.js';
import { claimTasks } from './claim.js';
import { releaseDependents, settleDependents } from './dependents.js';
import { preparedOnce } from './statements.js';
import { tasksOf, writeWebhookMessages } from './webhooks.js';
import { tasksAsLeft, unreturnedIds, workChanges } from '../../webhook-outbox.js';

const ACTIVE_TO_TERMINAL_GUARD = `state = 'PROCESSING' AND attempts = @attempt`;

export const workStatements = preparedOnce((sqlite) => ({
  insertLogs: sqlite.prepare(
    `INSERT INTO task_logs (task_id, level, message, source, timestamp)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)
     RETURNING id, task_id AS taskId, level, message, source, timestamp`,
  ),
  insertResults: sqlite.prepare(
    `INSERT INTO task_results (task_id, name, content_type, size, data, date_created)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?)
     RETURNING id, task_id AS taskId, name, content_type AS contentType, size, retrieved,
       date_created AS dateCreated`,
  ),
  succeed: sqlite.prepare(
    `UPDATE tasks SET state = 'SUCCEEDED', error_code = NULL, error_message = NULL, date_completed = @now,
       progress = 1
     FROM (SELECT value ->> 0 AS taskId, value ->> 1 AS attempt FROM json_each(@leases)) AS lease
     WHERE tasks.id = lease.taskId AND tasks.state = 'PROCESSING' AND tasks.attempts = lease.attempt
     RETURNING ${TASK_COLUMNS}`,
  ),
  setProgress: sqlite.prepare(
    `UPDATE tasks SET progress = @progress WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
     RETURNING ${TASK_COLUMNS}`,
  ),
  finish: sqlite.prepare(
    `UPDATE tasks SET state = @state, error_code = @errorCode, error_message = @errorMessage,
       date_completed = @now
     WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
     RETURNING ${TASK_COLUMNS}`,
  ),
  // A cancel requested while the attempt ran wins over its retry.
  retry: sqlite.prepare(
    `UPDATE tasks SET
       state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'PENDING' END,
       error_code = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE @errorCode END,
       error_message = CASE WHEN cancel_requested THEN 'Cancelled on request.' ELSE @errorMessage END,
       date_completed = CASE WHEN cancel_requested THEN @now ELSE NULL END,
       available_at = @retryAt
     WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
     RETURNING ${TASK_COLUMNS}`,
  ),
  release: sqlite.prepare(
    `UPDATE tasks SET state = 'PENDING', attempts = attempts - 1, available_at = @now
     WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
     RETURNING ${TASK_COLUMNS}`,
  ),
  // Delivery on the CHANNEL protocol may end before the task does: then the finish completes it.
  markChannelDelivered: sqlite.prepare(
    `UPDATE tasks SET result_retrieved = 1
     WHERE id = ? AND retrieval_protocol = 'CHANNEL' AND result_retrieved = 0
       AND EXISTS (SELECT 1 FROM task_results WHERE task_id = tasks.id)
       AND NOT EXISTS (SELECT 1 FROM task_results WHERE task_id = tasks.id AND retrieved = 0)
     RETURNING result_retrieved AS resultRetrieved`,
  ),
}));

/** Rows of [taskId, level number, message, source, timestamp]. */
export function insertLogs(sqlite: Database.Database, logs: readonly unknown[][]): unknown[] {
  return workStatements(sqlite).insertLogs.all(JSON.stringify(logs));
}

export function work(sqlite: Database.Database, batch: WorkBatch, claim: Claim, now: number, waiting: WaitingOrganisations): WorkReport {
  const statements = workStatements(sqlite);
  const run = sqlite.transaction((): WorkReport => {
    const logs =
      batch.logs.length === 0
        ? []
        : (
            insertLogs(
              sqlite,
              batch.logs.map((log) => [log.taskId, levelNumber(log.level), log.message, log.source, log.timestamp]),
            ) as never[]
          ).map(toTaskLog);
    const results =
      batch.results.length === 0
        ? []
        : (
            statements.insertResults.all(
              JSON.stringify(
                batch.results.map((result) => [
                  result.taskId,
                  result.name,
                  result.contentType,
                  Buffer.byteLength(result.data),
                  result.data,
                  result.timestamp,
                ]),
              ),
            ) as never[]
          ).map(toTaskResult);
    const progressed: WorkReport['progressed'] = [];
    const progressedTasks: Task[] = [];
    for (const update of batch.progress) {
      const row = statements.setProgress.get(update);
      if (!row) continue;
      const task = toTask(row as never);
      progressedTasks.push(task);
      progressed.push({ taskId: update.taskId, organisationId: task.organisationId, progress: update.progress });
    }
    const changed: Task[] = [];
    const succeeded = batch.outcomes.filter((outcome) => outcome.state === 'SUCCEEDED');
    if (succeeded.length > 0) {
      const leases = JSON.stringify(succeeded.map((outcome) => [outcome.taskId, outcome.attempt]));
      const finished = (statements.succeed.all({ leases, now }) as never[]).map(toTask);
      changed.push(...finished);
      releaseDependents(sqlite, finished, now, changed);
    }
    for (const outcome of batch.outcomes) {
      if (outcome.state === 'SUCCEEDED') continue;
      const lease = { taskId: outcome.taskId, attempt: outcome.attempt };
      let record: unknown;
      if (outcome.state === 'RELEASED') {
        record = statements.release.get({ ...lease, now });
      } else if (outcome.state === 'PENDING') {
        record = statements.retry.get({
          ...lease,
          errorCode: outcome.error.code,
          errorMessage: outcome.error.message,
          retryAt: outcome.retryAt,
          now,
        });
      } else {
        record = statements.finish.get({
          ...lease,
          state: outcome.state,
          errorCode: outcome.error.code,
          errorMessage: outcome.error.message,
          now,
        });
      }
      if (!record) continue;
      const task = toTask(record as never);
      changed.push(task);
      settleDependents(sqlite, task, now, changed);
    }
    for (const task of changed) {
      if (task.retrievalProtocol === 'CHANNEL' && isTerminal(task.state)) {
        if (statements.markChannelDelivered.get(task.id)) task.resultRetrieved = true;
      }
    }
    const claimed = claimTasks(sqlite, claim, now, waiting);
    // The tasks whose results came: mostly tasks this turn also finished, as their update returned them.
    const resultIds = results.map((result) => result.taskId);
    const latest = [...progressedTasks, ...changed, ...claimed];
    const resulted = tasksAsLeft(resultIds, latest, tasksOf(sqlite, unreturnedIds(resultIds, latest)));
    writeWebhookMessages(sqlite, workChanges({ resulted, progressed: progressedTasks, changed, claimed }), now);
    return { logs, results, progressed, changed, claimed };
  });
  return run.immediate();
}
