import type Database from 'better-sqlite3';
import type { Task } from '../../domain/types.js';
import type { SqliteDatabase } from './database.js';
import type { CancelManyResult, CancelResult, Claim, EnqueueResult, ExecutionRecord, NewTask, QueueStore, RetryResult, ServedActions, StatusRow, WorkBatch, WorkReport } from '../contract.js';
import { cancel, cancelMany, cancelStatements } from './queue/cancel.js';
import { retry, retryStatements } from './queue/retry.js';
import { claimStatements, nextDueAt } from './queue/claim.js';
import { dependentsStatements } from './queue/dependents.js';
import { EnqueueGroups, enqueueStatements } from './queue/enqueue.js';
import { executionsStatements, recordExecutions, reserveTaskIds } from './queue/executions.js';
import { leasesStatements, reclaimExpiredLeases, renewLeases } from './queue/leases.js';
import { pendingByAction, positionsStatements, queuePositions } from './queue/positions.js';
import { statuses, statusesStatements } from './queue/statuses.js';
import { work, workStatements } from './queue/work.js';
import { WaitingOrganisations } from '../fair-share.js';
import type { WebhooksDueNotice } from '../webhook-outbox.js';
import { announceWebhooks, webhookOutboxStatements } from './queue/webhooks.js';

/** The queue's statements, one module per family under queue/; this class only hands each call on. */
export class SqliteQueueStore implements QueueStore {
  // A task's cancel or retry costs some 30 µs here (bench/bulk.ts): a batch holds the loop about 3 ms.
  readonly bulkBatchSize = 100;
  readonly #sqlite: Database.Database;
  readonly #enqueueGroups: EnqueueGroups;
  readonly #waiting = new WaitingOrganisations();

  constructor(database: SqliteDatabase, webhooksDue: WebhooksDueNotice) {
    const sqlite = database.sqlite;
    this.#sqlite = sqlite;
    announceWebhooks(sqlite, webhooksDue);
    // Prepared at once, as the store opens, rather than at their first use.
    for (const prepare of [
      enqueueStatements,
      workStatements,
      claimStatements,
      dependentsStatements,
      cancelStatements,
      retryStatements,
      leasesStatements,
      positionsStatements,
      statusesStatements,
      executionsStatements,
      webhookOutboxStatements,
    ]) {
      prepare(sqlite);
    }
    this.#enqueueGroups = new EnqueueGroups(sqlite);
  }

  async enqueue(newTasks: readonly NewTask[], now: number): Promise<EnqueueResult> {
    const result = await this.#enqueueGroups.enqueue(newTasks, now);
    if (result.ok) for (const { task } of result.tasks) this.#waiting.note(task.service, task.type, task.organisationId);
    return result;
  }

  async work(batch: WorkBatch, claim: Claim, now: number): Promise<WorkReport> {
    return work(this.#sqlite, batch, claim, now, this.#waiting);
  }

  async cancel(organisationId: number, taskId: number, now: number): Promise<CancelResult> {
    return cancel(this.#sqlite, organisationId, taskId, now);
  }

  async cancelMany(organisationId: number, taskIds: readonly number[], now: number): Promise<CancelManyResult> {
    return cancelMany(this.#sqlite, organisationId, taskIds, now);
  }

  async retry(organisationId: number, keyId: number, taskIds: readonly number[], now: number): Promise<RetryResult> {
    return retry(this.#sqlite, organisationId, keyId, taskIds, now);
  }

  async renewLeases(
    owner: string,
    taskIds: readonly number[],
    until: number,
  ): Promise<{ held: number[]; cancelRequested: number[] }> {
    return renewLeases(this.#sqlite, owner, taskIds, until);
  }

  async reclaimExpiredLeases(now: number): Promise<Task[]> {
    return reclaimExpiredLeases(this.#sqlite, now);
  }

  async queuePositions(taskIds: readonly number[]): Promise<Map<number, number>> {
    return queuePositions(this.#sqlite, taskIds);
  }

  async statuses(organisationId: number, taskIds: readonly number[]): Promise<Map<number, StatusRow>> {
    return statuses(this.#sqlite, organisationId, taskIds);
  }

  async reserveTaskIds(count: number): Promise<number[]> {
    return reserveTaskIds(this.#sqlite, count);
  }

  async recordExecutions(records: readonly ExecutionRecord[]): Promise<Task[]> {
    return recordExecutions(this.#sqlite, records);
  }

  async nextDueAt(actions: ServedActions): Promise<number | null> {
    return nextDueAt(this.#sqlite, actions);
  }

  async pendingByAction(): Promise<{ service: string; action: string; pending: number }[]> {
    return pendingByAction(this.#sqlite);
  }
}
