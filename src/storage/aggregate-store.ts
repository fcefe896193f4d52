import { FINISHED_MINUTES, FINISHED_WINDOWS_MINUTES, type FinishedCounts, type FinishedWindow, type TaskCounts } from '../domain/aggregates.js';
import { TASK_STATES, type TaskFilter, type TaskState, type TerminalState } from '../domain/types.js';

/** Tasks of one state that completed in one bucket of a series; buckets without any are absent. */
export interface CompletedInBucket {
  /** 0-based, from the series' start. */
  bucket: number;
  state: TerminalState;
  count: number;
}

/** One queue's figures as the statement reads them: the active counts and what finished lately. */
export interface QueueFigures {
  service: string;
  action: string;
  pending: number;
  processing: number;
  suspended: number;
  /** Epoch milliseconds; null when none is pending. */
  oldestPendingAt: number | null;
  finished: Record<FinishedWindow, FinishedCounts>;
  /** The last FINISHED_MINUTES minutes, oldest first. */
  finishedPerMinute: FinishedCounts[];
}

/**
 * Aggregates over one organisation's tasks, each in one statement that reads index entries only:
 * their cost grows with the tasks they count, never with the table.
 */
export interface AggregateStore {
  /** The tasks of the filter (the filter of listTasks), by state. */
  taskCounts(organisationId: number, filter: TaskFilter): Promise<TaskCounts>;
  /** Terminal tasks with `since <= dateCompleted <= until`, per bucket of `bucketMs` from `since`, by state. */
  completedByBucket(organisationId: number, since: number, until: number, bucketMs: number): Promise<CompletedInBucket[]>;
  /** Each queue with PENDING, SUSPENDED or PROCESSING tasks, or tasks finished in the 15 minutes up to `now`. */
  queueFigures(organisationId: number, now: number): Promise<QueueFigures[]>;
}

/** A row of the queue statement of either dialect: an active state's count, or a terminal state's completions. */
export interface QueueFigureRow {
  service: string;
  action: string;
  state: string;
  /** Active: tasks in the state; terminal: those finished in the minute `minutesAgo`. */
  count: number;
  /** Terminal states: whole minutes between the end and `now`, 0 to FINISHED_MINUTES - 1. */
  minutesAgo: number;
  /** Active states: the oldest dateCreated. */
  oldest: number | null;
}

const noneFinished = (): FinishedCounts => ({ SUCCEEDED: 0, FAILED: 0, CANCELLED: 0 });

/** The statement's rows, one queue each, ordered by service and action. */
export function queueFiguresOf(rows: readonly QueueFigureRow[]): QueueFigures[] {
  const queues = new Map<string, QueueFigures>();
  for (const row of rows) {
    const name = JSON.stringify([row.service, row.action]);
    let queue = queues.get(name);
    if (!queue) {
      queue = {
        service: row.service,
        action: row.action,
        pending: 0,
        processing: 0,
        suspended: 0,
        oldestPendingAt: null,
        finished: Object.fromEntries(FINISHED_WINDOWS_MINUTES.map((minutes) => [minutes, noneFinished()])) as QueueFigures['finished'],
        finishedPerMinute: Array.from({ length: FINISHED_MINUTES }, noneFinished),
      };
      queues.set(name, queue);
    }
    const count = Number(row.count);
    switch (row.state) {
      case 'PENDING':
        queue.pending = count;
        queue.oldestPendingAt = row.oldest === null ? null : Number(row.oldest);
        break;
      case 'PROCESSING':
        queue.processing = count;
        break;
      case 'SUSPENDED':
        queue.suspended = count;
        break;
      case 'SUCCEEDED':
      case 'FAILED':
      case 'CANCELLED':
        for (const minutes of FINISHED_WINDOWS_MINUTES) {
          if (Number(row.minutesAgo) < minutes) queue.finished[minutes][row.state] += count;
        }
        queue.finishedPerMinute[FINISHED_MINUTES - 1 - Number(row.minutesAgo)]![row.state] += count;
    }
  }
  return [...queues.values()].sort((a, b) => (a.service === b.service ? cmp(a.action, b.action) : cmp(a.service, b.service)));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The rows of a count by state, with 0 for the states none is in. */
export function countsOf(rows: readonly { state: TaskState; count: number | string }[]): TaskCounts {
  const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as TaskCounts;
  for (const row of rows) counts[row.state] += Number(row.count);
  return counts;
}
