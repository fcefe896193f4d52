import type { WorkerProcess } from '../domain/workers.js';

export type WorkerBeat = Omit<WorkerProcess, 'heartbeatAt'>;

/** Which processes run workers on this database: each says so every WORKER_HEARTBEAT_MS. */
export interface WorkerRegistry {
  /** Records the process as alive at `now`, and deletes the rows of processes silent since `forgetBefore`. */
  beat(process: WorkerBeat, now: number, forgetBefore: number): Promise<void>;
  /** The process stopped. */
  leave(owner: string): Promise<void>;
  /** The processes heard from since `since`, oldest first. */
  alive(since: number): Promise<WorkerProcess[]>;
}

/** The row as both dialects store it (times in epoch milliseconds, actions as JSON). */
export interface WorkerProcessRow {
  owner: string;
  hostname: string;
  pid: number;
  concurrency: number;
  actions: string;
  running: number;
  startedAt: number;
  heartbeatAt: number;
}

export function toWorkerProcessRow(process: WorkerBeat, now: number): WorkerProcessRow {
  return { ...process, actions: JSON.stringify(process.actions), startedAt: process.startedAt.getTime(), heartbeatAt: now };
}

export function toWorkerProcess(row: WorkerProcessRow): WorkerProcess {
  return {
    ...row,
    actions: JSON.parse(row.actions) as string[],
    startedAt: new Date(row.startedAt),
    heartbeatAt: new Date(row.heartbeatAt),
  };
}
