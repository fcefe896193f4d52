import type { QueueDepth } from '../../../domain/api.js';
import { TASK_STATES, type TaskState } from '../../../domain/types.js';
import { migrationsAfter } from '../../migrations.js';
import { migrationsFolder, type SqliteDatabase } from '../database.js';
import { preparedOnce } from '../queue/statements.js';

const statsStatements = preparedOnce((sqlite) => ({
  organisations: sqlite.prepare('SELECT id FROM organisations ORDER BY id'),
  // tasks_by_state (organisation, state, id) covers it: the count reads the index only, never a row.
  chunkOfState: sqlite.prepare(
    `SELECT count(*) AS count, max(id) AS lastId FROM (
       SELECT id FROM tasks INDEXED BY tasks_by_state
       WHERE organisation_id = @organisationId AND state = @state AND id > @afterId ORDER BY id LIMIT @limit)`,
  ),
  queueDepths: sqlite.prepare(
    `SELECT service, type AS action, count(*) AS pending, min(available_at) AS earliestDueAt
     FROM tasks INDEXED BY tasks_due WHERE state = 'PENDING' GROUP BY service, type`,
  ),
  lastMigration: sqlite.prepare('SELECT max(created_at) AS createdAt FROM __drizzle_migrations'),
}));

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Index entries counted per statement: a few milliseconds' work. SQLite counts by stepping through
 * the entries, and one organisation's 500,000 finished tasks in one statement held the event loop
 * 50 to 100 ms.
 */
const COUNT_CHUNK = 20_000;

/** The figures of metrics and readiness. */
export class StatsRecords {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }

  /** In chunks of each organisation's tasks of each state, yielding between them: a scrape must not hold the event loop. */
  async tasksByState(): Promise<Record<TaskState, number>> {
    const statements = statsStatements(this.#database.sqlite);
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
    const organisations = statements.organisations.all() as { id: number }[];
    for (const { id: organisationId } of organisations) {
      for (const state of TASK_STATES) {
        let afterId = 0;
        for (;;) {
          const chunk = statements.chunkOfState.get({ organisationId, state, afterId, limit: COUNT_CHUNK }) as {
            count: number;
            lastId: number | null;
          };
          counts[state] += chunk.count;
          if (chunk.count < COUNT_CHUNK || chunk.lastId === null) break;
          afterId = chunk.lastId;
          await nextTurn();
        }
      }
      await nextTurn();
    }
    return counts;
  }

  async queueDepths(): Promise<QueueDepth[]> {
    return statsStatements(this.#database.sqlite).queueDepths.all() as QueueDepth[];
  }

  async pendingMigrations(): Promise<number> {
    const row = statsStatements(this.#database.sqlite).lastMigration.get() as { createdAt: number | null };
    return migrationsAfter(migrationsFolder, row.createdAt === null ? null : Number(row.createdAt));
  }
}
