import type { Task } from '../../domain/types.js';
import type { PgDatabase } from './database.js';
import type { CancelManyResult, CancelResult, Claim, EnqueueResult, ExecutionRecord, NewTask, QueueStore, RetryResult, ServedActions, StatusRow, WorkBatch, WorkReport } from '../contract.js';
import { cancel, cancelMany } from './queue/cancel.js';
import { retry } from './queue/retry.js';
import { nextDueAt } from './queue/claim.js';
import { EnqueueGroups } from './queue/enqueue.js';
import { recordExecutions, reserveTaskIds } from './queue/executions.js';
import { reclaimExpiredLeases, renewLeases } from './queue/leases.js';
import { pendingByAction, queuePositions } from './queue/positions.js';
import { statuses } from './queue/statuses.js';
import { work } from './queue/work.js';
import { WaitingOrganisations } from '../fair-share.js';
import type { WebhooksDueNotice } from '../webhook-outbox.js';
import { announceWebhooks } from './queue/webhooks.js';

/** The queue's statements, one module per family under queue/; this class only hands each call on. */
export class PgQueueStore implements QueueStore {
  // A batch is a few statements whatever its size, and its commit's wait for the disk costs more
  // than they do (bench/bulk.ts); the event loop runs meanwhile.
  readonly bulkBatchSize = 500;
  readonly #database: PgDatabase;
  readonly #enqueueGroups: EnqueueGroups;
  readonly #waiting = new WaitingOrganisations();

  constructor(database: PgDatabase, webhooksDue: WebhooksDueNotice) {
    this.#database = database;
    announceWebhooks(database, webhooksDue);
    this.#enqueueGroups = new EnqueueGroups(database);
  }

  async enqueue(newTasks: readonly NewTask[], now: number): Promise<EnqueueResult> {
    const result = await this.#enqueueGroups.enqueue(newTasks, now);
    if (result.ok) for (const { task } of result.tasks) this.#waiting.note(task.service, task.type, task.organisationId);
    return result;
  }

  async work(batch: WorkBatch, claim: Claim, now: number): Promise<WorkReport> {
    return work(this.#database, batch, claim, now, this.#waiting);
  }

  async cancel(organisationId: number, taskId: number, now: number): Promise<CancelResult> {
    return cancel(this.#database, organisationId, taskId, now);
  }

  async cancelMany(organisationId: number, taskIds: readonly number[], now: number): Promise<CancelManyResult> {
    return cancelMany(this.#database, organisationId, taskIds, now);
  }

  async retry(organisationId: number, keyId: number, taskIds: readonly number[], now: number): Promise<RetryResult> {
    return retry(this.#database, organisationId, keyId, taskIds, now);
  }

  async renewLeases(
    owner: string,
    taskIds: readonly number[],
    until: number,
  ): Promise<{ held: number[]; cancelRequested: number[] }> {
    return renewLeases(this.#database, owner, taskIds, until);
  }

  async reclaimExpiredLeases(now: number): Promise<Task[]> {
    return reclaimExpiredLeases(this.#database, now);
  }

  async queuePositions(taskIds: readonly number[]): Promise<Map<number, number>> {
    return queuePositions(this.#database, taskIds);
  }

  async statuses(organisationId: number, taskIds: readonly number[]): Promise<Map<number, StatusRow>> {
    return statuses(this.#database, organisationId, taskIds);
  }

  async reserveTaskIds(count: number): Promise<number[]> {
    return reserveTaskIds(this.#database, count);
  }

  async recordExecutions(records: readonly ExecutionRecord[]): Promise<Task[]> {
    return recordExecutions(this.#database, records);
  }

  async nextDueAt(actions: ServedActions): Promise<number | null> {
    return nextDueAt(this.#database, actions);
  }

  async pendingByAction(): Promise<{ service: string; action: string; pending: number }[]> {
    return pendingByAction(this.#database);
  }
}
