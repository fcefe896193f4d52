import { asc, eq, gte, lt } from 'drizzle-orm';
import type { WorkerProcess } from '../../domain/workers.js';
import { toWorkerProcess, toWorkerProcessRow, type WorkerBeat, type WorkerRegistry } from '../worker-registry.js';
import type { PgDatabase, PgDrizzle } from './database.js';
import { workerProcesses } from './schema.js';

export class PgWorkerRegistry implements WorkerRegistry {
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
    this.#db = database.db;
  }

  // Two statements without a transaction: the deletion only tidies, and may run in any process.
  async beat(process: WorkerBeat, now: number, forgetBefore: number): Promise<void> {
    const row = toWorkerProcessRow(process, now);
    await this.#db
      .insert(workerProcesses)
      .values(row)
      .onConflictDoUpdate({ target: workerProcesses.owner, set: { running: row.running, heartbeatAt: row.heartbeatAt } });
    await this.#db.delete(workerProcesses).where(lt(workerProcesses.heartbeatAt, forgetBefore));
  }

  async leave(owner: string): Promise<void> {
    await this.#db.delete(workerProcesses).where(eq(workerProcesses.owner, owner));
  }

  async alive(since: number): Promise<WorkerProcess[]> {
    const rows = await this.#db
      .select()
      .from(workerProcesses)
      .where(gte(workerProcesses.heartbeatAt, since))
      .orderBy(asc(workerProcesses.startedAt), asc(workerProcesses.owner));
    return rows.map(toWorkerProcess);
  }
}
