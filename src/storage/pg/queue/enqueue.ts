import type pg from 'pg';
import type { Task, TaskState } from '../../../domain/types.js';
import type { EnqueueResult, NewTask } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { DEPENDENCY_FAILED } from './dependents.js';
import { BORN_PENDING, INSERTED_COLUMN_COUNT, INSERTED_COLUMNS, insertedTask, insertedValues, type Birth } from '../../new-task.js';
import { statement } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';

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
    `INSERT INTO tasks (${INSERTED_COLUMNS})
     SELECT ${INSERTED_COLUMNS}
     FROM unnest($1::int[], $2::int[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[],
       $9::text[], $10::text[], $11::text[], $12::text[], $13::int[], $14::int[], $15::int[], $16::text[],
       $17::text[], $18::text[], $19::text[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[],
       $24::text[], $25::int[], $26::int[], $27::bigint[])
       WITH ORDINALITY AS input (${INSERTED_COLUMNS}, ordinal)
     ORDER BY ordinal
     ON CONFLICT (organisation_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING id, organisation_id AS "organisationId", idempotency_key AS "idempotencyKey"`,
  ),
  insertDependencies: statement(
    'insertDependencies',
    `INSERT INTO task_dependencies (task_id, depends_on_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])
     ON CONFLICT DO NOTHING`,
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

/**
 * Group commit: submissions that arrive in the same turn of the event loop share one
 * transaction, and while it commits the next group gathers. The group's submissions read
 * everything they decide on first, then write each table in one statement for all of them, so
 * that only a driver error can fail one half way: then the group runs again with each submission
 * in a savepoint of its own, and that one rolls back alone. Without savepoints in the common
 * case, no subtransaction ids pile up (past 64 in one transaction, every snapshot of the server slows).
 */
export class EnqueueGroups {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }

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
    const insertAll = async (client: pg.PoolClient) => {
      const results = await insertSubmissions(client, group).catch((error: unknown) => {
        throw new SubmissionFailed(error);
      });
      return group.map((call, index) => () => call.resolve(results[index]!));
    };
    try {
      // One statement is atomic alone: without BEGIN and COMMIT it takes one round trip, not three.
      const written = writesTheInsertAlone(group) ? this.#database.withClient(insertAll) : this.#database.transaction(insertAll);
      const settled = await written.catch((error: unknown) => {
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
        const [result] = await insertSubmissions(client, [call]);
        await client.query('RELEASE SAVEPOINT submission');
        settled.push(() => call.resolve(result!));
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT submission');
        settled.push(() => call.reject(error));
      }
    }
    return settled;
  }
}

/**
 * Whether insertSubmissions writes these with its insert alone: nothing to read first (no
 * dependency, no idempotency key) and so nothing born ended, whose webhook messages it would write.
 */
function writesTheInsertAlone(submissions: readonly Submission[]): boolean {
  return submissions.every(({ newTasks }) => newTasks.every((input) => input.dependsOn.length === 0 && input.idempotencyKey === null));
}

/** Each submission all or nothing: its reads decide everything before the first write. */
export async function insertSubmissions(client: pg.PoolClient, submissions: readonly Submission[]): Promise<EnqueueResult[]> {
  const dependencyStates = await lockDependencies(client, submissions.flatMap((submission) => submission.newTasks));
  const results: (EnqueueResult | null)[] = [];
  const columns: unknown[][] = Array.from({ length: INSERTED_COLUMN_COUNT }, () => []);
  /** The rows of the insert, in its order. */
  const written: WrittenRow[] = [];
  for (const { newTasks, now } of submissions) {
    const rows: WrittenRow[] = [];
    let failed: EnqueueResult | null = null;
    for (const [index, input] of newTasks.entries()) {
      let birth: Birth = BORN_PENDING;
      if (input.dependsOn.length > 0) {
        const found = dependencyStates.get(input.organisationId)!;
        const missing = input.dependsOn.find((id) => !found.has(id));
        // A task whose key exists is that task, whatever it now depends on.
        if (
          missing !== undefined &&
          (input.idempotencyKey === null || (await findByIdempotencyKeys(client, input.organisationId, [input.idempotencyKey])).length === 0)
        ) {
          failed = { ok: false, index, missingDependency: missing };
          break;
        }
        const dependencies = input.dependsOn.map((id) => found.get(id));
        if (dependencies.some((dependencyState) => dependencyState === 'FAILED' || dependencyState === 'CANCELLED')) {
          birth = { state: 'FAILED', error: { code: DEPENDENCY_FAILED, message: 'A task it depends on failed or was cancelled.' } };
        } else if (dependencies.some((dependencyState) => dependencyState !== 'SUCCEEDED')) {
          birth = { state: 'SUSPENDED', error: null };
        }
      }
      rows.push({ input, birth, now, paramsJson: JSON.stringify(input.params) });
    }
    results.push(failed);
    if (failed) continue;
    for (const row of rows) {
      written.push(row);
      for (const [column, value] of insertedValues(row.input, row.birth, row.now, row.paramsJson).entries()) columns[column]!.push(value);
    }
  }
  const inserted = columns[0]!.length === 0 ? [] : insertedTasks(written, (await client.query(statements.insertTasks(columns))).rows as never[]);
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
    for (const task of await findByIdempotencyKeys(client, organisationId, keys)) {
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
  // Only a task whose dependency already failed is born ended; rare enough for the deliverers' periodic look.
  const bornEnded = inserted.filter((task) => task.state === 'FAILED');
  if (bornEnded.length > 0) await writeWebhookMessages(client, null, completions(bornEnded), submissions[0]!.now);
  return results.map((result) => result!);
}

interface WrittenRow {
  input: NewTask;
  birth: Birth;
  now: number;
  paramsJson: string;
}

/**
 * The tasks of the insert's returned ids, built from the rows written. RETURNING names no input
 * row: the unkeyed rows took ascending ids in input order, and a key's row is its first input
 * (a later one in the same statement met the conflict).
 */
function insertedTasks(written: readonly WrittenRow[], returned: readonly { id: number; organisationId: number; idempotencyKey: string | null }[]): Task[] {
  const unkeyed = written.filter((row) => row.input.idempotencyKey === null);
  const firstByKey = new Map<string, WrittenRow>();
  for (const row of written) {
    const key = `${row.input.organisationId}:${row.input.idempotencyKey}`;
    if (row.input.idempotencyKey !== null && !firstByKey.has(key)) firstByKey.set(key, row);
  }
  let nextUnkeyed = 0;
  return [...returned]
    .sort((a, b) => a.id - b.id)
    .map((task) => {
      const row = task.idempotencyKey === null ? unkeyed[nextUnkeyed++]! : firstByKey.get(`${task.organisationId}:${task.idempotencyKey}`)!;
      return insertedTask(row.input, task.id, row.birth, row.now, row.paramsJson);
    });
}

async function lockDependencies(client: pg.PoolClient, newTasks: readonly NewTask[]): Promise<Map<number, Map<number, TaskState>>> {
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

async function findByIdempotencyKeys(client: pg.PoolClient, organisationId: number, keys: readonly string[]): Promise<Task[]> {
  const { rows } = await client.query(statements.findByIdempotencyKeys([organisationId, keys]));
  return (rows as never[]).map(toTask);
}

/** A submission's statement failed, not the group's transaction: the group is worth a second run in savepoints. */
class SubmissionFailed extends Error {
  constructor(readonly reason: unknown) {
    super('a submission of the group failed', { cause: reason });
  }
}
