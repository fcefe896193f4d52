import { useEffect, useRef, useState } from 'react';
import { useQuery } from 'urql';
import { Sparkline } from '../components/Sparkline.tsx';
import { ThroughputChart } from '../components/ThroughputChart.tsx';
import { describeError } from '../errors.ts';
import { formatAge, formatDate, number } from '../format.ts';
import { graphql } from '../gql/index.ts';
import type { FinishedCountsFieldsFragment, OverviewQuery } from '../gql/graphql.ts';
import { useViewer } from '../viewer.ts';

const overviewQuery = graphql(`
  query Overview($since: DateTime!, $bucketSeconds: Int!, $admin: Boolean!) {
    taskThroughput(since: $since, bucketSeconds: $bucketSeconds) {
      __typename
      ... on TaskThroughputSuccess {
        buckets {
          start
          succeeded
          failed
          cancelled
        }
      }
      ... on ValidationError {
        message
      }
    }
    workerProcesses @include(if: $admin) {
      id
      hostname
      pid
      concurrency
      running
      actions
      startedAt
      heartbeatAt
    }
    allocations @include(if: $admin) {
      id
      name
      service
      action
      instances
      busy
      executions
      dateCreated
    }
    taskCounts(filter: {}) {
      pending
      suspended
      processing
      succeeded
      failed
      cancelled
      total
    }
    queueStats {
      service
      action
      pending
      processing
      suspended
      oldestPendingDate
      finishedLastMinute {
        ...FinishedCountsFields
      }
      finishedLast5Minutes {
        ...FinishedCountsFields
      }
      finishedLast15Minutes {
        ...FinishedCountsFields
      }
      finishedPerMinute {
        total
      }
    }
  }

  fragment FinishedCountsFields on FinishedCounts {
    succeeded
    failed
    cancelled
    total
  }
`);

// Polling is live enough for counts; subscriptions carry single tasks, not aggregates.
const refreshMs = 2000;
const THROUGHPUT_WINDOW_MS = 15 * 60_000;
const BUCKET_SECONDS = 30;

/** The window's start on a bucket boundary, so that successive refreshes read the same buckets. */
function throughputSince(now: number): string {
  const bucketMs = BUCKET_SECONDS * 1000;
  return new Date(Math.floor((now - THROUGHPUT_WINDOW_MS) / bucketMs) * bucketMs + bucketMs).toISOString();
}

type Counts = OverviewQuery['taskCounts'];
type Finished = FinishedCountsFieldsFragment;

const stateRows: ReadonlyArray<{ label: string; field: Exclude<keyof Counts, '__typename' | 'total'> }> = [
  { label: 'Pending', field: 'pending' },
  { label: 'Suspended', field: 'suspended' },
  { label: 'Processing', field: 'processing' },
  { label: 'Succeeded', field: 'succeeded' },
  { label: 'Failed', field: 'failed' },
  { label: 'Cancelled', field: 'cancelled' },
];

function FinishedCell({ counts }: { counts: Finished }) {
  const bad = counts.failed + counts.cancelled;
  return (
    <td className="num">
      {number.format(counts.total)}
      {bad > 0 && (
        <span className="sub">
          {' '}
          ({counts.failed > 0 && `${number.format(counts.failed)} failed`}
          {counts.failed > 0 && counts.cancelled > 0 && ', '}
          {counts.cancelled > 0 && `${number.format(counts.cancelled)} cancelled`})
        </span>
      )}
    </td>
  );
}

type Buckets = Extract<OverviewQuery['taskThroughput'], { __typename: 'TaskThroughputSuccess' }>['buckets'];

/** The chart in words, for those who do not see it. */
function ThroughputSummary({ buckets }: { buckets: Buckets }) {
  const total = (field: 'succeeded' | 'failed' | 'cancelled') => buckets.reduce((sum, bucket) => sum + bucket[field], 0);
  return (
    <>
      Per {BUCKET_SECONDS} s. In all: {number.format(total('succeeded'))} succeeded (solid line),{' '}
      {number.format(total('failed'))} failed (dashed), {number.format(total('cancelled'))} cancelled (dotted).
    </>
  );
}

export function Overview() {
  const admin = useViewer().key.role === 'ADMIN';
  const [since, setSince] = useState(() => throughputSince(Date.now()));
  const [result, reexecute] = useQuery({
    query: overviewQuery,
    variables: { since, bucketSeconds: BUCKET_SECONDS, admin },
    requestPolicy: 'network-only',
  });
  const [updated, setUpdated] = useState<Date | null>(null);

  const sinceRef = useRef(since);
  sinceRef.current = since;
  useEffect(() => {
    const timer = setInterval(() => {
      const next = throughputSince(Date.now());
      // A new window refetches by itself; within one bucket, ask again.
      if (next !== sinceRef.current) setSince(next);
      else reexecute({ requestPolicy: 'network-only' });
    }, refreshMs);
    return () => clearInterval(timer);
  }, [reexecute]);

  useEffect(() => {
    if (result.data && !result.fetching) setUpdated(new Date());
  }, [result.data, result.fetching]);

  const { data, error } = result;
  const now = updated?.getTime() ?? Date.now();

  return (
    <>
      <h1>Overview</h1>
      <p className="hint" aria-live="off">
        Refreshed every {refreshMs / 1000} s{updated && <>; last at {updated.toLocaleTimeString()}</>}.
      </p>
      {error && (
        <p role="alert" className="error">
          {describeError(error)}
        </p>
      )}
      {!data && !error && <p role="status">Loading…</p>}
      {data && (
        <>
          <section aria-labelledby="states-heading">
            <h2 id="states-heading">Tasks by state</h2>
            <table className="states">
              <thead>
                <tr>
                  <th scope="col">State</th>
                  <th scope="col" className="num">
                    Tasks
                  </th>
                </tr>
              </thead>
              <tbody>
                {stateRows.map(({ label, field }) => (
                  <tr key={field} data-state={field}>
                    <th scope="row">
                      <span className="dot" aria-hidden="true" />
                      {label}
                    </th>
                    <td className="num">{number.format(data.taskCounts[field])}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row">Total</th>
                  <td className="num">{number.format(data.taskCounts.total)}</td>
                </tr>
              </tfoot>
            </table>
          </section>
          <section aria-labelledby="queues-heading">
            <h2 id="queues-heading">Queues</h2>
            {data.queueStats.length === 0 ? (
              <p>No queue has tasks yet.</p>
            ) : (
              <div className="scroll" tabIndex={0} role="region" aria-labelledby="queues-heading">
                <table className="queues">
                  <thead>
                    <tr>
                      <th scope="col">Service</th>
                      <th scope="col">Action</th>
                      <th scope="col" className="num">
                        Pending
                      </th>
                      <th scope="col" className="num">
                        Processing
                      </th>
                      <th scope="col" className="num">
                        Suspended
                      </th>
                      <th scope="col" className="num">
                        Oldest pending
                      </th>
                      <th scope="col" className="num">
                        Finished, 1 min
                      </th>
                      <th scope="col" className="num">
                        5 min
                      </th>
                      <th scope="col" className="num">
                        15 min
                      </th>
                      <th scope="col">Per minute</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.queueStats.map((queue) => (
                      <tr key={`${queue.service}\u0000${queue.action}`}>
                        <td>{queue.service}</td>
                        <td>{queue.action}</td>
                        <td className="num">{number.format(queue.pending)}</td>
                        <td className="num">{number.format(queue.processing)}</td>
                        <td className="num">{number.format(queue.suspended)}</td>
                        <td className="num">
                          {queue.oldestPendingDate == null ? (
                            '—'
                          ) : (
                            <time dateTime={queue.oldestPendingDate} title={queue.oldestPendingDate}>
                              {formatAge(now - Date.parse(queue.oldestPendingDate))}
                            </time>
                          )}
                        </td>
                        <FinishedCell counts={queue.finishedLastMinute} />
                        <FinishedCell counts={queue.finishedLast5Minutes} />
                        <FinishedCell counts={queue.finishedLast15Minutes} />
                        <td>
                          <Sparkline
                            values={queue.finishedPerMinute.map((minute) => minute.total)}
                            label={`${queue.service}.${queue.action} finished per minute`}
                          />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
          <section aria-labelledby="throughput-heading">
            <h2 id="throughput-heading">Tasks ended, last 15 minutes</h2>
            {data.taskThroughput.__typename === 'TaskThroughputSuccess' ? (
              <figure className="throughput">
                <ThroughputChart buckets={data.taskThroughput.buckets} bucketSeconds={BUCKET_SECONDS} />
                <figcaption>
                  <ThroughputSummary buckets={data.taskThroughput.buckets} />
                </figcaption>
              </figure>
            ) : (
              <p role="alert" className="error">
                {data.taskThroughput.__typename === 'ValidationError' ? data.taskThroughput.message : 'No throughput.'}
              </p>
            )}
          </section>
          {data.workerProcesses && (
            <section aria-labelledby="workers-heading">
              <h2 id="workers-heading">Worker processes</h2>
              {data.workerProcesses.length === 0 ? (
                <p>No process runs a worker: tasks wait until one starts.</p>
              ) : (
                <div className="scroll" tabIndex={0} role="region" aria-labelledby="workers-heading">
                  <table className="workers">
                    <thead>
                      <tr>
                        <th scope="col">Host</th>
                        <th scope="col" className="num">
                          PID
                        </th>
                        <th scope="col" className="num">
                          Running / concurrency
                        </th>
                        <th scope="col" className="num">
                          Actions
                        </th>
                        <th scope="col" className="num">
                          Up for
                        </th>
                        <th scope="col" className="num">
                          Last heard
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {data.workerProcesses.map((worker) => (
                        <tr key={worker.id}>
                          <td>{worker.hostname}</td>
                          <td className="num">{worker.pid}</td>
                          <td className="num">
                            {number.format(worker.running)} / {number.format(worker.concurrency)}
                          </td>
                          <td className="num" title={worker.actions.join(', ')}>
                            {number.format(worker.actions.length)}
                          </td>
                          <td className="num">{formatAge(now - Date.parse(worker.startedAt))}</td>
                          <td className="num">{formatAge(now - Date.parse(worker.heartbeatAt))} ago</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </section>
          )}
          {data.allocations && (
            <section aria-labelledby="allocations-heading">
              <h2 id="allocations-heading">Allocations</h2>
              {data.allocations.length === 0 ? (
                <p>No allocation yet: real-time actions run on the capacity an allocation reserves.</p>
              ) : (
                <div className="scroll" tabIndex={0} role="region" aria-labelledby="allocations-heading">
                  <table className="allocations">
                    <thead>
                      <tr>
                        <th scope="col">Name</th>
                        <th scope="col">Service</th>
                        <th scope="col">Action</th>
                        <th scope="col" className="num">
                          Busy / instances
                        </th>
                        <th scope="col" className="num">
                          Calls answered
                        </th>
                        <th scope="col">Created</th>
                      </tr>
                    </thead>
                    <tbody>
                      {data.allocations.map((allocation) => (
                        <tr key={allocation.id}>
                          <td>{allocation.name}</td>
                          <td>{allocation.service}</td>
                          <td>{allocation.action}</td>
                          <td className="num">
                            {number.format(allocation.busy)} / {number.format(allocation.instances)}
                          </td>
                          <td className="num">{number.format(allocation.executions)}</td>
                          <td>
                            <time dateTime={allocation.dateCreated}>{formatDate(allocation.dateCreated)}</time>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </section>
          )}
        </>
      )}
    </>
  );
}
