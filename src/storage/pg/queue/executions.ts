import type { Task } from '../../../domain/types.js';
import type { ExecutionRecord } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { levelNumber, taskOfExecution } from '../../rows.js';
import { statement } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';
import { insertLogs } from './work.js';

const statements = {
  // A sequence never hands out an id twice: the ids are ours alone, whoever else inserts meanwhile.
  reserveTaskIds: statement(
    'reserveTaskIds',
    `SELECT nextval(pg_get_serial_sequence('tasks', 'id')) AS id FROM generate_series(1, $1)`,
  ),
  insertExecutions: statement(
    'insertExecutions',
    `INSERT INTO tasks (id, organisation_id, key_id, service, type, params, state, priority, attempts,
       max_attempts, timeout_ms, progress, error_code, error_message, retrieval_protocol, result_retrieved,
       execution, allocation_id, available_at, date_created, date_started, date_completed)
     SELECT id, organisation_id, key_id, service, type, params, state, 0, 1, 1, timeout_ms, progress, error_code,
       error_message, retrieval_protocol, result_retrieved, 'REALTIME', allocation_id, date_created, date_created,
       date_created, date_completed
     FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[],
       $9::float8[], $10::text[], $11::text[], $12::text[], $13::boolean[], $14::int[], $15::bigint[], $16::bigint[])
       AS input (id, organisation_id, key_id, service, type, params, state, timeout_ms, progress, error_code,
         error_message, retrieval_protocol, result_retrieved, allocation_id, date_created, date_completed)`,
  ),
  insertDeliveredResults: statement(
    'insertDeliveredResults',
    `INSERT INTO task_results (task_id, name, content_type, size, data, retrieved, date_created, date_retrieved)
     SELECT task_id, name, content_type, size, NULL, true, timestamp, timestamp
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::bigint[])
       AS input (task_id, name, content_type, size, timestamp)`,
  ),
  countExecutions: statement(
    'countExecutions',
    `UPDATE allocations SET executions = allocations.executions + counted.calls
     FROM unnest($1::int[], $2::int[]) AS counted(id, calls) WHERE allocations.id = counted.id`,
  ),
};

export async function reserveTaskIds(database: PgDatabase, count: number): Promise<number[]> {
  if (count <= 0) return [];
  const { rows } = await database.pool.query(statements.reserveTaskIds([count]));
  return (rows as { id: number }[]).map((row) => row.id);
}

export async function recordExecutions(database: PgDatabase, records: readonly ExecutionRecord[]): Promise<Task[]> {
  if (records.length === 0) return [];
  return database.transaction(async (client): Promise<Task[]> => {
    const columns: unknown[][] = Array.from({ length: 16 }, () => []);
    const logs: unknown[][] = Array.from({ length: 5 }, () => []);
    const results: unknown[][] = Array.from({ length: 5 }, () => []);
    const perAllocation = new Map<number, number>();
    for (const record of records) {
      const row = [
        record.taskId,
        record.organisationId,
        record.keyId,
        record.service,
        record.type,
        JSON.stringify(record.params),
        record.state,
        record.timeoutMs,
        record.progress,
        record.error?.code ?? null,
        record.error?.message ?? null,
        record.retrievalProtocol,
        record.results.length > 0,
        record.allocationId,
        record.dateCreated,
        record.dateCompleted,
      ];
      for (let column = 0; column < row.length; column++) columns[column]!.push(row[column]);
      for (const log of record.logs) {
        logs[0]!.push(record.taskId);
        logs[1]!.push(levelNumber(log.level));
        logs[2]!.push(log.message);
        logs[3]!.push(log.source);
        logs[4]!.push(log.timestamp);
      }
      for (const result of record.results) {
        results[0]!.push(record.taskId);
        results[1]!.push(result.name);
        results[2]!.push(result.contentType);
        results[3]!.push(result.size);
        results[4]!.push(record.dateCompleted);
      }
      perAllocation.set(record.allocationId, (perAllocation.get(record.allocationId) ?? 0) + 1);
    }
    await client.query(statements.insertExecutions(columns));
    if (logs[0]!.length > 0) await insertLogs(client, logs);
    if (results[0]!.length > 0) await client.query(statements.insertDeliveredResults(results));
    await client.query(statements.countExecutions([[...perAllocation.keys()], [...perAllocation.values()]]));
    const recorded = records.map(taskOfExecution);
    await writeWebhookMessages(client, database, completions(recorded), Date.now());
    return recorded;
  });
}
