import type { QueueDepth } from '../../../domain/api.js';
import { TASK_STATES, type TaskState } from '../../../domain/types.js';
import { migrationsAfter } from '../../migrations.js';
import { migrationsFolder, type PgDatabase } from '../database.js';

/** The figures of metrics and readiness: of the whole database, whichever process asks. */
export class StatsRecords {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }

  async tasksByState(): Promise<Record<TaskState, number>> {
    const { rows } = await this.#database.pool.query<{ state: TaskState; count: number }>(
      'SELECT state, count(*) AS count FROM tasks GROUP BY state',
    );
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
    for (const row of rows) counts[row.state] += row.count;
    return counts;
  }

  async queueDepths(): Promise<QueueDepth[]> {
    const { rows } = await this.#database.pool.query<QueueDepth>(
      `SELECT service, type AS action, count(*) AS pending, min(available_at) AS "earliestDueAt"
       FROM tasks WHERE state = 'PENDING' GROUP BY service, type`,
    );
    return rows;
  }

  async pendingMigrations(): Promise<number> {
    const { rows } = await this.#database.pool.query<{ createdAt: string | number | null }>(
      'SELECT max(created_at) AS "createdAt" FROM drizzle.__drizzle_migrations',
    );
    const createdAt = rows[0]?.createdAt ?? null;
    return migrationsAfter(migrationsFolder, createdAt === null ? null : Number(createdAt));
  }
}
