import { useEffect, useState } from 'react';
import { useQuery } from 'urql';
import { describeError } from '../errors.ts';
import { formatAge, number } from '../format.ts';
import { graphql } from '../gql/index.ts';
import type { FinishedCountsFieldsFragment, OverviewQuery } from '../gql/graphql.ts';

const overviewQuery = graphql(`
  query Overview {
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

export function Overview() {
  const [result, reexecute] = useQuery({ query: overviewQuery, requestPolicy: 'network-only' });
  const [updated, setUpdated] = useState<Date | null>(null);

  useEffect(() => {
    const timer = setInterval(() => reexecute({ requestPolicy: 'network-only' }), refreshMs);
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
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      )}
    </>
  );
}
