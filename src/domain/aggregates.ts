// Aggregates of an organisation's tasks, for the dashboard and for any client that watches its
// queues: counts by state, completions over time, and each queue's figures. Leaf module.

import { ValidationError } from './errors.js';
import type { TaskState, TerminalState } from './types.js';

export const AGGREGATE_LIMITS = Object.freeze({
  /** How far back a throughput series may start: the index range it reads stays a day's completions. */
  throughputWindowMs: 24 * 3_600_000,
  bucketSecondsMin: 10,
  bucketSecondsMax: 3600,
  /** A day of minutes. */
  throughputBucketsMax: 1440,
});

/** queueStats counts what finished in each of these last minutes. */
export const FINISHED_WINDOWS_MINUTES = Object.freeze([1, 5, 15] as const);
export type FinishedWindow = (typeof FINISHED_WINDOWS_MINUTES)[number];
/** The longest of the windows: what queueStats reads of the finished tasks. */
export const FINISHED_MINUTES = 15 satisfies FinishedWindow;

/** Tasks of each state, with 0 for the states none is in. */
export type TaskCounts = Record<TaskState, number>;

/** Finished tasks, by how they ended. */
export type FinishedCounts = Record<TerminalState, number>;

export interface ThroughputBucket {
  start: Date;
  /** Tasks whose dateCompleted falls in [start, start + bucketSeconds). */
  completed: FinishedCounts;
}

/** One queue (an action of a service) as an organisation sees it. */
export interface QueueStats {
  service: string;
  action: string;
  pending: number;
  processing: number;
  suspended: number;
  /** dateCreated of its oldest PENDING task; null when none is pending. */
  oldestPendingDate: Date | null;
  finished: Record<FinishedWindow, FinishedCounts>;
  /** The last FINISHED_MINUTES minutes, one entry a minute, oldest first. */
  finishedPerMinute: FinishedCounts[];
}

/** The buckets a series has: validated, from `since` on, as many as reach `now`. */
export interface ThroughputSeries {
  since: number;
  bucketMs: number;
  buckets: number;
}

/** ValidationError naming the argument at fault; times are epoch milliseconds. */
export function throughputSeries(since: number, bucketSeconds: number, now: number): ThroughputSeries {
  const { throughputWindowMs, bucketSecondsMin, bucketSecondsMax, throughputBucketsMax } = AGGREGATE_LIMITS;
  if (!Number.isInteger(bucketSeconds) || bucketSeconds < bucketSecondsMin || bucketSeconds > bucketSecondsMax) {
    throw new ValidationError('INVALID', `bucketSeconds must be from ${bucketSecondsMin} to ${bucketSecondsMax}; got ${bucketSeconds}`, 'bucketSeconds');
  }
  if (!Number.isFinite(since) || since < now - throughputWindowMs || since > now) {
    throw new ValidationError('INVALID', `since must be within the last ${throughputWindowMs / 3_600_000} hours, not in the future`, 'since');
  }
  const bucketMs = bucketSeconds * 1000;
  const buckets = Math.max(1, Math.ceil((now - since) / bucketMs));
  if (buckets > throughputBucketsMax) {
    throw new ValidationError(
      'INVALID',
      `at most ${throughputBucketsMax} buckets; since and bucketSeconds ${bucketSeconds} make ${buckets}: use larger buckets or a later since`,
      'bucketSeconds',
    );
  }
  return { since, bucketMs, buckets };
}

/** The most buckets a series of `bucketSeconds` can have, for the cost of a response. */
export function maxThroughputBuckets(bucketSeconds: number): number {
  const { throughputWindowMs, bucketSecondsMin, throughputBucketsMax } = AGGREGATE_LIMITS;
  const size = Math.max(bucketSecondsMin, Number.isFinite(bucketSeconds) ? bucketSeconds : bucketSecondsMin) * 1000;
  return Math.min(throughputBucketsMax, Math.ceil(throughputWindowMs / size));
}

/** Every bucket of the series, with the counts of the rows (bucket, state, count) that have any. */
export function throughputBuckets(
  series: ThroughputSeries,
  rows: readonly { bucket: number; state: TerminalState; count: number }[],
): ThroughputBucket[] {
  const buckets = Array.from({ length: series.buckets }, (_, index) => ({
    start: new Date(series.since + index * series.bucketMs),
    completed: { SUCCEEDED: 0, FAILED: 0, CANCELLED: 0 },
  }));
  for (const row of rows) {
    // A task that ended at `now` itself, when a bucket's end falls there, counts in the last one.
    const bucket = buckets[Math.min(Number(row.bucket), series.buckets - 1)];
    if (bucket) bucket.completed[row.state] += Number(row.count);
  }
  return buckets;
}
