import { asc, eq, gte, lt } from 'drizzle-orm';
import type { WorkerProcess } from '../../domain/workers.js';
import { toWorkerProcess, toWorkerProcessRow, type WorkerBeat, type WorkerRegistry } from '../worker-registry.js';
import type { Drizzle, SqliteDatabase } from './database.js';
import { workerProcesses } from './schema.js';

export class SqliteWorkerRegistry implements WorkerRegistry {
  readonly #db: Drizzle;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
  }

  async beat(process: WorkerBeat, now: number, forgetBefore: number): Promise<void> {
    const row = toWorkerProcessRow(process, now);
    this.#db.transaction((tx) => {
      tx.insert(workerProcesses)
        .values(row)
        .onConflictDoUpdate({ target: workerProcesses.owner, set: { running: row.running, heartbeatAt: row.heartbeatAt } })
        .run();
      tx.delete(workerProcesses).where(lt(workerProcesses.heartbeatAt, forgetBefore)).run();
    });
  }

  async leave(owner: string): Promise<void> {
    this.#db.delete(workerProcesses).where(eq(workerProcesses.owner, owner)).run();
  }

  async alive(since: number): Promise<WorkerProcess[]> {
    const rows = this.#db
      .select()
      .from(workerProcesses)
      .where(gte(workerProcesses.heartbeatAt, since))
      .orderBy(asc(workerProcesses.startedAt), asc(workerProcesses.owner))
      .all();
    return rows.map(toWorkerProcess);
  }
}
