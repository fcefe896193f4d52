import type Database from 'better-sqlite3';
import type { Task, TaskError, TaskState } from '../../../domain/types.js';
import type { EnqueueResult, NewTask } from '../../contract.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { DEPENDENCY_FAILED } from './dependents.js';
import { webhookEventMask } from '../../../domain/webhooks.js';
import { preparedOnce } from './statements.js';
import { writeWebhookMessages } from './webhooks.js';
import { completions } from '../../webhook-outbox.js';

export const enqueueStatements = preparedOnce((sqlite) => ({
  findByIdempotencyKey: sqlite.prepare(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE organisation_id = ? AND idempotency_key = ?`,
  ),
  dependencyStates: sqlite.prepare(
    `SELECT id, state FROM tasks WHERE organisation_id = ? AND id IN (SELECT value FROM json_each(?))`,
  ),
  insertTask: sqlite.prepare(
    `INSERT INTO tasks (organisation_id, key_id, user, source_id, source_type, session, poll, service, type,
       target, params, state, priority, attempts, max_attempts, timeout_ms, error_code, error_message,
       retrieval_protocol, idempotency_key, run_at, available_at, date_created, date_completed,
       webhook_url, webhook_events, schedule_id, scheduled_for)
     VALUES (@organisationId, @keyId, @user, @sourceId, @sourceType, @session, @poll, @service, @type,
       @target, @params, @state, @priority, 0, @maxAttempts, @timeoutMs, @errorCode, @errorMessage,
       @retrievalProtocol, @idempotencyKey, @runAt, @availableAt, @now, @dateCompleted,
       @webhookUrl, @webhookEvents, @scheduleId, @scheduledFor)
     RETURNING ${TASK_COLUMNS}`,
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
}

/** One submission's inserts, inside a transaction the caller opened (a schedule's fire opens one with its run). */
export function insertTasksInTransaction(sqlite: Database.Database, newTasks: readonly NewTask[], now: number): EnqueueResult {
  const statements = enqueueStatements(sqlite);
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
    const { dependsOn, webhook, scheduleId, scheduledFor, ...columns } = input;
    const record = statements.insertTask.get({
      ...columns,
      webhookUrl: webhook?.url ?? null,
      webhookEvents: webhook ? webhookEventMask(webhook.events) : null,
      scheduleId: scheduleId ?? null,
      scheduledFor: scheduledFor ?? null,
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
  writeWebhookMessages(sqlite, completions(tasks.filter((entry) => entry.created).map((entry) => entry.task)), now);
  return { ok: true, tasks };
}

class MissingDependency extends Error {
  constructor(
    readonly index: number,
    readonly dependencyId: number,
  ) {
    super(`task ${dependencyId} does not exist`);
  }
}
