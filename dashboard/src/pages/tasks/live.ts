import { useEffect, useRef, useState } from 'react';
import { useClient } from 'urql';
import { graphql } from '../../gql/index.ts';
import type { TaskFilter } from '../../gql/graphql.ts';
import type { TaskRow } from './TaskTable.tsx';

const liveSubscription = graphql(`
  subscription TasksLive($filter: TaskFilter!) {
    taskEvents(filter: $filter) {
      kind
      task {
        ...TasksRowFields
      }
    }
  }
`);

const catchUpQuery = graphql(`
  query TasksCatchUp($filter: TaskFilter!, $first: Int!) {
    tasks(filter: $filter, first: $first) {
      edges {
        node {
          ...TasksRowFields
        }
      }
    }
  }
`);

// graphql-ws does not acknowledge a subscription: a change made between the page's read and the
// moment the server listens would be missed, so the rows are read once more after this long.
const CATCH_UP_MS = 1000;

export interface LiveRow {
  row: TaskRow;
  /** performance.now() of the moment the row was known to be this way. */
  at: number;
}

export type LiveState = { status: 'live' | 'paused' | 'idle' } | { status: 'error'; message: string };

/**
 * The newest known version of each of the given tasks, from taskEvents filtered on their ids,
 * while `enabled`; re-subscribes whenever the set of ids changes.
 */
export function useLiveRows(ids: string[], enabled: boolean): { rows: ReadonlyMap<string, LiveRow>; state: LiveState } {
  const client = useClient();
  const [rows, setRows] = useState<ReadonlyMap<string, LiveRow>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const idsKey = ids.join(',');
  const lastEvent = useRef(new Map<string, number>());

  useEffect(() => {
    setError(null);
    if (!enabled || idsKey === '') return;
    const wanted = idsKey.split(',');
    const kept = new Set(wanted);
    setRows((current) => new Map([...current].filter(([id]) => kept.has(id))));
    for (const id of lastEvent.current.keys()) if (!kept.has(id)) lastEvent.current.delete(id);
    const apply = (incoming: TaskRow[], at: number, unlessNewerThan?: number) =>
      setRows((current) => {
        const next = new Map(current);
        for (const row of incoming) {
          const known = next.get(row.id);
          if (known && known.at > at) continue;
          if (unlessNewerThan !== undefined && (lastEvent.current.get(row.id) ?? -1) >= unlessNewerThan) continue;
          next.set(row.id, { row, at });
        }
        return next;
      });

    const subscription = client.subscription(liveSubscription, { filter: { ids: wanted } }).subscribe((result) => {
      if (result.error) {
        setError(result.error.message);
        return;
      }
      const task = result.data?.taskEvents.task;
      if (!task) return;
      const at = performance.now();
      lastEvent.current.set(task.id, at);
      apply([task], at);
    });

    let cancelled = false;
    const timer = setTimeout(() => {
      const sent = performance.now();
      void client
        .query(catchUpQuery, { filter: { ids: wanted }, first: wanted.length }, { requestPolicy: 'network-only' })
        .toPromise()
        .then((result) => {
          if (cancelled || !result.data) return;
          apply(
            result.data.tasks.edges.map((edge) => edge.node),
            sent,
            sent,
          );
        });
    }, CATCH_UP_MS);

    return () => {
      cancelled = true;
      clearTimeout(timer);
      subscription.unsubscribe();
    };
  }, [client, idsKey, enabled]);

  const state: LiveState =
    error !== null ? { status: 'error', message: error } : { status: !enabled ? 'paused' : idsKey === '' ? 'idle' : 'live' };
  return { rows, state };
}

/** The rows as read, each replaced by a newer version the live stream brought since. */
export function mergeLive(base: TaskRow[], baseAt: number, live: ReadonlyMap<string, LiveRow>): TaskRow[] {
  return base.map((row) => {
    const newer = live.get(row.id);
    return newer && newer.at > baseAt ? newer.row : row;
  });
}

const newerQuery = graphql(`
  query TasksNewer($filter: TaskFilter!, $first: Int!) {
    tasks(filter: $filter, first: $first) {
      edges {
        node {
          id
        }
      }
    }
  }
`);

const NEWER_POLL_MS = 5000;
/** Beyond this many the notice says "more than": it only needs to tell that there are some. */
export const NEWER_LIMIT = 50;

/**
 * How many tasks of the filter were created after `newest` (the first row's dateCreated; null for
 * an empty list), read every few seconds while `enabled` and the tab is visible; at most
 * NEWER_LIMIT + 1, one short read by creation date rather than a count of the whole filter.
 */
export function useNewerCount(filter: TaskFilter, newest: string | null, enabled: boolean): number {
  const client = useClient();
  const [found, setFound] = useState<{ newest: string | null; count: number }>({ newest, count: 0 });

  useEffect(() => {
    if (!enabled) return;
    const since: TaskFilter = newest === null ? filter : { ...filter, dateCreated: { ...filter.dateCreated, gt: newest } };
    let cancelled = false;
    const read = () => {
      if (document.visibilityState !== 'visible') return;
      void client
        .query(newerQuery, { filter: since, first: NEWER_LIMIT + 1 }, { requestPolicy: 'network-only' })
        .toPromise()
        .then((result) => {
          if (!cancelled && result.data) setFound({ newest, count: result.data.tasks.edges.length });
        });
    };
    const timer = setInterval(read, NEWER_POLL_MS);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [client, filter, newest, enabled]);

  return enabled && found.newest === newest ? found.count : 0;
}
