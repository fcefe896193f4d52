import type Database from 'better-sqlite3';
import type { LogLevel, RetrievalProtocol, Task, TaskError, TaskLog, TaskResult, TaskState } from '../../domain/types.js';
import type { SqliteDatabase } from './database.js';
import type { AttemptOutcome, CancelResult, Claim, EnqueueResult, ExecutionRecord, NewTask, QueueStore, ServedActions, StatusRow, WorkBatch, WorkReport } from '../contract.js';
import { levelNumber, TASK_COLUMNS, toTask, toTaskLog, toTaskResult } from '../rows.js';

const ACTIVE_TO_TERMINAL_GUARD = `state = 'PROCESSING' AND attempts = @attempt`;
const DEPENDENCY_FAILED = 'DEPENDENCY_FAILED';

/** Above this many ids, one window query over the queues beats one indexed count per id. */
const POSITION_COUNT_LIMIT = 16;

export class SqliteQueueStore implements QueueStore {
  readonly #sqlite: Database.Database;
  readonly #statements;

  constructor(database: SqliteDatabase) {
    const sqlite = database.sqlite;
    this.#sqlite = sqlite;
    this.#insertTasks = sqlite.transaction((newTasks: readonly NewTask[], now: number) =>
      this.#insertTasksInTransaction(newTasks, now),
    );
    const prepare = (text: string) => sqlite.prepare(text);
    this.#statements = {
      findByIdempotencyKey: prepare(
        `SELECT ${TASK_COLUMNS} FROM tasks WHERE organisation_id = ? AND idempotency_key = ?`,
      ),
      dependencyStates: prepare(
        `SELECT id, state FROM tasks WHERE organisation_id = ? AND id IN (SELECT value FROM json_each(?))`,
      ),
      insertTask: prepare(
        `INSERT INTO tasks (organisation_id, key_id, user, source_id, source_type, session, poll, service, type,
           target, params, state, priority, attempts, max_attempts, timeout_ms, error_code, error_message,
           retrieval_protocol, idempotency_key, run_at, available_at, date_created, date_completed)
         VALUES (@organisationId, @keyId, @user, @sourceId, @sourceType, @session, @poll, @service, @type,
           @target, @params, @state, @priority, 0, @maxAttempts, @timeoutMs, @errorCode, @errorMessage,
           @retrievalProtocol, @idempotencyKey, @runAt, @availableAt, @now, @dateCompleted)
         RETURNING ${TASK_COLUMNS}`,
      ),
      insertDependency: prepare(`INSERT OR IGNORE INTO task_dependencies (task_id, depends_on_id) VALUES (?, ?)`),
      // The best `limit` of each served queue, then the best `limit` of those: a queue no one serves
      // is never read, however many of its tasks are due.
      claim: prepare(
        `UPDATE tasks SET state = 'PROCESSING', attempts = attempts + 1, date_started = @now, progress = NULL,
           lease_owner = @owner, lease_expires_at = @leaseUntil
         WHERE id IN (
           SELECT t.id FROM json_each(@actions) AS served CROSS JOIN tasks AS t ON t.id IN (
             SELECT q.id FROM tasks AS q INDEXED BY tasks_queue
             WHERE q.service = served.value ->> 0 AND q.type = served.value ->> 1 AND q.state = 'PENDING'
               AND q.available_at <= @now
             ORDER BY q.priority DESC, q.id LIMIT @limit)
           ORDER BY t.priority DESC, t.id LIMIT @limit)
         RETURNING ${TASK_COLUMNS}`,
      ),
      insertLogs: prepare(
        `INSERT INTO task_logs (task_id, level, message, source, timestamp)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)
         RETURNING id, task_id AS taskId, level, message, source, timestamp`,
      ),
      insertResults: prepare(
        `INSERT INTO task_results (task_id, name, content_type, size, data, date_created)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?)
         RETURNING id, task_id AS taskId, name, content_type AS contentType, size, retrieved,
           date_created AS dateCreated`,
      ),
      succeed: prepare(
        `UPDATE tasks SET state = 'SUCCEEDED', error_code = NULL, error_message = NULL, date_completed = @now,
           progress = 1
         FROM (SELECT value ->> 0 AS taskId, value ->> 1 AS attempt FROM json_each(@leases)) AS lease
         WHERE tasks.id = lease.taskId AND tasks.state = 'PROCESSING' AND tasks.attempts = lease.attempt
         RETURNING ${TASK_COLUMNS}`,
      ),
      setProgress: prepare(
        `UPDATE tasks SET progress = @progress WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
         RETURNING organisation_id AS organisationId`,
      ),
      finish: prepare(
        `UPDATE tasks SET state = @state, error_code = @errorCode, error_message = @errorMessage,
           date_completed = @now
         WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
         RETURNING ${TASK_COLUMNS}`,
      ),
      // A cancel requested while the attempt ran wins over its retry.
      retry: prepare(
        `UPDATE tasks SET
           state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'PENDING' END,
           error_code = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE @errorCode END,
           error_message = CASE WHEN cancel_requested THEN 'Cancelled on request.' ELSE @errorMessage END,
           date_completed = CASE WHEN cancel_requested THEN @now ELSE NULL END,
           available_at = @retryAt
         WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
         RETURNING ${TASK_COLUMNS}`,
      ),
      release: prepare(
        `UPDATE tasks SET state = 'PENDING', attempts = attempts - 1, available_at = @now
         WHERE id = @taskId AND ${ACTIVE_TO_TERMINAL_GUARD}
         RETURNING ${TASK_COLUMNS}`,
      ),
      releaseDependents: prepare(
        `UPDATE tasks SET state = 'PENDING', available_at = max(available_at, @now)
         WHERE state = 'SUSPENDED'
           AND id IN (SELECT task_id FROM task_dependencies
             WHERE depends_on_id IN (SELECT value FROM json_each(@taskIds)))
           AND NOT EXISTS (
             SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
             WHERE d.task_id = tasks.id AND t.state <> 'SUCCEEDED')
         RETURNING ${TASK_COLUMNS}`,
      ),
      failDependents: prepare(
        `UPDATE tasks SET state = 'FAILED', error_code = '${DEPENDENCY_FAILED}', error_message = @message,
           date_completed = @now
         WHERE state = 'SUSPENDED'
           AND id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = @taskId)
         RETURNING ${TASK_COLUMNS}`,
      ),
      cancelWaiting: prepare(
        `UPDATE tasks SET state = 'CANCELLED', error_code = 'CANCELLED', error_message = 'Cancelled on request.',
           date_completed = @now
         WHERE id = @taskId AND organisation_id = @organisationId AND state IN ('PENDING', 'SUSPENDED')
         RETURNING ${TASK_COLUMNS}`,
      ),
      requestCancel: prepare(
        `UPDATE tasks SET cancel_requested = 1
         WHERE id = @taskId AND organisation_id = @organisationId AND state = 'PROCESSING'
         RETURNING ${TASK_COLUMNS}`,
      ),
      findTask: prepare(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ? AND organisation_id = ?`),
      renewLeases: prepare(
        `UPDATE tasks SET lease_expires_at = @until
         WHERE id IN (SELECT value FROM json_each(@taskIds)) AND state = 'PROCESSING' AND lease_owner = @owner
         RETURNING id, cancel_requested AS cancelRequested`,
      ),
      requeueExpired: prepare(
        `UPDATE tasks SET state = 'PENDING', available_at = @now, lease_owner = NULL, lease_expires_at = NULL
         WHERE state = 'PROCESSING' AND lease_expires_at <= @now AND attempts < max_attempts AND cancel_requested = 0
         RETURNING ${TASK_COLUMNS}`,
      ),
      failExpired: prepare(
        `UPDATE tasks SET
           state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'FAILED' END,
           error_code = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'WORKER_LOST' END,
           error_message = CASE WHEN cancel_requested THEN 'Cancelled on request.'
             ELSE 'The worker running the last attempt stopped before it finished.' END,
           date_completed = @now, lease_owner = NULL, lease_expires_at = NULL
         WHERE state = 'PROCESSING' AND lease_expires_at <= @now
         RETURNING ${TASK_COLUMNS}`,
      ),
      positionByCount: prepare(
        `SELECT
           (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
              AND priority > t.priority)
         + (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
              AND priority = t.priority AND id < t.id) AS position
         FROM tasks t WHERE t.id = ? AND t.state = 'PENDING'`,
      ),
      // Materialised, so that SQLite ranks each queue once instead of once per id asked for; CROSS JOIN
      // fixes the join order, which would otherwise depend on whether ANALYZE has run.
      positionsByWindow: prepare(
        `WITH queues AS MATERIALIZED (
           SELECT DISTINCT t.service, t.type FROM json_each(@ids) AS wanted CROSS JOIN tasks AS t ON t.id = wanted.value
           WHERE t.state = 'PENDING'),
         ranked AS MATERIALIZED (
           SELECT t.id, row_number() OVER (PARTITION BY t.service, t.type ORDER BY t.priority DESC, t.id) - 1 AS position
           FROM queues AS q CROSS JOIN tasks AS t INDEXED BY tasks_queue ON t.service = q.service AND t.type = q.type
           WHERE t.state = 'PENDING')
         SELECT id, position FROM ranked WHERE id IN (SELECT value FROM json_each(@ids))`,
      ),
      // Driven by the id list (CROSS JOIN fixes the order): one primary-key lookup per id.
      statuses: prepare(
        `SELECT t.id, t.state, t.result_retrieved AS resultRetrieved, t.retrieval_protocol AS retrievalProtocol,
           t.error_code AS errorCode, t.error_message AS errorMessage
         FROM json_each(?) AS wanted CROSS JOIN tasks AS t ON t.id = wanted.value
         WHERE t.organisation_id = ?`,
      ),
      // Delivery on the CHANNEL protocol may end before the task does: then the finish completes it.
      markChannelDelivered: prepare(
        `UPDATE tasks SET result_retrieved = 1
         WHERE id = ? AND retrieval_protocol = 'CHANNEL' AND result_retrieved = 0
           AND EXISTS (SELECT 1 FROM task_results WHERE task_id = tasks.id)
           AND NOT EXISTS (SELECT 1 FROM task_results WHERE task_id = tasks.id AND retrieved = 0)
         RETURNING result_retrieved AS resultRetrieved`,
      ),
      ensureTaskSequence: prepare(
        `INSERT INTO sqlite_sequence (name, seq)
         SELECT 'tasks', coalesce((SELECT max(id) FROM tasks), 0)
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tasks')`,
      ),
      // AUTOINCREMENT never hands out an id at or below the sequence: the block is ours alone.
      advanceTaskSequence: prepare(`UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'tasks' RETURNING seq`),
      // Positional parameters: binding them costs a fraction of binding an object's named ones.
      insertExecution: prepare(
        `INSERT INTO tasks (id, organisation_id, key_id, service, type, params, state, priority, attempts,
           max_attempts, timeout_ms, progress, error_code, error_message, retrieval_protocol, result_retrieved,
           execution, allocation_id, available_at, date_created, date_started, date_completed)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, 1, 1, ?, ?, ?, ?, ?, ?, 'REALTIME', ?, ?, ?, ?, ?)`,
      ),
      insertDeliveredResults: prepare(
        `INSERT INTO task_results (task_id, name, content_type, size, data, retrieved, date_created, date_retrieved)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, NULL, 1, value ->> 4, value ->> 4
         FROM json_each(?)`,
      ),
      countExecutions: prepare(`UPDATE allocations SET executions = executions + ? WHERE id = ?`),
      // One index seek per served queue: min() over a join would read every PENDING task.
      nextDue: prepare(
        `SELECT min(dueAt) AS dueAt FROM (
           SELECT (SELECT min(available_at) FROM tasks INDEXED BY tasks_due
             WHERE service = served.value ->> 0 AND type = served.value ->> 1 AND state = 'PENDING') AS dueAt
           FROM json_each(@actions) AS served)`,
      ),
      pendingByAction: prepare(
        `SELECT service, type AS action, count(*) AS pending FROM tasks INDEXED BY tasks_queue
         WHERE state = 'PENDING' GROUP BY service, type`,
      ),
    };
  }

  /**
   * Group commit: submissions that arrive in the same turn of the event loop share one
   * transaction, each inside its own savepoint so that one failing batch rolls back alone. A
   * commit costs far more than an insert, so concurrent submitters go several times faster.
   */
  enqueue(newTasks: readonly NewTask[], now: number): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      this.#pendingEnqueues.push({ newTasks, now, resolve, reject });
      if (this.#pendingEnqueues.length === 1) setImmediate(() => this.#commitEnqueues());
    });
  }

  readonly #pendingEnqueues: {
    newTasks: readonly NewTask[];
    now: number;
    resolve: (result: EnqueueResult) => void;
    reject: (error: unknown) => void;
  }[] = [];

  #commitEnqueues(): void {
    const group = this.#pendingEnqueues.splice(0);
    const settled: (() => void)[] = [];
    try {
      this.#sqlite
        .transaction(() => {
          for (const call of group) {
            try {
              const result = this.#insertTasks(call.newTasks, call.now);
              settled.push(() => call.resolve(result));
            } catch (error) {
              if (error instanceof MissingDependency) {
                const result = { ok: false as const, index: error.index, missingDependency: error.dependencyId };
                settled.push(() => call.resolve(result));
              } else {
                settled.push(() => call.reject(error));
              }
            }
          }
        })
        .immediate();
    } catch (error) {
      for (const call of group) call.reject(error);
      return;
    }
    for (const settle of settled) settle();
  }

  /** One submission, all or nothing: run inside the group's transaction, it is a savepoint. */
  readonly #insertTasks: (newTasks: readonly NewTask[], now: number) => EnqueueResult;

  #insertTasksInTransaction(newTasks: readonly NewTask[], now: number): EnqueueResult {
    const statements = this.#statements;
    const tasks: { task: Task; created: boolean }[] = [];
    for (const [index, input] of newTasks.entries()) {
      if (input.idempotencyKey !== null) {
        const existing = statements.findByIdempotencyKey.get(input.organisationId, input.idempotencyKey);
        if (existing) {
          tasks.push({ task: toTask(existing as never), created: false });
          continue;
        }
      }
      let state: TaskState = 'PENDING';
      let error: TaskError | null = null;
      if (input.dependsOn.length > 0) {
        const rows = statements.dependencyStates.all(input.organisationId, JSON.stringify(input.dependsOn)) as {
          id: number;
          state: TaskState;
        }[];
        const found = new Map(rows.map((row) => [row.id, row.state]));
        const missing = input.dependsOn.find((id) => !found.has(id));
        if (missing !== undefined) throw new MissingDependency(index, missing);
        const states = [...found.values()];
        if (states.some((dependencyState) => dependencyState === 'FAILED' || dependencyState === 'CANCELLED')) {
          state = 'FAILED';
          error = { code: DEPENDENCY_FAILED, message: 'A task it depends on failed or was cancelled.' };
        } else if (states.some((dependencyState) => dependencyState !== 'SUCCEEDED')) {
          state = 'SUSPENDED';
        }
      }
      const { dependsOn, ...columns } = input;
      const record = statements.insertTask.get({
        ...columns,
        params: JSON.stringify(input.params),
        state,
        errorCode: error?.code ?? null,
        errorMessage: error?.message ?? null,
        availableAt: Math.max(input.runAt ?? now, now),
        now,
        dateCompleted: state === 'FAILED' ? now : null,
      });
      const task = toTask(record as never);
      for (const dependencyId of dependsOn) statements.insertDependency.run(task.id, dependencyId);
      tasks.push({ task, created: true });
    }
    return { ok: true, tasks };
  }

  async work(batch: WorkBatch, claim: Claim, now: number): Promise<WorkReport> {
    const statements = this.#statements;
    const run = this.#sqlite.transaction((): WorkReport => {
      const logs =
        batch.logs.length === 0
          ? []
          : (
              statements.insertLogs.all(
                JSON.stringify(
                  batch.logs.map((log) => [log.taskId, levelNumber(log.level), log.message, log.source, log.timestamp]),
                ),
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
      for (const update of batch.progress) {
        const row = statements.setProgress.get(update) as { organisationId: number } | undefined;
        if (row) progressed.push({ taskId: update.taskId, organisationId: row.organisationId, progress: update.progress });
      }
      const changed: Task[] = [];
      const succeeded = batch.outcomes.filter((outcome) => outcome.state === 'SUCCEEDED');
      if (succeeded.length > 0) {
        const leases = JSON.stringify(succeeded.map((outcome) => [outcome.taskId, outcome.attempt]));
        const finished = (statements.succeed.all({ leases, now }) as never[]).map(toTask);
        changed.push(...finished);
        this.#releaseDependents(finished, now, changed);
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
        this.#settleDependents(task, now, changed);
      }
      for (const task of changed) {
        if (task.retrievalProtocol === 'CHANNEL' && (task.state === 'SUCCEEDED' || task.state === 'FAILED' || task.state === 'CANCELLED')) {
          if (statements.markChannelDelivered.get(task.id)) task.resultRetrieved = true;
        }
      }
      const claimed =
        claim.limit > 0 && claim.actions.length > 0
          ? (
              statements.claim.all({
                now,
                limit: claim.limit,
                actions: servedJson(claim.actions),
                owner: claim.lease.owner,
                leaseUntil: claim.lease.until,
              }) as never[]
            )
              .map(toTask)
              .sort((a, b) => b.priority - a.priority || a.id - b.id)
          : [];
      return { logs, results, progressed, changed, claimed };
    });
    return run.immediate();
  }

  #releaseDependents(succeeded: readonly Task[], now: number, changed: Task[]): void {
    if (succeeded.length === 0) return;
    const taskIds = JSON.stringify(succeeded.map((task) => task.id));
    changed.push(...(this.#statements.releaseDependents.all({ taskIds, now }) as never[]).map(toTask));
  }

  /** Releases the dependents of a task that succeeded, or fails them (transitively) when it did not. */
  #settleDependents(task: Task, now: number, changed: Task[]): void {
    if (task.state === 'SUCCEEDED') {
      this.#releaseDependents([task], now, changed);
      return;
    }
    if (task.state !== 'FAILED' && task.state !== 'CANCELLED') return;
    const failing = [task.id];
    while (failing.length > 0) {
      const taskId = failing.pop()!;
      const message = `Task it depends on ended ${taskId === task.id ? task.state : 'FAILED'}.`;
      const dependents = (this.#statements.failDependents.all({ taskId, message, now }) as never[]).map(toTask);
      for (const dependent of dependents) {
        changed.push(dependent);
        failing.push(dependent.id);
      }
    }
  }

  async cancel(organisationId: number, taskId: number, now: number): Promise<CancelResult> {
    const statements = this.#statements;
    const run = this.#sqlite.transaction((): CancelResult => {
      const cancelled = statements.cancelWaiting.get({ taskId, organisationId, now });
      if (cancelled) {
        const task = toTask(cancelled as never);
        const changed = [task];
        this.#settleDependents(task, now, changed);
        return { outcome: 'cancelled', changed };
      }
      const requested = statements.requestCancel.get({ taskId, organisationId });
      if (requested) return { outcome: 'requested', task: toTask(requested as never) };
      const current = statements.findTask.get(taskId, organisationId);
      return current ? { outcome: 'terminal', task: toTask(current as never) } : { outcome: 'not-found' };
    });
    return run.immediate();
  }

  async renewLeases(
    owner: string,
    taskIds: readonly number[],
    until: number,
  ): Promise<{ held: number[]; cancelRequested: number[] }> {
    const rows = this.#statements.renewLeases.all({ owner, taskIds: JSON.stringify(taskIds), until }) as { id: number; cancelRequested: number }[];
    return { held: rows.map((row) => row.id), cancelRequested: rows.filter((row) => row.cancelRequested).map((row) => row.id) };
  }

  async reclaimExpiredLeases(now: number): Promise<Task[]> {
    const statements = this.#statements;
    const run = this.#sqlite.transaction((): Task[] => {
      const changed = (statements.requeueExpired.all({ now }) as never[]).map(toTask);
      const failed = (statements.failExpired.all({ now }) as never[]).map(toTask);
      for (const task of failed) {
        changed.push(task);
        this.#settleDependents(task, now, changed);
      }
      return changed;
    });
    return run.immediate();
  }

  async queuePositions(taskIds: readonly number[]): Promise<Map<number, number>> {
    const positions = new Map<number, number>();
    if (taskIds.length === 0) return positions;
    if (taskIds.length <= POSITION_COUNT_LIMIT) {
      for (const id of taskIds) {
        const row = this.#statements.positionByCount.get(id) as { position: number } | undefined;
        if (row) positions.set(id, row.position);
      }
      return positions;
    }
    const rows = this.#statements.positionsByWindow.all({ ids: JSON.stringify(taskIds) }) as {
      id: number;
      position: number;
    }[];
    for (const row of rows) positions.set(row.id, row.position);
    return positions;
  }

  async statuses(organisationId: number, taskIds: readonly number[]): Promise<Map<number, StatusRow>> {
    const rows = this.#statements.statuses.all(JSON.stringify(taskIds), organisationId) as {
      id: number;
      state: TaskState;
      resultRetrieved: number;
      retrievalProtocol: RetrievalProtocol;
      errorCode: string | null;
      errorMessage: string | null;
    }[];
    const statuses = new Map<number, StatusRow>();
    for (const row of rows) {
      statuses.set(row.id, {
        id: row.id,
        state: row.state,
        resultRetrieved: Boolean(row.resultRetrieved),
        retrievalProtocol: row.retrievalProtocol,
        error: row.errorCode === null ? null : { code: row.errorCode, message: row.errorMessage ?? '' },
      });
    }
    return statuses;
  }

  async reserveTaskIds(count: number): Promise<number[]> {
    const statements = this.#statements;
    return this.#sqlite
      .transaction(() => {
        statements.ensureTaskSequence.run();
        const { seq } = statements.advanceTaskSequence.get(count) as { seq: number };
        return Array.from({ length: count }, (_, index) => seq - count + 1 + index);
      })
      .immediate();
  }

  async recordExecutions(records: readonly ExecutionRecord[]): Promise<Task[]> {
    const statements = this.#statements;
    return this.#sqlite
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
        if (logs.length > 0) statements.insertLogs.all(JSON.stringify(logs));
        if (results.length > 0) statements.insertDeliveredResults.run(JSON.stringify(results));
        for (const [allocationId, count] of perAllocation) statements.countExecutions.run(count, allocationId);
        return recorded;
      })
      .immediate();
  }

  async nextDueAt(actions: ServedActions): Promise<number | null> {
    const row = this.#statements.nextDue.get({ actions: servedJson(actions) }) as { dueAt: number | null };
    return row.dueAt;
  }

  async pendingByAction(): Promise<{ service: string; action: string; pending: number }[]> {
    return this.#statements.pendingByAction.all() as { service: string; action: string; pending: number }[];
  }
}

/** A worker serves the same actions all its life: their JSON is built once. */
const servedJsonCache = new WeakMap<ServedActions, string>();

function servedJson(actions: ServedActions): string {
  let json = servedJsonCache.get(actions);
  if (json === undefined) {
    json = JSON.stringify(actions.map(({ service, action }) => [service, action]));
    servedJsonCache.set(actions, json);
  }
  return json;
}

/** The row insertExecution writes, as the engine sees it: read back, it would only cost time. */
function taskOfExecution(record: ExecutionRecord): Task {
  return {
    id: record.taskId,
    organisationId: record.organisationId,
    keyId: record.keyId,
    user: null,
    sourceId: null,
    sourceType: null,
    session: null,
    poll: null,
    service: record.service,
    type: record.type,
    target: null,
    params: record.params,
    state: record.state,
    priority: 0,
    attempts: 1,
    maxAttempts: 1,
    timeoutMs: record.timeoutMs,
    progress: record.progress,
    error: record.error,
    retrievalProtocol: record.retrievalProtocol,
    resultRetrieved: record.results.length > 0,
    cancelRequested: false,
    execution: 'REALTIME',
    allocationId: record.allocationId,
    idempotencyKey: null,
    runAt: null,
    dateCreated: new Date(record.dateCreated),
    dateStarted: new Date(record.dateCreated),
    dateCompleted: new Date(record.dateCompleted),
  };
}

class MissingDependency extends Error {
  constructor(
    readonly index: number,
    readonly dependencyId: number,
  ) {
    super(`task ${dependencyId} does not exist`);
  }
}
