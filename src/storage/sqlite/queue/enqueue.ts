import type Database from 'better-sqlite3';
import type { Task, TaskState } from '../../../domain/types.js';
import type { EnqueueResult, NewTask } from '../../contract.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { BORN_PENDING, INSERTED_COLUMN_COUNT, INSERTED_COLUMNS, insertedTask, insertedValues, type Birth } from '../../new-task.js';
import { DEPENDENCY_FAILED } from './dependents.js';
import { preparedOnce, type Statement } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';

export const enqueueStatements = preparedOnce((sqlite) => ({
  findByIdempotencyKey: sqlite.prepare(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE organisation_id = ? AND idempotency_key = ?`,
  ),
  dependencyStates: sqlite.prepare(
    `SELECT id, state FROM tasks WHERE organisation_id = ? AND id IN (SELECT value FROM json_each(?))`,
  ),
  insertDependency: sqlite.prepare(`INSERT OR IGNORE INTO task_dependencies (task_id, depends_on_id) VALUES (?, ?)`),
}));

interface PendingEnqueue {
  newTasks: readonly NewTask[];
  now: number;
  resolve: (result: EnqueueResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: submissions that arrive in the same turn of the event loop share one
 * transaction, each inside its own savepoint so that one failing batch rolls back alone. A
 * commit costs far more than an insert, so concurrent submitters go several times faster.
 */
export class EnqueueGroups {
  readonly #sqlite: Database.Database;

  constructor(sqlite: Database.Database) {
    this.#sqlite = sqlite;
    this.#insertTasks = sqlite.transaction((newTasks: readonly NewTask[], now: number) =>
      insertTasksInTransaction(sqlite, newTasks, now),
    );
  }

  enqueue(newTasks: readonly NewTask[], now: number): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      this.#pendingEnqueues.push({ newTasks, now, resolve, reject });
      if (this.#pendingEnqueues.length === 1) setImmediate(() => this.#commitEnqueues());
    });
  }

  readonly #pendingEnqueues: PendingEnqueue[] = [];

  #commitEnqueues(): void {
    const group = this.#pendingEnqueues.splice(0);
    if (group.length > 1 && group.every((call) => call.newTasks.every(needsNoRead)) && this.#insertTogether(group)) return;
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

  /**
   * A group of submissions that read nothing, written together: many rows a statement, no
   * savepoint each. False when the group's transaction failed and wrote nothing: then each goes
   * again in its own savepoint, which finds the one at fault.
   */
  #insertTogether(group: readonly PendingEnqueue[]): boolean {
    const inputs = group.flatMap((call) => call.newTasks);
    const nows = group.flatMap((call) => call.newTasks.map(() => call.now));
    let tasks: Task[];
    try {
      tasks = this.#sqlite
        .transaction(() => {
          const written = insertPending(this.#sqlite, inputs, nows);
          writeWebhookMessages(this.#sqlite, completions(written), group[0]!.now);
          return written;
        })
        .immediate();
    } catch {
      return false;
    }
    let next = 0;
    for (const call of group) {
      const own = tasks.slice(next, (next += call.newTasks.length));
      call.resolve({ ok: true, tasks: own.map((task) => ({ task, created: true })) });
    }
    return true;
  }

  /** One submission, all or nothing: run inside the group's transaction, it is a savepoint. */
  readonly #insertTasks: (newTasks: readonly NewTask[], now: number) => EnqueueResult;
}

/** One submission's inserts, inside a transaction the caller opened (a schedule's fire opens one with its run). */
export function insertTasksInTransaction(sqlite: Database.Database, newTasks: readonly NewTask[], now: number): EnqueueResult {
  const statements = enqueueStatements(sqlite);
  const tasks: { task: Task; created: boolean }[] = [];
  // Inputs that need nothing read first are written together, many rows a statement.
  let unread: NewTask[] = [];
  const writeUnread = () => {
    if (unread.length === 0) return;
    for (const task of insertPending(sqlite, unread, now)) tasks.push({ task, created: true });
    unread = [];
  };
  for (const [index, input] of newTasks.entries()) {
    if (needsNoRead(input)) {
      unread.push(input);
      continue;
    }
    writeUnread();
    if (input.idempotencyKey !== null) {
      const existing = statements.findByIdempotencyKey.get(input.organisationId, input.idempotencyKey);
      if (existing) {
        tasks.push({ task: toTask(existing as never), created: false });
        continue;
      }
    }
    let birth: Birth = BORN_PENDING;
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
        birth = { state: 'FAILED', error: { code: DEPENDENCY_FAILED, message: 'A task it depends on failed or was cancelled.' } };
      } else if (states.some((dependencyState) => dependencyState !== 'SUCCEEDED')) {
        birth = { state: 'SUSPENDED', error: null };
      }
    }
    const paramsJson = JSON.stringify(input.params);
    const { lastInsertRowid } = insertStatement(sqlite, 1).run(insertedValues(input, birth, now, paramsJson));
    const task = insertedTask(input, Number(lastInsertRowid), birth, now, paramsJson);
    for (const dependencyId of input.dependsOn) statements.insertDependency.run(task.id, dependencyId);
    tasks.push({ task, created: true });
  }
  writeUnread();
  writeWebhookMessages(sqlite, completions(tasks.filter((entry) => entry.created).map((entry) => entry.task)), now);
  return { ok: true, tasks };
}

/** An input whose row depends on nothing in the database: no key to look up, no dependency to read. */
const needsNoRead = (input: NewTask) => input.idempotencyKey === null && input.dependsOn.length === 0;

/** The most rows one statement writes; with every size a power of two below it, a connection keeps 8 statements. */
const MAX_ROWS_PER_INSERT = 128;

const insertStatements = new WeakMap<Database.Database, Map<number, Statement>>();

/** The insert of `rows` rows, prepared once per connection. */
function insertStatement(sqlite: Database.Database, rows: number): Statement {
  let bySize = insertStatements.get(sqlite);
  if (!bySize) insertStatements.set(sqlite, (bySize = new Map()));
  let statement = bySize.get(rows);
  if (!statement) {
    const row = `(${Array(INSERTED_COLUMN_COUNT).fill('?').join(', ')})`;
    statement = sqlite.prepare(`INSERT INTO tasks (${INSERTED_COLUMNS}) VALUES ${Array(rows).fill(row).join(', ')}`);
    bySize.set(rows, statement);
  }
  return statement;
}

/**
 * PENDING tasks of inputs that need no read, written by multi-row inserts. The connection is this
 * transaction's alone and AUTOINCREMENT hands out ids one above the largest ever, so a statement's
 * rows take the ids that end at its last insert rowid, in input order.
 */
function insertPending(sqlite: Database.Database, inputs: readonly NewTask[], now: number | readonly number[]): Task[] {
  const nowOf = (index: number) => (typeof now === 'number' ? now : now[index]!);
  const tasks: Task[] = [];
  let first = 0;
  while (first < inputs.length) {
    const remaining = inputs.length - first;
    const size = remaining >= MAX_ROWS_PER_INSERT ? MAX_ROWS_PER_INSERT : 2 ** Math.floor(Math.log2(remaining));
    const values: unknown[] = [];
    const paramsJson: string[] = [];
    for (let offset = 0; offset < size; offset++) {
      const input = inputs[first + offset]!;
      const json = JSON.stringify(input.params);
      paramsJson.push(json);
      insertedValues(input, BORN_PENDING, nowOf(first + offset), json, values);
    }
    const { lastInsertRowid, changes } = insertStatement(sqlite, size).run(values);
    if (changes !== size) throw new Error(`an insert of ${size} tasks wrote ${changes}`);
    const firstId = Number(lastInsertRowid) - size + 1;
    for (let offset = 0; offset < size; offset++) {
      tasks.push(insertedTask(inputs[first + offset]!, firstId + offset, BORN_PENDING, nowOf(first + offset), paramsJson[offset]!));
    }
    first += size;
  }
  return tasks;
}

class MissingDependency extends Error {
  constructor(
    readonly index: number,
    readonly dependencyId: number,
  ) {
    super(`task ${dependencyId} does not exist`);
  }
}
