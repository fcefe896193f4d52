import { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, lte, sql, type Placeholder, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type {
  Account,
  Allocation,
  ApiKey,
  DateRange,
  ExecutionToken,
  LogLevel,
  Organisation,
  Page,
  PageRequest,
  RetrievalProtocol,
  Task,
  TaskFilter,
  TaskLog,
  TaskResult,
  TaskResultPayload,
} from '../../domain/types.js';
import { LOG_LEVELS } from '../../domain/types.js';
import type { NewAllocation, NewApiKey, RecordStore, RetrievalRequest, RetrieveOutcome } from '../contract.js';
import type { PgDatabase, PgDrizzle } from './database.js';
import {
  levelNumber,
  toAccount,
  toAllocation,
  toApiKey,
  toExecutionToken,
  toOrganisation,
  toTask,
  toTaskLog,
  toTaskResult,
} from '../rows.js';
import {
  accounts,
  allocations,
  apiKeys,
  executionTokens,
  organisations,
  taskDependencies,
  taskLogs,
  taskResults,
  tasks,
} from './schema.js';

type PgTransaction = Parameters<Parameters<PgDrizzle['transaction']>[0]>[0];

function page<T extends { id: number }>(rows: T[], first: number): Page<T> {
  return { items: rows.slice(0, first), hasNextPage: rows.length > first };
}

function rangeConditions(column: PgColumn, range: DateRange | null | undefined): SQL[] {
  if (!range) return [];
  const conditions: SQL[] = [];
  if (range.gt) conditions.push(gt(column, range.gt.getTime()));
  if (range.gte) conditions.push(gte(column, range.gte.getTime()));
  if (range.lt) conditions.push(lt(column, range.lt.getTime()));
  if (range.lte) conditions.push(lte(column, range.lte.getTime()));
  return conditions;
}

/**
 * `column = ANY($1)` with the whole list as one array parameter: the statement text is the same
 * however many ids, where IN would have a placeholder per id.
 */
function anyOf(column: PgColumn, values: readonly number[] | Placeholder): SQL {
  return sql`${column} = ANY(${Array.isArray(values) ? sql.param([...values]) : values})`;
}

const TERMINAL_STATES_SQL = sql`('SUCCEEDED', 'FAILED', 'CANCELLED')`;

/** As the client receives it: a payload handed out counts as retrieved. */
function toPayload(row: typeof taskResults.$inferSelect): TaskResultPayload {
  return { result: { ...toTaskResult(row), retrieved: true }, data: row.data === null ? null : JSON.parse(row.data) };
}

// Logs under a list of tasks: one page per task in one statement. The index orders a task's logs by
// level, then id, so a page in id order is merged from one short, LIMITed read per level, as in the
// SQLite statement: a long log is never read to its end. A minLevel of 0 or an afterId of 0 matches
// every row, as no condition would.
const firstRowsOfLevel = (level: number) =>
  `(SELECT id, task_id, level, message, source, timestamp FROM task_logs
    WHERE task_id = wanted.task_id AND level = ${level} AND $2::int <= ${level} AND id > $3::bigint
    ORDER BY id LIMIT $4::int + 1)`;
const TASK_LOG_PAGES_SQL = `SELECT l.id, l.task_id AS "taskId", l.level, l.message, l.source, l.timestamp
  FROM unnest($1::bigint[]) AS wanted(task_id)
  CROSS JOIN LATERAL (
    SELECT * FROM (${LOG_LEVELS.map((_, level) => firstRowsOfLevel(level)).join(' UNION ALL ')}) AS of_levels
    ORDER BY id LIMIT $4::int + 1) AS l
  ORDER BY l.task_id, l.id`;

export class PgRecordStore implements RecordStore {
  readonly #db: PgDrizzle;
  readonly #database: PgDatabase;

  readonly #findActiveKeyStatement;
  readonly #getOrganisationStatement;
  readonly #findActiveAccountStatement;
  readonly #getTasksStatement;
  readonly #findLiveExecutionTokenStatement;

  constructor(database: PgDatabase) {
    this.#database = database;
    this.#db = database.db;
    // Run on every request, or for every batch of a loader: named, so each connection plans them once.
    this.#findActiveKeyStatement = this.#db
      .select()
      .from(apiKeys)
      .innerJoin(organisations, eq(organisations.id, apiKeys.organisationId))
      .where(and(eq(apiKeys.tokenHash, sql.placeholder('tokenHash')), eq(apiKeys.revoked, false)))
      .prepare('records_find_active_key');
    this.#getOrganisationStatement = this.#db
      .select()
      .from(organisations)
      .where(eq(organisations.id, sql.placeholder('id')))
      .prepare('records_get_organisation');
    this.#findActiveAccountStatement = this.#db
      .select()
      .from(accounts)
      .where(
        this.#activeAccount(sql.placeholder('organisationId'), sql.placeholder('service'), sql.placeholder('username')),
      )
      .prepare('records_find_active_account');
    this.#getTasksStatement = this.#db
      .select()
      .from(tasks)
      .where(and(eq(tasks.organisationId, sql.placeholder('organisationId')), anyOf(tasks.id, sql.placeholder('ids'))))
      .prepare('records_get_tasks');
    this.#findLiveExecutionTokenStatement = this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(
        and(
          eq(executionTokens.tokenHash, sql.placeholder('tokenHash')),
          eq(executionTokens.revoked, false),
          gt(executionTokens.expiresAt, sql.placeholder('now')),
          isNull(allocations.dateDeleted),
        ),
      )
      .prepare('records_find_live_execution_token');
  }

  async findOrCreateOrganisation(name: string, now: number): Promise<Organisation> {
    // A concurrent insert of the same name makes this one wait for its commit, then do nothing:
    // the select that follows, a statement of its own, sees the row either way.
    await this.#db.insert(organisations).values({ name, dateCreated: now }).onConflictDoNothing({ target: organisations.name });
    const [record] = await this.#db.select().from(organisations).where(eq(organisations.name, name));
    return toOrganisation(record!);
  }

  async getOrganisation(id: number): Promise<Organisation | null> {
    const [record] = await this.#getOrganisationStatement.execute({ id });
    return record ? toOrganisation(record) : null;
  }

  async setRetrievalProtocol(id: number, protocol: RetrievalProtocol): Promise<Organisation | null> {
    const [record] = await this.#db
      .update(organisations)
      .set({ retrievalProtocol: protocol })
      .where(eq(organisations.id, id))
      .returning();
    return record ? toOrganisation(record) : null;
  }

  async countApiKeys(): Promise<number> {
    return this.#db.$count(apiKeys);
  }

  async createApiKey(input: NewApiKey, now: number): Promise<ApiKey> {
    const permissions = input.permissions ? JSON.stringify(input.permissions) : null;
    const [record] = await this.#db
      .insert(apiKeys)
      .values({ ...input, permissions, dateCreated: now })
      .returning();
    return toApiKey(record!);
  }

  async findActiveKey(tokenHash: string): Promise<{ key: ApiKey; organisation: Organisation } | null> {
    const [row] = await this.#findActiveKeyStatement.execute({ tokenHash });
    return row ? { key: toApiKey(row.api_keys), organisation: toOrganisation(row.organisations) } : null;
  }

  async revokeApiKey(organisationId: number, keyId: number, now: number): Promise<ApiKey | null> {
    const [record] = await this.#db
      .update(apiKeys)
      .set({ revoked: true, dateRevoked: sql`coalesce(${apiKeys.dateRevoked}, ${now})` })
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.organisationId, organisationId)))
      .returning();
    return record ? toApiKey(record) : null;
  }

  async listApiKeys(organisationId: number): Promise<ApiKey[]> {
    const records = await this.#db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.organisationId, organisationId))
      .orderBy(asc(apiKeys.id));
    return records.map(toApiKey);
  }

  async getApiKeys(organisationId: number, ids: readonly number[]): Promise<ApiKey[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.organisationId, organisationId), anyOf(apiKeys.id, ids)));
    return records.map(toApiKey);
  }

  async registerAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    // The conflict is with the active account only (accounts_active_unique): a deregistered one may be registered again.
    const [record] = await this.#db
      .insert(accounts)
      .values({ organisationId, service, username, dateCreated: now })
      .onConflictDoNothing({
        target: [accounts.organisationId, accounts.service, accounts.username],
        where: sql`date_deregistered IS NULL`,
      })
      .returning();
    return record ? toAccount(record) : null;
  }

  async deregisterAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    const [record] = await this.#db
      .update(accounts)
      .set({ dateDeregistered: now })
      .where(this.#activeAccount(organisationId, service, username))
      .returning();
    return record ? toAccount(record) : null;
  }

  async findActiveAccount(organisationId: number, service: string, username: string): Promise<Account | null> {
    const [record] = await this.#findActiveAccountStatement.execute({ organisationId, service, username });
    return record ? toAccount(record) : null;
  }

  #activeAccount(
    organisationId: number | Placeholder,
    service: string | Placeholder,
    username: string | Placeholder,
  ): SQL | undefined {
    return and(
      eq(accounts.organisationId, organisationId),
      eq(accounts.service, service),
      eq(accounts.username, username),
      isNull(accounts.dateDeregistered),
    );
  }

  async listAccounts(organisationId: number, service: string | null, request: PageRequest): Promise<Page<Account>> {
    const rows = await this.#db
      .select()
      .from(accounts)
      .where(
        and(
          eq(accounts.organisationId, organisationId),
          isNull(accounts.dateDeregistered),
          service === null ? undefined : eq(accounts.service, service),
          request.afterId ? gt(accounts.id, request.afterId) : undefined,
        ),
      )
      .orderBy(asc(accounts.id))
      .limit(request.first + 1);
    return page(rows.map(toAccount), request.first);
  }

  async getAccounts(organisationId: number, ids: readonly number[]): Promise<Account[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select()
      .from(accounts)
      .where(and(eq(accounts.organisationId, organisationId), anyOf(accounts.id, ids)));
    return records.map(toAccount);
  }

  async getTasks(organisationId: number, ids: readonly number[]): Promise<Task[]> {
    if (ids.length === 0) return [];
    const records = await this.#getTasksStatement.execute({ organisationId, ids: [...ids] });
    return records.map(toTask);
  }

  async listTasks(organisationId: number, filter: TaskFilter, request: PageRequest): Promise<Page<Task>> {
    const equals = <T>(column: PgColumn, value: T | null | undefined) =>
      value === null || value === undefined ? undefined : eq(column, value);
    const conditions = [
      eq(tasks.organisationId, organisationId),
      equals(tasks.keyId, filter.keyId),
      equals(tasks.user, filter.user),
      equals(tasks.sourceId, filter.sourceId),
      equals(tasks.session, filter.session),
      equals(tasks.poll, filter.poll),
      equals(tasks.sourceType, filter.sourceType),
      equals(tasks.service, filter.service),
      equals(tasks.type, filter.type),
      filter.state && filter.state.length > 0 ? inArray(tasks.state, filter.state) : undefined,
      ...rangeConditions(tasks.dateCreated, filter.dateCreated),
      ...rangeConditions(tasks.dateStarted, filter.dateStarted),
      ...rangeConditions(tasks.dateCompleted, filter.dateCompleted),
      request.afterId ? lt(tasks.id, request.afterId) : undefined,
    ];
    const rows = await this.#db
      .select()
      .from(tasks)
      .where(and(...conditions))
      .orderBy(desc(tasks.id))
      .limit(request.first + 1);
    return page(rows.map(toTask), request.first);
  }

  async getLogs(ids: readonly number[]): Promise<TaskLog[]> {
    if (ids.length === 0) return [];
    const records = await this.#db.select().from(taskLogs).where(anyOf(taskLogs.id, ids));
    return records.map(toTaskLog);
  }

  async taskLogs(
    taskIds: readonly number[],
    minLevel: LogLevel | null,
    request: PageRequest,
  ): Promise<Map<number, Page<TaskLog>>> {
    const pages = new Map<number, Page<TaskLog>>();
    if (taskIds.length === 0) return pages;
    // The pool's own query: it reads int8 as numbers, where drizzle's raw execute would give strings.
    const { rows } = await this.#database.pool.query<typeof taskLogs.$inferSelect>({
      name: 'records_task_log_pages',
      text: TASK_LOG_PAGES_SQL,
      values: [taskIds, minLevel === null ? 0 : levelNumber(minLevel), request.afterId ?? 0, request.first],
    });
    const byTask = new Map<number, (typeof taskLogs.$inferSelect)[]>(taskIds.map((id) => [id, []]));
    for (const row of rows) byTask.get(row.taskId)!.push(row);
    for (const [taskId, taskRows] of byTask) pages.set(taskId, page(taskRows.map(toTaskLog), request.first));
    return pages;
  }

  #resultColumns = {
    id: taskResults.id,
    taskId: taskResults.taskId,
    name: taskResults.name,
    contentType: taskResults.contentType,
    size: taskResults.size,
    retrieved: taskResults.retrieved,
    dateCreated: taskResults.dateCreated,
    dateRetrieved: taskResults.dateRetrieved,
  };

  async taskResults(taskIds: readonly number[]): Promise<TaskResult[]> {
    if (taskIds.length === 0) return [];
    const records = await this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .where(anyOf(taskResults.taskId, taskIds))
      .orderBy(asc(taskResults.id));
    return records.map(toTaskResult);
  }

  async getResults(organisationId: number, ids: readonly number[]): Promise<TaskResult[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .innerJoin(tasks, eq(tasks.id, taskResults.taskId))
      .where(and(eq(tasks.organisationId, organisationId), anyOf(taskResults.id, ids)));
    return records.map(toTaskResult);
  }

  async dependencies(taskIds: readonly number[]): Promise<{ taskId: number; dependsOnId: number }[]> {
    if (taskIds.length === 0) return [];
    return this.#db
      .select()
      .from(taskDependencies)
      .where(anyOf(taskDependencies.taskId, taskIds))
      .orderBy(asc(taskDependencies.dependsOnId));
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
      if (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(task.state)) return { outcome: 'not-completed' };
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

  async createAllocation(input: NewAllocation, now: number): Promise<Allocation> {
    const [record] = await this.#db
      .insert(allocations)
      .values({ ...input, dateCreated: now })
      .returning();
    return toAllocation(record!);
  }

  async listAllocations(organisationId: number | null): Promise<Allocation[]> {
    const records = await this.#db
      .select()
      .from(allocations)
      .where(
        and(
          isNull(allocations.dateDeleted),
          organisationId === null ? undefined : eq(allocations.organisationId, organisationId),
        ),
      )
      .orderBy(asc(allocations.id));
    return records.map(toAllocation);
  }

  async deleteAllocation(organisationId: number, allocationId: number, now: number): Promise<Allocation | null> {
    return this.#db.transaction(async (tx): Promise<Allocation | null> => {
      const [record] = await tx
        .update(allocations)
        .set({ dateDeleted: now })
        .where(
          and(
            eq(allocations.id, allocationId),
            eq(allocations.organisationId, organisationId),
            isNull(allocations.dateDeleted),
          ),
        )
        .returning();
      if (!record) return null;
      await tx.update(executionTokens).set({ revoked: true }).where(eq(executionTokens.allocationId, allocationId));
      return toAllocation(record);
    });
  }

  async createExecutionToken(
    input: { allocationId: number; tokenHash: string; expiresAt: number },
    now: number,
  ): Promise<ExecutionToken> {
    const [record] = await this.#db
      .insert(executionTokens)
      .values({ ...input, dateCreated: now })
      .returning();
    return toExecutionToken(record!);
  }

  async revokeExecutionToken(organisationId: number, tokenId: number): Promise<ExecutionToken | null> {
    // One statement: the ownership check is the update's own condition.
    const [record] = await this.#db
      .update(executionTokens)
      .set({ revoked: true })
      .where(
        and(
          eq(executionTokens.id, tokenId),
          inArray(
            executionTokens.allocationId,
            this.#db.select({ id: allocations.id }).from(allocations).where(eq(allocations.organisationId, organisationId)),
          ),
        ),
      )
      .returning();
    return record ? toExecutionToken(record) : null;
  }

  async liveExecutionTokens(now: number): Promise<(ExecutionToken & { tokenHash: string })[]> {
    const rows = await this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(and(eq(executionTokens.revoked, false), gt(executionTokens.expiresAt, now), isNull(allocations.dateDeleted)));
    return rows.map(({ token }) => ({ ...toExecutionToken(token), tokenHash: token.tokenHash }));
  }

  async findLiveExecutionToken(tokenHash: string, now: number): Promise<ExecutionToken | null> {
    const [row] = await this.#findLiveExecutionTokenStatement.execute({ tokenHash, now });
    return row ? toExecutionToken(row.token) : null;
  }
}
