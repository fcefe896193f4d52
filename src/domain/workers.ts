/** A process that runs a worker, as its last heartbeat described it. */
export interface WorkerProcess {
  /** The name its claims carry (a task's lease owner). */
  owner: string;
  hostname: string;
  pid: number;
  concurrency: number;
  /** "service.action" of each action it claims. */
  actions: string[];
  /** Tasks it ran at its last heartbeat. */
  running: number;
  startedAt: Date;
  heartbeatAt: Date;
}

export const WORKER_HEARTBEAT_MS = 5000;
/** Silent for longer, a process is not listed: it stopped without saying so, or it stalls. */
export const WORKER_ALIVE_MS = 3 * WORKER_HEARTBEAT_MS;
/** Silent for longer, its row is deleted by the next heartbeat of any process. */
export const WORKER_FORGET_MS = 3_600_000;
