import type Database from 'better-sqlite3';
import type { Task } from '../../../domain/types.js';
import type { ExecutionRecord } from '../../contract.js';
import { levelNumber, taskOfExecution } from '../../rows.js';
import { preparedOnce } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';
import { insertLogs } from './work.js';

export const executionsStatements = preparedOnce((sqlite) => ({
  ensureTaskSequence: sqlite.prepare(
    `INSERT INTO sqlite_sequence (name, seq)
     SELECT 'tasks', coalesce((SELECT max(id) FROM tasks), 0)
     WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tasks')`,
  ),
  // AUTOINCREMENT never hands out an id at or below the sequence: the block is ours alone.
  advanceTaskSequence: sqlite.prepare(`UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'tasks' RETURNING seq`),
  // Positional parameters: binding them costs a fraction of binding an object's named ones.
  insertExecution: sqlite.prepare(
    `INSERT INTO tasks (id, organisation_id, key_id, service, type, params, state, priority, attempts,
       max_attempts, timeout_ms, progress, error_code, error_message, retrieval_protocol, result_retrieved,
       execution, allocation_id, available_at, date_created, date_started, date_completed)
     VALUES (?, ?, ?, ?, ?, ?, ?, 0, 1, 1, ?, ?, ?, ?, ?, ?, 'REALTIME', ?, ?, ?, ?, ?)`,
  ),
  insertDeliveredResults: sqlite.prepare(
    `INSERT INTO task_results (task_id, name, content_type, size, data, retrieved, date_created, date_retrieved)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, NULL, 1, value ->> 4, value ->> 4
     FROM json_each(?)`,
  ),
  countExecutions: sqlite.prepare(`UPDATE allocations SET executions = executions + ? WHERE id = ?`),
}));

export function reserveTaskIds(sqlite: Database.Database, count: number): number[] {
  const statements = executionsStatements(sqlite);
  return sqlite
    .transaction(() => {
      statements.ensureTaskSequence.run();
      const { seq } = statements.advanceTaskSequence.get(count) as { seq: number };
      return Array.from({ length: count }, (_, index) => seq - count + 1 + index);
    })
    .immediate();
}

export function recordExecutions(sqlite: Database.Database, records: readonly ExecutionRecord[]): Task[] {
  const statements = executionsStatements(sqlite);
  return sqlite
    .transaction(() => {
      const recorded: Task[] = [];
      const logs: unknown[][] = [];
      const results: unknown[][] = [];
      const perAllocation = new Map<number, number>();
      for (const record of records) {
        statements.insertExecution.run([
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
          record.results.length > 0 ? 1 : 0,
          record.allocationId,
          record.dateCreated,
          record.dateCreated,
          record.dateCreated,
          record.dateCompleted,
        ]);
        recorded.push(taskOfExecution(record));
        for (const log of record.logs) {
          logs.push([record.taskId, levelNumber(log.level), log.message, log.source, log.timestamp]);
        }
        for (const result of record.results) {
          results.push([record.taskId, result.name, result.contentType, result.size, record.dateCompleted]);
        }
        perAllocation.set(record.allocationId, (perAllocation.get(record.allocationId) ?? 0) + 1);
      }
      if (logs.length > 0) insertLogs(sqlite, logs);
      if (results.length > 0) statements.insertDeliveredResults.run(JSON.stringify(results));
      for (const [allocationId, count] of perAllocation) statements.countExecutions.run(count, allocationId);
      writeWebhookMessages(sqlite, completions(recorded), Date.now());
      return recorded;
    })
    .immediate();
}
