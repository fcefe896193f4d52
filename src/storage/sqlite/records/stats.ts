import type { QueueDepth } from '../../../domain/api.js';
import { TASK_STATES, type TaskState } from '../../../domain/types.js';
import { migrationsAfter } from '../../migrations.js';
import { migrationsFolder, type SqliteDatabase } from '../database.js';
import { preparedOnce } from '../queue/statements.js';

const statsStatements = preparedOnce((sqlite) => ({
  organisations: sqlite.prepare('SELECT id FROM organisations ORDER BY id'),
  // tasks_by_state covers it: the count reads the index only, never a row.
  statesOfOrganisation: sqlite.prepare(
    'SELECT state, count(*) AS count FROM tasks INDEXED BY tasks_by_state WHERE organisation_id = ? GROUP BY state',
  ),
  queueDepths: sqlite.prepare(
    `SELECT service, type AS action, count(*) AS pending, min(available_at) AS earliestDueAt
     FROM tasks INDEXED BY tasks_due WHERE state = 'PENDING' GROUP BY service, type`,
  ),
  lastMigration: sqlite.prepare('SELECT max(created_at) AS createdAt FROM __drizzle_migrations'),
}));

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The figures of metrics and readiness. */
export class StatsRecords {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }

  /** One organisation per statement, yielding between them: a scrape must not hold the event loop over a big table. */
  async tasksByState(): Promise<Record<TaskState, number>> {
    const statements = statsStatements(this.#database.sqlite);
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
    const organisations = statements.organisations.all() as { id: number }[];
    for (const { id } of organisations) {
      for (const row of statements.statesOfOrganisation.all(id) as { state: TaskState; count: number }[]) {
        counts[row.state] += row.count;
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
