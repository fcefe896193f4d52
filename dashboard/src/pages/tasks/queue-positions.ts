import { useEffect, useMemo } from 'react';
import { useQuery } from 'urql';
import { graphql } from '../../gql/index.ts';

const queuePositionsQuery = graphql(`
  query TasksQueuePositions($filter: TaskFilter!, $first: Int!) {
    tasks(filter: $filter, first: $first) {
      edges {
        node {
          id
          queuePosition
        }
      }
    }
  }
`);

// A place in a deep queue is counted, not stored: with 100,000 tasks ahead that is most of a page
// read's time. The rows draw first, and the places follow in a read of their own.
const REFRESH_MS = 5000;

/** The queue position of each given PENDING task, read after the rows and again every 5 s. */
export function useQueuePositions(pendingIds: readonly string[]): ReadonlyMap<string, number> {
  const idsKey = pendingIds.join(',');
  const ids = useMemo(() => (idsKey === '' ? [] : idsKey.split(',')), [idsKey]);
  const [result, reexecute] = useQuery({
    query: queuePositionsQuery,
    variables: { filter: { ids, state: ['PENDING'] }, first: Math.max(1, ids.length) },
    pause: ids.length === 0,
    requestPolicy: 'network-only',
  });
  useEffect(() => {
    if (ids.length === 0) return;
    const timer = setInterval(() => reexecute({ requestPolicy: 'network-only' }), REFRESH_MS);
    return () => clearInterval(timer);
  }, [ids, reexecute]);
  return useMemo(() => {
    const positions = new Map<string, number>();
    for (const { node } of result.data?.tasks.edges ?? []) {
      if (node.queuePosition != null) positions.set(node.id, node.queuePosition);
    }
    return positions;
  }, [result.data]);
}
