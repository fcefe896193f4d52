import type pg from 'pg';
import type { RetrievalProtocol, Task, TaskError, TaskState } from '../../domain/types.js';
import type { PgDatabase } from './database.js';
import type { CancelResult, Claim, EnqueueResult, ExecutionRecord, NewTask, QueueStore, ServedActions, StatusRow, WorkBatch, WorkReport } from '../contract.js';
import { levelNumber, TASK_COLUMNS, toTask, toTaskLog, toTaskResult } from '../rows.js';

const DEPENDENCY_FAILED = 'DEPENDENCY_FAILED';

/** Above this many ids, one window query over the queues beats one indexed count per id. */
const POSITION_COUNT_LIMIT = 16;

type Queryable = pg.Pool | pg.PoolClient;

/** A named statement: pg prepares it once per connection, then only binds its values. */
const statement = (name: string, text: string) => (values: unknown[]) => ({ name: `queue.${name}`, text, values });

const RESULT_COLUMNS = `id, task_id AS "taskId", name, content_type AS "contentType", size, retrieved,
  date_created AS "dateCreated"`;

const statements = {
  // Locked so that a dependency finishing meanwhile is read as it ends: READ COMMITTED waits for its
  // transaction and re-reads the row, and its own release of dependents then sees the new task.
  lockDependencies: statement(
    'lockDependencies',
    `SELECT id, state FROM tasks WHERE organisation_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR SHARE`,
  ),
  findByIdempotencyKeys: statement(
    'findByIdempotencyKeys',
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE organisation_id = $1 AND idempotency_key = ANY($2::text[])`,
  ),
  // A key another transaction holds makes this one wait for it; its task is then read back, so that
  // two processes racing one key return one task.
  insertTasks: statement(
    'insertTasks',
    `INSERT INTO tasks (organisation_id, key_id, "user", source_id, source_type, session, poll, service, type,
       target, params, state, priority, attempts, max_attempts, timeout_ms, error_code, error_message,
       retrieval_protocol, idempotency_key, run_at, available_at, date_created, date_completed)
     SELECT organisation_id, key_id, "user", source_id, source_type, session, poll, service, type,
       target, params, state, priority, 0, max_attempts, timeout_ms, error_code, error_message,
       retrieval_protocol, idempotency_key, run_at, available_at, date_created, date_completed
     FROM unnest($1::int[], $2::int[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[],
       $9::text[], $10::text[], $11::text[], $12::text[], $13::int[], $14::int[], $15::int[], $16::text[],
       $17::text[], $18::text[], $19::text[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[])
       WITH ORDINALITY AS input (organisation_id, key_id, "user", source_id, source_type, session, poll, service,
         type, target, params, state, priority, max_attempts, timeout_ms, error_code, error_message,
         retrieval_protocol, idempotency_key, run_at, available_at, date_created, date_completed, ordinal)
     ORDER BY ordinal
     ON CONFLICT (organisation_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING ${TASK_COLUMNS}`,
  ),
  insertDependencies: statement(
    'insertDependencies',
    `INSERT INTO task_dependencies (task_id, depends_on_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])
     ON CONFLICT DO NOTHING`,
  ),
  // The best `limit` of each served queue, then the best `limit` of those: a queue no one serves
  // is never read, however many of its tasks are due. A task another worker is claiming is skipped.
  claim: statement(
    'claim',
    `WITH served AS (SELECT * FROM unnest($1::text[], $2::text[]) AS s(service, type)),
     candidates AS (
       SELECT c.id FROM served CROSS JOIN LATERAL (
         SELECT id, priority FROM tasks
         WHERE service = served.service AND type = served.type AND state = 'PENDING' AND available_at <= $3
         ORDER BY priority DESC, id LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED) AS c
       ORDER BY c.priority DESC, c.id LIMIT $4)
     UPDATE tasks SET state = 'PROCESSING', attempts = attempts + 1, date_started = $3, progress = NULL,
       lease_owner = $5, lease_expires_at = $6
     FROM candidates WHERE tasks.id = candidates.id
     RETURNING ${TASK_COLUMNS.replace(/^id,/, 'tasks.id,')}`,
  ),
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
  succeed: statement(
    'succeed',
    `UPDATE tasks SET state = 'SUCCEEDED', error_code = NULL, error_message = NULL, date_completed = $3,
       progress = 1
     FROM unnest($1::bigint[], $2::int[]) AS lease(task_id, attempt)
     WHERE tasks.id = lease.task_id AND tasks.state = 'PROCESSING' AND tasks.attempts = lease.attempt
     RETURNING ${TASK_COLUMNS.replace(/^id,/, 'tasks.id,')}`,
  ),
  setProgress: statement(
    'setProgress',
    `UPDATE tasks SET progress = latest.progress
     FROM unnest($1::bigint[], $2::int[], $3::float8[]) AS latest(task_id, attempt, progress)
     WHERE tasks.id = latest.task_id AND tasks.state = 'PROCESSING' AND tasks.attempts = latest.attempt
     RETURNING tasks.id AS "taskId", tasks.organisation_id AS "organisationId"`,
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
  // Two dependencies of one task may succeed in two transactions at once, each seeing the other
  // still running. Locking the dependents first orders them: the second waits for the first to
  // commit, and its releaseDependents, a later statement, sees both dependencies succeeded.
  lockSuspendedDependents: statement(
    'lockSuspendedDependents',
    `SELECT id FROM tasks
     WHERE state = 'SUSPENDED' AND id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = ANY($1::bigint[]))
     ORDER BY id FOR NO KEY UPDATE`,
  ),
  releaseDependents: statement(
    'releaseDependents',
    `UPDATE tasks SET state = 'PENDING', available_at = GREATEST(available_at, $2)
     WHERE id = ANY($1::bigint[]) AND state = 'SUSPENDED'
       AND NOT EXISTS (
         SELECT 1 FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
         WHERE d.task_id = tasks.id AND t.state <> 'SUCCEEDED')
     RETURNING ${TASK_COLUMNS}`,
  ),
  failDependents: statement(
    'failDependents',
    `UPDATE tasks SET state = 'FAILED', error_code = '${DEPENDENCY_FAILED}', error_message = $2, date_completed = $3
     WHERE state = 'SUSPENDED' AND id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = $1)
     RETURNING ${TASK_COLUMNS}`,
  ),
  cancelWaiting: statement(
    'cancelWaiting',
    `UPDATE tasks SET state = 'CANCELLED', error_code = 'CANCELLED', error_message = 'Cancelled on request.',
       date_completed = $3
     WHERE id = $1 AND organisation_id = $2 AND state IN ('PENDING', 'SUSPENDED')
     RETURNING ${TASK_COLUMNS}`,
  ),
  requestCancel: statement(
    'requestCancel',
    `UPDATE tasks SET cancel_requested = true
     WHERE id = $1 AND organisation_id = $2 AND state = 'PROCESSING'
     RETURNING ${TASK_COLUMNS}`,
  ),
  findTask: statement('findTask', `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1 AND organisation_id = $2`),
  renewLeases: statement(
    'renewLeases',
    `UPDATE tasks SET lease_expires_at = $3
     WHERE id = ANY($2::bigint[]) AND state = 'PROCESSING' AND lease_owner = $1
     RETURNING id, cancel_requested AS "cancelRequested"`,
  ),
  // SKIP LOCKED: a task another process is reclaiming is its business; each task changes once. NO KEY
  // UPDATE (here and in the claim) is the lock the update takes anyway: a worker inserting the task's
  // logs (KEY SHARE through the foreign key) does not make it skipped.
  requeueExpired: statement(
    'requeueExpired',
    `UPDATE tasks SET state = 'PENDING', available_at = $1, lease_owner = NULL, lease_expires_at = NULL
     WHERE id IN (
       SELECT id FROM tasks
       WHERE state = 'PROCESSING' AND lease_expires_at <= $1 AND attempts < max_attempts AND NOT cancel_requested
       FOR NO KEY UPDATE SKIP LOCKED)
     RETURNING ${TASK_COLUMNS}`,
  ),
  failExpired: statement(
    'failExpired',
    `UPDATE tasks SET
       state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'FAILED' END,
       error_code = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'WORKER_LOST' END,
       error_message = CASE WHEN cancel_requested THEN 'Cancelled on request.'
         ELSE 'The worker running the last attempt stopped before it finished.' END,
       date_completed = $1, lease_owner = NULL, lease_expires_at = NULL
     WHERE id IN (
       SELECT id FROM tasks WHERE state = 'PROCESSING' AND lease_expires_at <= $1 FOR NO KEY UPDATE SKIP LOCKED)
     RETURNING ${TASK_COLUMNS}`,
  ),
  // Two indexed counts per id, all ids in one round trip.
  positionsByCount: statement(
    'positionsByCount',
    `SELECT t.id,
       (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND priority > t.priority)
     + (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND priority = t.priority AND id < t.id) AS position
     FROM tasks t WHERE t.id = ANY($1::bigint[]) AND t.state = 'PENDING'`,
  ),
  // Each queue concerned is ranked once, however many of its ids are asked for, in the order of its
  // index: no sort.
  positionsByWindow: statement(
    'positionsByWindow',
    `WITH queues AS MATERIALIZED (
       SELECT DISTINCT service, type FROM tasks WHERE id = ANY($1::bigint[]) AND state = 'PENDING'),
     ranked AS (
       SELECT r.id, r.position FROM queues AS q CROSS JOIN LATERAL (
         SELECT id, row_number() OVER (ORDER BY priority DESC, id) - 1 AS position FROM tasks
         WHERE service = q.service AND type = q.type AND state = 'PENDING') AS r)
     SELECT ranked.id, ranked.position FROM ranked JOIN unnest($1::bigint[]) AS wanted(id) ON wanted.id = ranked.id`,
  ),
  statuses: statement(
    'statuses',
    `SELECT id, state, result_retrieved AS "resultRetrieved", retrieval_protocol AS "retrievalProtocol",
       error_code AS "errorCode", error_message AS "errorMessage"
     FROM tasks WHERE id = ANY($1::bigint[]) AND organisation_id = $2`,
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
  // One index seek per served queue: min() over a join would read every PENDING task.
  nextDue: statement(
    'nextDue',
    `SELECT min(due.at) AS "dueAt" FROM unnest($1::text[], $2::text[]) AS served(service, type)
     CROSS JOIN LATERAL (
       SELECT min(available_at) AS at FROM tasks
       WHERE service = served.service AND type = served.type AND state = 'PENDING') AS due`,
  ),
  pendingByAction: statement(
    'pendingByAction',
    `SELECT service, type AS action, count(*)::int AS pending FROM tasks WHERE state = 'PENDING' GROUP BY service, type`,
  ),
};

interface Submission {
  newTasks: readonly NewTask[];
  now: number;
}

interface PendingEnqueue extends Submission {
  resolve: (result: EnqueueResult) => void;
  reject: (error: unknown) => void;
}

export class PgQueueStore implements QueueStore {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }

  /**
   * Group commit: submissions that arrive in the same turn of the event loop share one
   * transaction, and while it commits the next group gathers. The group's submissions read
   * everything they decide on first, then write each table in one statement for all of them, so
   * that only a driver error can fail one half way: then the group runs again with each submission
   * in a savepoint of its own, and that one rolls back alone. Without savepoints in the common
   * case, no subtransaction ids pile up (past 64 in one transaction, every snapshot of the server slows).
   */
  enqueue(newTasks: readonly NewTask[], now: number): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      this.#pendingEnqueues.push({ newTasks, now, resolve, reject });
      if (this.#pendingEnqueues.length === 1 && !this.#committing) setImmediate(() => void this.#commitEnqueues());
    });
  }

  readonly #pendingEnqueues: PendingEnqueue[] = [];
  #committing = false;

  async #commitEnqueues(): Promise<void> {
    this.#committing = true;
    const group = this.#pendingEnqueues.splice(0);
    try {
      const settled = await this.#database
        .transaction(async (client) => {
          const results = await this.#insertSubmissions(client, group).catch((error: unknown) => {
            throw new SubmissionFailed(error);
          });
          return group.map((call, index) => () => call.resolve(results[index]!));
        })
        .catch((error: unknown) => {
          if (!(error instanceof SubmissionFailed)) throw error;
          return this.#database.transaction((client) => this.#insertEachInSavepoint(client, group));
        });
      for (const settle of settled) settle();
    } catch (error) {
      for (const call of group) call.reject(error);
    } finally {
      this.#committing = false;
      if (this.#pendingEnqueues.length > 0) void this.#commitEnqueues();
    }
  }

  async #insertEachInSavepoint(client: pg.PoolClient, group: readonly PendingEnqueue[]): Promise<(() => void)[]> {
    const settled: (() => void)[] = [];
    for (const call of group) {
      await client.query('SAVEPOINT submission');
      try {
        const [result] = await this.#insertSubmissions(client, [call]);
        await client.query('RELEASE SAVEPOINT submission');
        settled.push(() => call.resolve(result!));
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT submission');
        settled.push(() => call.reject(error));
      }
    }
    return settled;
  }

  /** Each submission all or nothing: its reads decide everything before the first write. */
  async #insertSubmissions(client: pg.PoolClient, submissions: readonly Submission[]): Promise<EnqueueResult[]> {
    const dependencyStates = await this.#lockDependencies(client, submissions.flatMap((submission) => submission.newTasks));
    const results: (EnqueueResult | null)[] = [];
    const columns: unknown[][] = Array.from({ length: 23 }, () => []);
    for (const { newTasks, now } of submissions) {
      const rows: unknown[][] = [];
      let failed: EnqueueResult | null = null;
      for (const [index, input] of newTasks.entries()) {
        let state: TaskState = 'PENDING';
        let error: TaskError | null = null;
        if (input.dependsOn.length > 0) {
          const found = dependencyStates.get(input.organisationId)!;
          const missing = input.dependsOn.find((id) => !found.has(id));
          // A task whose key exists is that task, whatever it now depends on.
          if (
            missing !== undefined &&
            (input.idempotencyKey === null || (await this.#existingByKey(client, input.organisationId, [input.idempotencyKey])).length === 0)
          ) {
            failed = { ok: false, index, missingDependency: missing };
            break;
          }
          const dependencies = input.dependsOn.map((id) => found.get(id));
          if (dependencies.some((dependencyState) => dependencyState === 'FAILED' || dependencyState === 'CANCELLED')) {
            state = 'FAILED';
            error = { code: DEPENDENCY_FAILED, message: 'A task it depends on failed or was cancelled.' };
          } else if (dependencies.some((dependencyState) => dependencyState !== 'SUCCEEDED')) {
            state = 'SUSPENDED';
          }
        }
        rows.push([
          input.organisationId,
          input.keyId,
          input.user,
          input.sourceId,
          input.sourceType,
          input.session,
          input.poll,
          input.service,
          input.type,
          input.target,
          JSON.stringify(input.params),
          state,
          input.priority,
          input.maxAttempts,
          input.timeoutMs,
          error?.code ?? null,
          error?.message ?? null,
          input.retrievalProtocol,
          input.idempotencyKey,
          input.runAt,
          Math.max(input.runAt ?? now, now),
          now,
          state === 'FAILED' ? now : null,
        ]);
      }
      results.push(failed);
      if (failed) continue;
      for (const row of rows) for (const [column, value] of row.entries()) columns[column]!.push(value);
    }
    const inserted =
      columns[0]!.length === 0
        ? []
        : ((await client.query(statements.insertTasks(columns))).rows as never[]).map(toTask).sort((a, b) => a.id - b.id);
    // RETURNING names no input row: a keyed task is found by its key, the others come in input order.
    const insertedByKey = new Map<string, Task>();
    const unkeyed: Task[] = [];
    for (const task of inserted) {
      if (task.idempotencyKey === null) unkeyed.push(task);
      else insertedByKey.set(`${task.organisationId}:${task.idempotencyKey}`, task);
    }
    const existingByKey = new Map<string, Task>();
    const keysTakenBefore = new Map<number, string[]>();
    for (const [index, { newTasks }] of submissions.entries()) {
      if (results[index]) continue;
      for (const input of newTasks) {
        if (input.idempotencyKey === null || insertedByKey.has(`${input.organisationId}:${input.idempotencyKey}`)) continue;
        const keys = keysTakenBefore.get(input.organisationId) ?? [];
        keys.push(input.idempotencyKey);
        keysTakenBefore.set(input.organisationId, keys);
      }
    }
    for (const [organisationId, keys] of keysTakenBefore) {
      for (const task of await this.#existingByKey(client, organisationId, keys)) {
        existingByKey.set(`${organisationId}:${task.idempotencyKey}`, task);
      }
    }

    const dependencyTaskIds: number[] = [];
    const dependencyIds: number[] = [];
    let nextUnkeyed = 0;
    for (const [index, { newTasks }] of submissions.entries()) {
      if (results[index]) continue;
      const tasks: { task: Task; created: boolean }[] = [];
      for (const input of newTasks) {
        let task: Task;
        let created = true;
        if (input.idempotencyKey === null) {
          task = unkeyed[nextUnkeyed++]!;
        } else {
          // The same key twice in a group: the first creates the task, the others are that task.
          const key = `${input.organisationId}:${input.idempotencyKey}`;
          const fresh = insertedByKey.get(key);
          if (fresh) {
            insertedByKey.delete(key);
            existingByKey.set(key, fresh);
            task = fresh;
          } else {
            task = existingByKey.get(key)!;
            created = false;
          }
        }
        tasks.push({ task, created });
        if (!created) continue;
        for (const dependencyId of input.dependsOn) {
          dependencyTaskIds.push(task.id);
          dependencyIds.push(dependencyId);
        }
      }
      results[index] = { ok: true, tasks };
    }
    if (dependencyTaskIds.length > 0) await client.query(statements.insertDependencies([dependencyTaskIds, dependencyIds]));
    return results.map((result) => result!);
  }

  async #lockDependencies(client: pg.PoolClient, newTasks: readonly NewTask[]): Promise<Map<number, Map<number, TaskState>>> {
    const wanted = new Map<number, Set<number>>();
    for (const input of newTasks) {
      if (input.dependsOn.length === 0) continue;
      const ids = wanted.get(input.organisationId) ?? new Set<number>();
      for (const id of input.dependsOn) ids.add(id);
      wanted.set(input.organisationId, ids);
    }
    const states = new Map<number, Map<number, TaskState>>();
    for (const [organisationId, ids] of wanted) {
      const { rows } = await client.query(statements.lockDependencies([organisationId, [...ids]]));
      states.set(organisationId, new Map((rows as { id: number; state: TaskState }[]).map((row) => [row.id, row.state])));
    }
    return states;
  }

  async #existingByKey(client: pg.PoolClient, organisationId: number, keys: readonly string[]): Promise<Task[]> {
    const { rows } = await client.query(statements.findByIdempotencyKeys([organisationId, keys]));
    return (rows as never[]).map(toTask);
  }

  async work(batch: WorkBatch, claim: Claim, now: number): Promise<WorkReport> {
    return this.#database.transaction(async (client): Promise<WorkReport> => {
      const logs =
        batch.logs.length === 0
          ? []
          : ((
              await client.query(
                statements.insertLogs([
                  batch.logs.map((log) => log.taskId),
                  batch.logs.map((log) => levelNumber(log.level)),
                  batch.logs.map((log) => log.message),
                  batch.logs.map((log) => log.source),
                  batch.logs.map((log) => log.timestamp),
                ]),
              )
            ).rows as never[]).map(toTaskLog);
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
      if (batch.progress.length > 0) {
        // One row per task, its last update, as if they were applied in turn.
        const latest = [...new Map(batch.progress.map((update) => [update.taskId, update])).values()];
        const { rows } = await client.query(
          statements.setProgress([latest.map((update) => update.taskId), latest.map((update) => update.attempt), latest.map((update) => update.progress)]),
        );
        const organisationOf = new Map((rows as { taskId: number; organisationId: number }[]).map((row) => [row.taskId, row.organisationId]));
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
        await this.#releaseDependents(client, finished, now, changed);
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
        await this.#settleDependents(client, task, now, changed);
      }
      const channelEnded = changed.filter(
        (task) => task.retrievalProtocol === 'CHANNEL' && (task.state === 'SUCCEEDED' || task.state === 'FAILED' || task.state === 'CANCELLED'),
      );
      if (channelEnded.length > 0) {
        const { rows } = await client.query(statements.markChannelDelivered([channelEnded.map((task) => task.id)]));
        const delivered = new Set((rows as { id: number }[]).map((row) => row.id));
        for (const task of channelEnded) if (delivered.has(task.id)) task.resultRetrieved = true;
      }
      let claimed: Task[] = [];
      if (claim.limit > 0 && claim.actions.length > 0) {
        const [services, types] = servedArrays(claim.actions);
        const { rows } = await client.query(
          statements.claim([services, types, now, claim.limit, claim.lease.owner, claim.lease.until]),
        );
        claimed = (rows as never[]).map(toTask).sort((a, b) => b.priority - a.priority || a.id - b.id);
      }
      return { logs, results, progressed, changed, claimed };
    });
  }

  async #releaseDependents(client: pg.PoolClient, succeeded: readonly Task[], now: number, changed: Task[]): Promise<void> {
    if (succeeded.length === 0) return;
    const locked = await client.query(statements.lockSuspendedDependents([succeeded.map((task) => task.id)]));
    if (locked.rows.length === 0) return;
    const { rows } = await client.query(statements.releaseDependents([(locked.rows as { id: number }[]).map((row) => row.id), now]));
    changed.push(...(rows as never[]).map(toTask));
  }

  /** Releases the dependents of a task that succeeded, or fails them (transitively) when it did not. */
  async #settleDependents(client: pg.PoolClient, task: Task, now: number, changed: Task[]): Promise<void> {
    if (task.state === 'SUCCEEDED') {
      await this.#releaseDependents(client, [task], now, changed);
      return;
    }
    if (task.state !== 'FAILED' && task.state !== 'CANCELLED') return;
    const failing = [task.id];
    while (failing.length > 0) {
      const taskId = failing.pop()!;
      const message = `Task it depends on ended ${taskId === task.id ? task.state : 'FAILED'}.`;
      const { rows } = await client.query(statements.failDependents([taskId, message, now]));
      for (const dependent of (rows as never[]).map(toTask)) {
        changed.push(dependent);
        failing.push(dependent.id);
      }
    }
  }

  async cancel(organisationId: number, taskId: number, now: number): Promise<CancelResult> {
    return this.#database.transaction(async (client): Promise<CancelResult> => {
      const cancelled = await client.query(statements.cancelWaiting([taskId, organisationId, now]));
      if (cancelled.rows.length > 0) {
        const task = toTask(cancelled.rows[0] as never);
        const changed = [task];
        await this.#settleDependents(client, task, now, changed);
        return { outcome: 'cancelled', changed };
      }
      const requested = await client.query(statements.requestCancel([taskId, organisationId]));
      if (requested.rows.length > 0) return { outcome: 'requested', task: toTask(requested.rows[0] as never) };
      const current = await client.query(statements.findTask([taskId, organisationId]));
      return current.rows.length > 0 ? { outcome: 'terminal', task: toTask(current.rows[0] as never) } : { outcome: 'not-found' };
    });
  }

  async renewLeases(
    owner: string,
    taskIds: readonly number[],
    until: number,
  ): Promise<{ held: number[]; cancelRequested: number[] }> {
    const { rows } = await this.#pool.query(statements.renewLeases([owner, taskIds, until]));
    const renewed = rows as { id: number; cancelRequested: boolean }[];
    return { held: renewed.map((row) => row.id), cancelRequested: renewed.filter((row) => row.cancelRequested).map((row) => row.id) };
  }

  async reclaimExpiredLeases(now: number): Promise<Task[]> {
    return this.#database.transaction(async (client): Promise<Task[]> => {
      const changed = ((await client.query(statements.requeueExpired([now]))).rows as never[]).map(toTask);
      const failed = ((await client.query(statements.failExpired([now]))).rows as never[]).map(toTask);
      for (const task of failed) {
        changed.push(task);
        await this.#settleDependents(client, task, now, changed);
      }
      return changed;
    });
  }

  async queuePositions(taskIds: readonly number[]): Promise<Map<number, number>> {
    const positions = new Map<number, number>();
    if (taskIds.length === 0) return positions;
    const query = taskIds.length <= POSITION_COUNT_LIMIT ? statements.positionsByCount : statements.positionsByWindow;
    const { rows } = await this.#pool.query(query([taskIds]));
    for (const row of rows as { id: number; position: number }[]) positions.set(row.id, row.position);
    return positions;
  }

  async statuses(organisationId: number, taskIds: readonly number[]): Promise<Map<number, StatusRow>> {
    const statuses = new Map<number, StatusRow>();
    if (taskIds.length === 0) return statuses;
    const { rows } = await this.#pool.query(statements.statuses([taskIds, organisationId]));
    for (const row of rows as {
      id: number;
      state: TaskState;
      resultRetrieved: boolean;
      retrievalProtocol: RetrievalProtocol;
      errorCode: string | null;
      errorMessage: string | null;
    }[]) {
      statuses.set(row.id, {
        id: row.id,
        state: row.state,
        resultRetrieved: row.resultRetrieved,
        retrievalProtocol: row.retrievalProtocol,
        error: row.errorCode === null ? null : { code: row.errorCode, message: row.errorMessage ?? '' },
      });
    }
    return statuses;
  }

  async reserveTaskIds(count: number): Promise<number[]> {
    if (count <= 0) return [];
    const { rows } = await this.#pool.query(statements.reserveTaskIds([count]));
    return (rows as { id: number }[]).map((row) => row.id);
  }

  async recordExecutions(records: readonly ExecutionRecord[]): Promise<Task[]> {
    if (records.length === 0) return [];
    return this.#database.transaction(async (client): Promise<Task[]> => {
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
        for (const [column, value] of row.entries()) columns[column]!.push(value);
        for (const log of record.logs) {
          for (const [column, value] of [record.taskId, levelNumber(log.level), log.message, log.source, log.timestamp].entries()) {
            logs[column]!.push(value);
          }
        }
        for (const result of record.results) {
          for (const [column, value] of [record.taskId, result.name, result.contentType, result.size, record.dateCompleted].entries()) {
            results[column]!.push(value);
          }
        }
        perAllocation.set(record.allocationId, (perAllocation.get(record.allocationId) ?? 0) + 1);
      }
      await client.query(statements.insertExecutions(columns));
      if (logs[0]!.length > 0) await client.query(statements.insertLogs(logs));
      if (results[0]!.length > 0) await client.query(statements.insertDeliveredResults(results));
      await client.query(statements.countExecutions([[...perAllocation.keys()], [...perAllocation.values()]]));
      return records.map(taskOfExecution);
    });
  }

  async nextDueAt(actions: ServedActions): Promise<number | null> {
    if (actions.length === 0) return null;
    const { rows } = await this.#pool.query(statements.nextDue(servedArrays(actions)));
    return (rows[0] as { dueAt: number | null }).dueAt;
  }

  async pendingByAction(): Promise<{ service: string; action: string; pending: number }[]> {
    const { rows } = await this.#pool.query(statements.pendingByAction([]));
    return rows as { service: string; action: string; pending: number }[];
  }

  get #pool(): Queryable {
    return this.#database.pool;
  }
}

/** A worker serves the same actions all its life: their arrays are built once. */
const servedArraysCache = new WeakMap<ServedActions, [string[], string[]]>();

function servedArrays(actions: ServedActions): [string[], string[]] {
  let arrays = servedArraysCache.get(actions);
  if (arrays === undefined) {
    arrays = [actions.map((served) => served.service), actions.map((served) => served.action)];
    servedArraysCache.set(actions, arrays);
  }
  return arrays;
}

/** The row insertExecutions writes, as the engine sees it: read back, it would only cost time. */
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

/** A submission's statement failed, not the group's transaction: the group is worth a second run in savepoints. */
class SubmissionFailed extends Error {
  constructor(readonly reason: unknown) {
    super('a submission of the group failed', { cause: reason });
  }
}
