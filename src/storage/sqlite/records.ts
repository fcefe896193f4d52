import { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, lte, sql, type Placeholder, type SQL } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import type {
  Account,
  Allocation,
  ApiKey,
  DateRange,
  ExecutionToken,
  KeyPermissions,
  LogLevel,
  Organisation,
  Page,
  PageRequest,
  RetrievalProtocol,
  Role,
  Task,
  TaskFilter,
  TaskLog,
  TaskResult,
  TaskResultPayload,
} from '../../domain/types.js';
import { LOG_LEVELS } from '../../domain/types.js';
import type { NewAllocation, NewApiKey, RecordStore, RetrievalRequest, RetrieveOutcome } from '../contract.js';
import type { Drizzle, SqliteDatabase } from './database.js';
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

function page<T extends { id: number }>(rows: T[], first: number): Page<T> {
  return { items: rows.slice(0, first), hasNextPage: rows.length > first };
}

function rangeConditions(column: SQLiteColumn, range: DateRange | null | undefined): SQL[] {
  if (!range) return [];
  const conditions: SQL[] = [];
  if (range.gt) conditions.push(gt(column, range.gt.getTime()));
  if (range.gte) conditions.push(gte(column, range.gte.getTime()));
  if (range.lt) conditions.push(lt(column, range.lt.getTime()));
  if (range.lte) conditions.push(lte(column, range.lte.getTime()));
  return conditions;
}

const TERMINAL_STATES_SQL = sql`('SUCCEEDED', 'FAILED', 'CANCELLED')`;

/** As the client receives it: a payload handed out counts as retrieved. */
function toPayload(row: typeof taskResults.$inferSelect): TaskResultPayload {
  return { result: { ...toTaskResult(row), retrieved: true }, data: row.data === null ? null : JSON.parse(row.data) };
}

export class SqliteRecordStore implements RecordStore {
  readonly #db: Drizzle;
  readonly #database: SqliteDatabase;

  readonly #findActiveKeyStatement;
  readonly #getOrganisationStatement;
  readonly #findActiveAccountStatement;
  readonly #taskLogPagesStatement;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    this.#db = database.db;
    // Runs on every request: prepared once.
    this.#findActiveKeyStatement = this.#db
      .select()
      .from(apiKeys)
      .innerJoin(organisations, eq(organisations.id, apiKeys.organisationId))
      .where(and(eq(apiKeys.tokenHash, sql.placeholder('tokenHash')), eq(apiKeys.revoked, false)))
      .prepare();
    this.#getOrganisationStatement = this.#db
      .select()
      .from(organisations)
      .where(eq(organisations.id, sql.placeholder('id')))
      .prepare();
    this.#findActiveAccountStatement = this.#db
      .select()
      .from(accounts)
      .where(
        this.#activeAccount(sql.placeholder('organisationId'), sql.placeholder('service'), sql.placeholder('username')),
      )
      .prepare();
    // Logs under a list of tasks: one page per task in one statement. The index orders a task's
    // logs by level, then id, so a page in id order is merged from one short, LIMITed read per
    // level: the first row past the page marks where it ends (and that another page follows), and
    // the page is read up to it, seeking by id within each level. A long log is never read to its
    // end, and a minLevel of 0 or an afterId of 0 matches every row, as no condition would.
    const firstRowsOfLevel = (level: number) =>
      `SELECT id FROM (SELECT id FROM task_logs
         WHERE task_id = wanted_ids.value AND level = ${level} AND @minLevel <= ${level} AND id > @afterId
         ORDER BY id LIMIT @first + 1)`;
    const levels = LOG_LEVELS.map((_, level) => level);
    this.#taskLogPagesStatement = database.sqlite.prepare(
      `WITH wanted AS MATERIALIZED (
         SELECT wanted_ids.value AS task_id,
           (SELECT id FROM (${levels.map(firstRowsOfLevel).join(' UNION ALL ')})
            ORDER BY id LIMIT 1 OFFSET @first) AS past_page_id
         FROM json_each(@taskIds) AS wanted_ids)
       SELECT l.id, l.task_id AS taskId, l.level, l.message, l.source, l.timestamp
       FROM wanted CROSS JOIN task_logs AS l
       WHERE l.task_id = wanted.task_id AND l.level IN (${levels.join(', ')}) AND l.level >= @minLevel
         AND l.id > @afterId AND l.id <= coalesce(wanted.past_page_id, ${Number.MAX_SAFE_INTEGER})
       ORDER BY l.task_id, l.id`,
    );
  }

  async findOrCreateOrganisation(name: string, now: number): Promise<Organisation> {
    this.#db.insert(organisations).values({ name, dateCreated: now }).onConflictDoNothing().run();
    const record = this.#db.select().from(organisations).where(eq(organisations.name, name)).get();
    return toOrganisation(record!);
  }

  async getOrganisation(id: number): Promise<Organisation | null> {
    const record = this.#getOrganisationStatement.get({ id });
    return record ? toOrganisation(record) : null;
  }

  async setRetrievalProtocol(id: number, protocol: RetrievalProtocol): Promise<Organisation | null> {
    const record = this.#db
      .update(organisations)
      .set({ retrievalProtocol: protocol })
      .where(eq(organisations.id, id))
      .returning()
      .get();
    return record ? toOrganisation(record) : null;
  }

  async countApiKeys(): Promise<number> {
    return this.#db.$count(apiKeys);
  }

  async createApiKey(input: NewApiKey, now: number): Promise<ApiKey> {
    const permissions = input.permissions ? JSON.stringify(input.permissions) : null;
    const record = this.#db
      .insert(apiKeys)
      .values({ ...input, permissions, dateCreated: now })
      .returning()
      .get();
    return toApiKey(record);
  }

  async findActiveKey(tokenHash: string): Promise<{ key: ApiKey; organisation: Organisation } | null> {
    const row = this.#findActiveKeyStatement.get({ tokenHash });
    return row ? { key: toApiKey(row.api_keys), organisation: toOrganisation(row.organisations) } : null;
  }

  async revokeApiKey(organisationId: number, keyId: number, now: number): Promise<ApiKey | null> {
    const record = this.#db
      .update(apiKeys)
      .set({ revoked: true, dateRevoked: sql`coalesce(${apiKeys.dateRevoked}, ${now})` })
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.organisationId, organisationId)))
      .returning()
      .get();
    return record ? toApiKey(record) : null;
  }

  async listApiKeys(organisationId: number): Promise<ApiKey[]> {
    return this.#db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.organisationId, organisationId))
      .orderBy(asc(apiKeys.id))
      .all()
      .map(toApiKey);
  }

  async getApiKeys(organisationId: number, ids: readonly number[]): Promise<ApiKey[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.organisationId, organisationId), inArray(apiKeys.id, [...ids])))
      .all()
      .map(toApiKey);
  }

  async registerAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    const record = this.#db
      .insert(accounts)
      .values({ organisationId, service, username, dateCreated: now })
      .onConflictDoNothing()
      .returning()
      .get();
    return record ? toAccount(record) : null;
  }

  async deregisterAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    const record = this.#db
      .update(accounts)
      .set({ dateDeregistered: now })
      .where(and(this.#activeAccount(organisationId, service, username)))
      .returning()
      .get();
    return record ? toAccount(record) : null;
  }

  async findActiveAccount(organisationId: number, service: string, username: string): Promise<Account | null> {
    const record = this.#findActiveAccountStatement.get({ organisationId, service, username });
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
    const rows = this.#db
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
      .limit(request.first + 1)
      .all();
    return page(rows.map(toAccount), request.first);
  }

  async getAccounts(organisationId: number, ids: readonly number[]): Promise<Account[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(accounts)
      .where(and(eq(accounts.organisationId, organisationId), inArray(accounts.id, [...ids])))
      .all()
      .map(toAccount);
  }

  async getTasks(organisationId: number, ids: readonly number[]): Promise<Task[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(tasks)
      .where(
        and(
          eq(tasks.organisationId, organisationId),
          sql`${tasks.id} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`,
        ),
      )
      .all()
      .map(toTask);
  }

  async listTasks(organisationId: number, filter: TaskFilter, request: PageRequest): Promise<Page<Task>> {
    const equals = <T>(column: SQLiteColumn, value: T | null | undefined) =>
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
    const rows = this.#db
      .select()
      .from(tasks)
      .where(and(...conditions))
      .orderBy(desc(tasks.id))
      .limit(request.first + 1)
      .all();
    return page(rows.map(toTask), request.first);
  }

  async getLogs(ids: readonly number[]): Promise<TaskLog[]> {
    if (ids.length === 0) return [];
    return this.#db.select().from(taskLogs).where(inArray(taskLogs.id, [...ids])).all().map(toTaskLog);
  }

  async taskLogs(
    taskIds: readonly number[],
    minLevel: LogLevel | null,
    request: PageRequest,
  ): Promise<Map<number, Page<TaskLog>>> {
    const pages = new Map<number, Page<TaskLog>>();
    if (taskIds.length === 0) return pages;
    const rows = this.#taskLogPagesStatement.all({
      taskIds: JSON.stringify(taskIds),
      minLevel: minLevel === null ? 0 : levelNumber(minLevel),
      afterId: request.afterId ?? 0,
      first: request.first,
    }) as (typeof taskLogs.$inferSelect)[];
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
    return this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .where(inArray(taskResults.taskId, [...taskIds]))
      .orderBy(asc(taskResults.id))
      .all()
      .map(toTaskResult);
  }

  async getResults(organisationId: number, ids: readonly number[]): Promise<TaskResult[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select(this.#resultColumns)
      .from(taskResults)
      .innerJoin(tasks, eq(tasks.id, taskResults.taskId))
      .where(and(eq(tasks.organisationId, organisationId), inArray(taskResults.id, [...ids])))
      .all()
      .map(toTaskResult);
  }

  async dependencies(taskIds: readonly number[]): Promise<{ taskId: number; dependsOnId: number }[]> {
    if (taskIds.length === 0) return [];
    return this.#db
      .select()
      .from(taskDependencies)
      .where(inArray(taskDependencies.taskId, [...taskIds]))
      .orderBy(asc(taskDependencies.dependsOnId))
      .all();
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
      if (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(task.state)) return { outcome: 'not-completed' };
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

  async createAllocation(input: NewAllocation, now: number): Promise<Allocation> {
    const record = this.#db
      .insert(allocations)
      .values({ ...input, dateCreated: now })
      .returning()
      .get();
    return toAllocation(record);
  }

  async listAllocations(organisationId: number | null): Promise<Allocation[]> {
    return this.#db
      .select()
      .from(allocations)
      .where(
        and(
          isNull(allocations.dateDeleted),
          organisationId === null ? undefined : eq(allocations.organisationId, organisationId),
        ),
      )
      .orderBy(asc(allocations.id))
      .all()
      .map(toAllocation);
  }

  async deleteAllocation(organisationId: number, allocationId: number, now: number): Promise<Allocation | null> {
    const db = this.#db;
    return this.#database.sqlite.transaction((): Allocation | null => {
      const record = db
        .update(allocations)
        .set({ dateDeleted: now })
        .where(
          and(
            eq(allocations.id, allocationId),
            eq(allocations.organisationId, organisationId),
            isNull(allocations.dateDeleted),
          ),
        )
        .returning()
        .get();
      if (!record) return null;
      db.update(executionTokens).set({ revoked: true }).where(eq(executionTokens.allocationId, allocationId)).run();
      return toAllocation(record);
    }).immediate();
  }

  async createExecutionToken(
    input: { allocationId: number; tokenHash: string; expiresAt: number },
    now: number,
  ): Promise<ExecutionToken> {
    const record = this.#db
      .insert(executionTokens)
      .values({ ...input, dateCreated: now })
      .returning()
      .get();
    return toExecutionToken(record);
  }

  async revokeExecutionToken(organisationId: number, tokenId: number): Promise<ExecutionToken | null> {
    const owned = this.#db
      .select({ id: executionTokens.id })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(and(eq(executionTokens.id, tokenId), eq(allocations.organisationId, organisationId)))
      .get();
    if (!owned) return null;
    const record = this.#db
      .update(executionTokens)
      .set({ revoked: true })
      .where(eq(executionTokens.id, tokenId))
      .returning()
      .get();
    return record ? toExecutionToken(record) : null;
  }

  async liveExecutionTokens(now: number): Promise<(ExecutionToken & { tokenHash: string })[]> {
    return this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(and(eq(executionTokens.revoked, false), gt(executionTokens.expiresAt, now), isNull(allocations.dateDeleted)))
      .all()
      .map(({ token }) => ({ ...toExecutionToken(token), tokenHash: token.tokenHash }));
  }

  async findLiveExecutionToken(tokenHash: string, now: number): Promise<ExecutionToken | null> {
    const row = this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(
        and(
          eq(executionTokens.tokenHash, tokenHash),
          eq(executionTokens.revoked, false),
          gt(executionTokens.expiresAt, now),
          isNull(allocations.dateDeleted),
        ),
      )
      .get();
    return row ? toExecutionToken(row.token) : null;
  }
}
