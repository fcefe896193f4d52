import { and, asc, eq, inArray, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import { isTerminal, TERMINAL_STATES, type TaskResultPayload } from '../../../domain/types.js';
import type { RetrievalRequest, RetrieveOutcome } from '../../contract.js';
import type { Drizzle, SqliteDatabase } from '../database.js';
import { toTaskResult } from '../../rows.js';
import { taskResults, tasks } from '../schema.js';

const TERMINAL_STATES_SQL = sql.raw(`(${[...TERMINAL_STATES].map((state) => `'${state}'`).join(', ')})`);

/** As the client receives it: a payload handed out counts as retrieved. */
function toPayload(row: typeof taskResults.$inferSelect): TaskResultPayload {
  return { result: { ...toTaskResult(row), retrieved: true }, data: row.data === null ? null : JSON.parse(row.data) };
}

/** The retrieval of a task's results, and their delivery one by one on the CHANNEL protocol. */
export class ResultRecords {
  readonly #db: Drizzle;
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    this.#db = database.db;
  }

  async retrieveResults(
    organisationId: number,
    taskId: number,
    request: RetrievalRequest,
    now: number,
  ): Promise<RetrieveOutcome> {
    const db = this.#db;
    return this.#database.sqlite.transaction((): RetrieveOutcome => {
      const task = db
        .select({
          state: tasks.state,
          resultRetrieved: tasks.resultRetrieved,
          retrievalKeyHash: tasks.retrievalKeyHash,
          resultsKeptUntil: tasks.resultsKeptUntil,
        })
        .from(tasks)
        .where(and(eq(tasks.id, taskId), eq(tasks.organisationId, organisationId)))
        .get();
      if (!task) return { outcome: 'not-found' };
      if (task.resultRetrieved) {
        const keptUntil = task.resultsKeptUntil;
        if (keptUntil !== null && keptUntil <= now) {
          this.#deletePayloads([taskId]);
        } else if (keptUntil !== null && request.keyHash !== null && request.keyHash === task.retrievalKeyHash) {
          // Payloads delivered over CHANNEL before the retrieval were dropped then and are not in it.
          const rows = db
            .select()
            .from(taskResults)
            .where(and(eq(taskResults.taskId, taskId), eq(taskResults.retrieved, true), isNotNull(taskResults.data)))
            .orderBy(asc(taskResults.id))
            .all();
          return { outcome: 'retrieved', payloads: rows.map(toPayload) };
        }
        return { outcome: 'already-retrieved' };
      }
      if (!isTerminal(task.state)) return { outcome: 'not-completed' };
      const rows = db
        .select()
        .from(taskResults)
        .where(and(eq(taskResults.taskId, taskId), eq(taskResults.retrieved, false)))
        .orderBy(asc(taskResults.id))
        .all();
      const keepsPayloads = request.keyHash !== null;
      // A CHANNEL subscriber still writing one of these loses it to this retrieval: its confirmation
      // then changes nothing. Better sent twice than lost.
      db.update(taskResults)
        .set({ retrieved: true, dateRetrieved: now, deliveryClaim: null, ...(keepsPayloads ? {} : { data: null }) })
        .where(and(eq(taskResults.taskId, taskId), eq(taskResults.retrieved, false)))
        .run();
      db.update(tasks)
        .set({
          resultRetrieved: true,
          retrievalKeyHash: request.keyHash,
          resultsKeptUntil: keepsPayloads ? request.keepUntil : null,
        })
        .where(eq(tasks.id, taskId))
        .run();
      return { outcome: 'retrieved', payloads: rows.map(toPayload) };
    }).immediate();
  }

  async deleteExpiredPayloads(now: number, limit: number): Promise<number> {
    return this.#database.sqlite.transaction((): number => {
      const expired = this.#db
        .select({ id: tasks.id })
        .from(tasks)
        .where(and(isNotNull(tasks.resultsKeptUntil), lte(tasks.resultsKeptUntil, now)))
        .limit(limit)
        .all()
        .map((row) => row.id);
      this.#deletePayloads(expired);
      return expired.length;
    }).immediate();
  }

  /** Inside a transaction: the retry window of these tasks is over. */
  #deletePayloads(taskIds: number[]): void {
    if (taskIds.length === 0) return;
    this.#db
      .update(taskResults)
      .set({ data: null })
      .where(and(inArray(taskResults.taskId, taskIds), isNotNull(taskResults.data)))
      .run();
    this.#db.update(tasks).set({ resultsKeptUntil: null }).where(inArray(tasks.id, taskIds)).run();
  }

  async claimResultDelivery(resultId: number, claim: string): Promise<TaskResultPayload | null> {
    const row = this.#db
      .update(taskResults)
      .set({ deliveryClaim: claim })
      .where(and(eq(taskResults.id, resultId), eq(taskResults.retrieved, false), isNull(taskResults.deliveryClaim)))
      .returning()
      .get();
    return row ? toPayload(row) : null;
  }

  async confirmResultDelivery(resultId: number, claim: string, now: number): Promise<boolean> {
    const db = this.#db;
    return this.#database.sqlite.transaction((): boolean => {
      const delivered = db
        .update(taskResults)
        .set({ retrieved: true, data: null, dateRetrieved: now, deliveryClaim: null })
        .where(
          and(eq(taskResults.id, resultId), eq(taskResults.deliveryClaim, claim), eq(taskResults.retrieved, false)),
        )
        .returning({ taskId: taskResults.taskId })
        .get();
      if (!delivered) return false;
      // Once a finished task's last result has been delivered, its results count as retrieved.
      db.update(tasks)
        .set({ resultRetrieved: true })
        .where(
          and(
            eq(tasks.id, delivered.taskId),
            sql`${tasks.state} IN ${TERMINAL_STATES_SQL}`,
            sql`NOT EXISTS (SELECT 1 FROM ${taskResults} WHERE ${taskResults.taskId} = ${tasks.id} AND ${taskResults.retrieved} = 0)`,
          ),
        )
        .run();
      return true;
    }).immediate();
  }

  async releaseResultDelivery(resultId: number, claim: string): Promise<void> {
    this.#db
      .update(taskResults)
      .set({ deliveryClaim: null })
      .where(and(eq(taskResults.id, resultId), eq(taskResults.deliveryClaim, claim)))
      .run();
  }
}
