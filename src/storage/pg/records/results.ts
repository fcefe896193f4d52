import { and, asc, eq, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import { isTerminal, TERMINAL_STATES, type TaskResultPayload } from '../../../domain/types.js';
import type { RetrievalRequest, RetrieveOutcome } from '../../contract.js';
import type { PgDatabase, PgDrizzle } from '../database.js';
import { toTaskResult } from '../../rows.js';
import { taskResults, tasks } from '../schema.js';
import { anyOf } from './any-of.js';

type PgTransaction = Parameters<Parameters<PgDrizzle['transaction']>[0]>[0];

const TERMINAL_STATES_SQL = sql.raw(`(${[...TERMINAL_STATES].map((state) => `'${state}'`).join(', ')})`);

/** As the client receives it: a payload handed out counts as retrieved. */
function toPayload(row: typeof taskResults.$inferSelect): TaskResultPayload {
  return { result: { ...toTaskResult(row), retrieved: true }, data: row.data === null ? null : JSON.parse(row.data) };
}

/** The retrieval of a task's results, and their delivery one by one on the CHANNEL protocol. */
export class ResultRecords {
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
    this.#db = database.db;
  }

  async retrieveResults(
    organisationId: number,
    taskId: number,
    request: RetrievalRequest,
    now: number,
  ): Promise<RetrieveOutcome> {
    return this.#db.transaction(async (tx): Promise<RetrieveOutcome> => {
      // The task row's lock is SQLite's single writer here: a concurrent retrieval (of any process)
      // waits for this one to commit, then reads the task as this one left it. NO KEY UPDATE, as the
      // UPDATE below takes it: a worker writing logs of the task (their foreign key takes KEY SHARE)
      // is not held up.
      const [task] = await tx
        .select({
          state: tasks.state,
          resultRetrieved: tasks.resultRetrieved,
          retrievalKeyHash: tasks.retrievalKeyHash,
          resultsKeptUntil: tasks.resultsKeptUntil,
        })
        .from(tasks)
        .where(and(eq(tasks.id, taskId), eq(tasks.organisationId, organisationId)))
        .for('no key update');
      if (!task) return { outcome: 'not-found' };
      if (task.resultRetrieved) {
        const keptUntil = task.resultsKeptUntil;
        if (keptUntil !== null && keptUntil <= now) {
          await this.#deletePayloads(tx, [taskId]);
        } else if (keptUntil !== null && request.keyHash !== null && request.keyHash === task.retrievalKeyHash) {
          // Payloads delivered over CHANNEL before the retrieval were dropped then and are not in it.
          const rows = await tx
            .select()
            .from(taskResults)
            .where(and(eq(taskResults.taskId, taskId), eq(taskResults.retrieved, true), isNotNull(taskResults.data)))
            .orderBy(asc(taskResults.id));
          return { outcome: 'retrieved', payloads: rows.map(toPayload) };
        }
        return { outcome: 'already-retrieved' };
      }
      if (!isTerminal(task.state)) return { outcome: 'not-completed' };
      const rows = await tx
        .select()
        .from(taskResults)
        .where(and(eq(taskResults.taskId, taskId), eq(taskResults.retrieved, false)))
        .orderBy(asc(taskResults.id));
      const keepsPayloads = request.keyHash !== null;
      // A CHANNEL subscriber still writing one of these loses it to this retrieval: its confirmation
      // then changes nothing. Better sent twice than lost.
      await tx
        .update(taskResults)
        .set({ retrieved: true, dateRetrieved: now, deliveryClaim: null, ...(keepsPayloads ? {} : { data: null }) })
        .where(and(eq(taskResults.taskId, taskId), eq(taskResults.retrieved, false)));
      await tx
        .update(tasks)
        .set({
          resultRetrieved: true,
          retrievalKeyHash: request.keyHash,
          resultsKeptUntil: keepsPayloads ? request.keepUntil : null,
        })
        .where(eq(tasks.id, taskId));
      return { outcome: 'retrieved', payloads: rows.map(toPayload) };
    });
  }

  async deleteExpiredPayloads(now: number, limit: number): Promise<number> {
    return this.#db.transaction(async (tx): Promise<number> => {
      // Locked as retrieveResults locks them, and those another process is clearing are skipped:
      // processes sweeping at once share the work rather than wait on one another.
      const expired = (
        await tx
          .select({ id: tasks.id })
          .from(tasks)
          .where(and(isNotNull(tasks.resultsKeptUntil), lte(tasks.resultsKeptUntil, now)))
          .limit(limit)
          .for('no key update', { skipLocked: true })
      ).map((row) => row.id);
      await this.#deletePayloads(tx, expired);
      return expired.length;
    });
  }

  /** Inside a transaction that holds the tasks' rows: the retry window of these tasks is over. */
  async #deletePayloads(tx: PgTransaction, taskIds: number[]): Promise<void> {
    if (taskIds.length === 0) return;
    await tx
      .update(taskResults)
      .set({ data: null })
      .where(and(anyOf(taskResults.taskId, taskIds), isNotNull(taskResults.data)));
    await tx.update(tasks).set({ resultsKeptUntil: null }).where(anyOf(tasks.id, taskIds));
  }

  async claimResultDelivery(resultId: number, claim: string): Promise<TaskResultPayload | null> {
    // A second claim waits on the row the first one updates, then finds it claimed.
    const [row] = await this.#db
      .update(taskResults)
      .set({ deliveryClaim: claim })
      .where(and(eq(taskResults.id, resultId), eq(taskResults.retrieved, false), isNull(taskResults.deliveryClaim)))
      .returning();
    return row ? toPayload(row) : null;
  }

  async confirmResultDelivery(resultId: number, claim: string, now: number): Promise<boolean> {
    return this.#db.transaction(async (tx): Promise<boolean> => {
      // The task's lock first, as retrieveResults takes it: confirmations of two results of one task
      // then follow one another, and the second sees the first's result delivered when it asks
      // whether any is left.
      await tx
        .select({ id: tasks.id })
        .from(tasks)
        .where(
          eq(tasks.id, sql`(SELECT ${taskResults.taskId} FROM ${taskResults} WHERE ${taskResults.id} = ${resultId})`),
        )
        .for('no key update');
      const [delivered] = await tx
        .update(taskResults)
        .set({ retrieved: true, data: null, dateRetrieved: now, deliveryClaim: null })
        .where(
          and(eq(taskResults.id, resultId), eq(taskResults.deliveryClaim, claim), eq(taskResults.retrieved, false)),
        )
        .returning({ taskId: taskResults.taskId });
      if (!delivered) return false;
      // Once a finished task's last result has been delivered, its results count as retrieved.
      await tx
        .update(tasks)
        .set({ resultRetrieved: true })
        .where(
          and(
            eq(tasks.id, delivered.taskId),
            sql`${tasks.state} IN ${TERMINAL_STATES_SQL}`,
            sql`NOT EXISTS (SELECT 1 FROM ${taskResults} WHERE ${taskResults.taskId} = ${tasks.id} AND ${taskResults.retrieved} = false)`,
          ),
        );
      return true;
    });
  }

  async releaseResultDelivery(resultId: number, claim: string): Promise<void> {
    await this.#db
      .update(taskResults)
      .set({ deliveryClaim: null })
      .where(and(eq(taskResults.id, resultId), eq(taskResults.deliveryClaim, claim)));
  }
}
