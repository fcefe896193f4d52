import type pg from 'pg';
import { isTerminal, type Task } from '../../../domain/types.js';
import type { Claim, WorkBatch, WorkReport } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { levelNumber, TASK_COLUMNS, toTask, toTaskLog, toTaskResult } from '../../rows.js';
import type { WaitingOrganisations } from '../../fair-share.js';
import { claimTasks } from './claim.js';
import { releaseDependents, settleDependents } from './dependents.js';
import { statement } from './statements.js';
import { tasksOf, writeWebhookMessages } from './webhooks.js';
import { tasksAsLeft, unreturnedIds, workChanges } from '../../webhook-outbox.js';

const RESULT_COLUMNS = `id, task_id AS "taskId", name, content_type AS "contentType", size, retrieved,
  date_created AS "dateCreated"`;

const statements = {
  insertLogs: statement(
    'insertLogs',
    `INSERT INTO task_logs (task_id, level, message, source, timestamp)
     SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::bigint[])
     RETURNING id, task_id AS "taskId", level, message, source, timestamp`,
  ),
  insertResults: statement(
    'insertResults',
    `INSERT INTO task_results (task_id, name, content_type, size, data, date_created)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[])
     RETURNING ${RESULT_COLUMNS}`,
  ),
  // `id = ANY($1)` beside the join on the unnested pairs: it lets the planner read the few tasks by
  // their key even while the table has no statistics yet, where it would otherwise scan it.
  succeed: statement(
    'succeed',
    `UPDATE tasks SET state = 'SUCCEEDED', error_code = NULL, error_message = NULL, date_completed = $3,
       progress = 1
     FROM unnest($1::bigint[], $2::int[]) AS lease(task_id, attempt)
     WHERE tasks.id = ANY($1::bigint[]) AND tasks.id = lease.task_id AND tasks.state = 'PROCESSING'
       AND tasks.attempts = lease.attempt
     RETURNING ${TASK_COLUMNS.replace(/^id,/, 'tasks.id,')}`,
  ),
  setProgress: statement(
    'setProgress',
    `UPDATE tasks SET progress = latest.new_progress
     FROM unnest($1::bigint[], $2::int[], $3::float8[]) AS latest(task_id, attempt, new_progress)
     WHERE tasks.id = ANY($1::bigint[]) AND tasks.id = latest.task_id AND tasks.state = 'PROCESSING'
       AND tasks.attempts = latest.attempt
     RETURNING ${TASK_COLUMNS.replace(/^id,/, 'tasks.id,')}`,
  ),
  finish: statement(
    'finish',
    `UPDATE tasks SET state = $3, error_code = $4, error_message = $5, date_completed = $6
     WHERE id = $1 AND state = 'PROCESSING' AND attempts = $2
     RETURNING ${TASK_COLUMNS}`,
  ),
  // A cancel requested while the attempt ran wins over its retry.
  retry: statement(
    'retry',
    `UPDATE tasks SET
       state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'PENDING' END,
       error_code = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE $3 END,
       error_message = CASE WHEN cancel_requested THEN 'Cancelled on request.' ELSE $4 END,
       date_completed = CASE WHEN cancel_requested THEN $5::bigint ELSE NULL END,
       available_at = $6
     WHERE id = $1 AND state = 'PROCESSING' AND attempts = $2
     RETURNING ${TASK_COLUMNS}`,
  ),
  release: statement(
    'release',
    `UPDATE tasks SET state = 'PENDING', attempts = attempts - 1, available_at = $3
     WHERE id = $1 AND state = 'PROCESSING' AND attempts = $2
     RETURNING ${TASK_COLUMNS}`,
  ),
  // Delivery on the CHANNEL protocol may end before the task does: then the finish completes it.
  markChannelDelivered: statement(
    'markChannelDelivered',
    `UPDATE tasks SET result_retrieved = true
     WHERE id = ANY($1::bigint[]) AND retrieval_protocol = 'CHANNEL' AND NOT result_retrieved
       AND EXISTS (SELECT 1 FROM task_results WHERE task_id = tasks.id)
       AND NOT EXISTS (SELECT 1 FROM task_results WHERE task_id = tasks.id AND NOT retrieved)
     RETURNING id`,
  ),
};

/** Columns of taskIds, level numbers, messages, sources, timestamps. */
export async function insertLogs(client: pg.PoolClient, logs: readonly unknown[][]): Promise<unknown[]> {
  return (await client.query(statements.insertLogs([...logs]))).rows;
}

export async function work(
  database: PgDatabase,
  batch: WorkBatch,
  claim: Claim,
  now: number,
  waiting: WaitingOrganisations,
): Promise<WorkReport> {
  return database.transaction(async (client): Promise<WorkReport> => {
    const logs =
      batch.logs.length === 0
        ? []
        : ((await insertLogs(client, [
            batch.logs.map((log) => log.taskId),
            batch.logs.map((log) => levelNumber(log.level)),
            batch.logs.map((log) => log.message),
            batch.logs.map((log) => log.source),
            batch.logs.map((log) => log.timestamp),
          ])) as never[]).map(toTaskLog);
    const results =
      batch.results.length === 0
        ? []
        : ((
            await client.query(
              statements.insertResults([
                batch.results.map((result) => result.taskId),
                batch.results.map((result) => result.name),
                batch.results.map((result) => result.contentType),
                batch.results.map((result) => Buffer.byteLength(result.data)),
                batch.results.map((result) => result.data),
                batch.results.map((result) => result.timestamp),
              ]),
            )
          ).rows as never[]).map(toTaskResult);
    let progressed: WorkReport['progressed'] = [];
    let progressedTasks: Task[] = [];
    if (batch.progress.length > 0) {
      // One row per task, its last update, as if they were applied in turn.
      const latest = [...new Map(batch.progress.map((update) => [update.taskId, update])).values()];
      const { rows } = await client.query(
        statements.setProgress([latest.map((update) => update.taskId), latest.map((update) => update.attempt), latest.map((update) => update.progress)]),
      );
      progressedTasks = (rows as never[]).map(toTask);
      const organisationOf = new Map(progressedTasks.map((task) => [task.id, task.organisationId]));
      progressed = batch.progress
        .filter((update) => organisationOf.has(update.taskId))
        .map((update) => ({ taskId: update.taskId, organisationId: organisationOf.get(update.taskId)!, progress: update.progress }));
    }
    const changed: Task[] = [];
    const succeeded = batch.outcomes.filter((outcome) => outcome.state === 'SUCCEEDED');
    if (succeeded.length > 0) {
      const { rows } = await client.query(
        statements.succeed([succeeded.map((outcome) => outcome.taskId), succeeded.map((outcome) => outcome.attempt), now]),
      );
      const finished = (rows as never[]).map(toTask);
      changed.push(...finished);
      await releaseDependents(client, finished, now, changed);
    }
    for (const outcome of batch.outcomes) {
      if (outcome.state === 'SUCCEEDED') continue;
      let query;
      if (outcome.state === 'RELEASED') {
        query = statements.release([outcome.taskId, outcome.attempt, now]);
      } else if (outcome.state === 'PENDING') {
        query = statements.retry([outcome.taskId, outcome.attempt, outcome.error.code, outcome.error.message, now, outcome.retryAt]);
      } else {
        query = statements.finish([outcome.taskId, outcome.attempt, outcome.state, outcome.error.code, outcome.error.message, now]);
      }
      const { rows } = await client.query(query);
      if (rows.length === 0) continue;
      const task = toTask(rows[0] as never);
      changed.push(task);
      await settleDependents(client, task, now, changed);
    }
    const channelEnded = changed.filter((task) => task.retrievalProtocol === 'CHANNEL' && isTerminal(task.state));
    if (channelEnded.length > 0) {
      const { rows } = await client.query(statements.markChannelDelivered([channelEnded.map((task) => task.id)]));
      const delivered = new Set((rows as { id: number }[]).map((row) => row.id));
      for (const task of channelEnded) if (delivered.has(task.id)) task.resultRetrieved = true;
    }
    const claimed = await claimTasks(client, claim, now, waiting);
    // The tasks whose results came: mostly tasks this turn also finished, as their update returned them.
    const resultIds = results.map((result) => result.taskId);
    const latest = [...progressedTasks, ...changed, ...claimed];
    const resulted = tasksAsLeft(resultIds, latest, await tasksOf(client, unreturnedIds(resultIds, latest)));
    await writeWebhookMessages(client, database, workChanges({ resulted, progressed: progressedTasks, changed, claimed }), now);
    return { logs, results, progressed, changed, claimed };
  });
}
