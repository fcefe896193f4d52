import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { useClient } from 'urql';
import { describeError } from '../../errors.ts';
import { graphql } from '../../gql/index.ts';
import type { LogLevel, TaskDetailLogsQuery } from '../../gql/graphql.ts';

const logsQuery = graphql(`
  query TaskDetailLogs($id: ID!, $minLevel: LogLevel, $first: Int, $after: String) {
    task(id: $id) {
      id
      logs(minLevel: $minLevel, first: $first, after: $after) {
        edges {
          cursor
          node {
            timestamp
            level
            source
            message
          }
        }
        pageInfo {
          endCursor
          hasNextPage
        }
      }
    }
  }
`);

type Entry = NonNullable<TaskDetailLogsQuery['task']>['logs']['edges'][number];

/** The most the API returns in one page, and so the most one read or "Load more" adds. */
const PAGE = 500;

const LEVELS: ReadonlyArray<{ value: LogLevel | ''; label: string }> = [
  { value: '', label: 'Debug (every line)' },
  { value: 'INFO', label: 'Info' },
  { value: 'WARN', label: 'Warning' },
  { value: 'ERROR', label: 'Error' },
];

// Lines of one task are often milliseconds apart: the time is to the millisecond, the full date in its title.
const logTime = new Intl.DateTimeFormat('en-GB', {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  fractionalSecondDigits: 3,
});

const LEVEL_LABELS: Readonly<Record<LogLevel, string>> = { DEBUG: 'Debug', INFO: 'Info', WARN: 'Warning', ERROR: 'Error' };

interface Loaded {
  entries: Entry[];
  cursor: string | null;
  /** More lines wait beyond what is shown: live reads stop until the reader loads them. */
  more: boolean;
}

const empty: Loaded = { entries: [], cursor: null, more: false };

/**
 * The task's logs, oldest first. `version` changes with every live update of the task; each change
 * reads the lines after the last one shown, a page at most, so a chatty task never floods the page.
 */
export function Logs({ id, version, running }: { id: string; version: number; running: boolean }) {
  const client = useClient();
  const [minLevel, setMinLevel] = useState<LogLevel | ''>('');
  const [loaded, setLoaded] = useState<Loaded>(empty);
  const [error, setError] = useState<string | null>(null);
  const [ready, setReady] = useState(false);
  const state = useRef({ loaded: empty, busy: false, again: false, generation: 0 });
  const scroller = useRef<HTMLDivElement>(null);
  const atEnd = useRef(true);

  const read = useCallback(
    async (force: boolean) => {
      const current = state.current;
      if (current.busy) {
        current.again = true;
        return;
      }
      if (current.loaded.more && !force) return;
      current.busy = true;
      const generation = current.generation;
      try {
        const result = await client
          .query(
            logsQuery,
            { id, minLevel: minLevel === '' ? null : minLevel, first: PAGE, after: current.loaded.cursor },
            { requestPolicy: 'network-only' },
          )
          .toPromise();
        if (generation !== current.generation) return;
        if (result.error) {
          setError(describeError(result.error));
          return;
        }
        setError(null);
        const logs = result.data?.task?.logs;
        if (logs) {
          const next: Loaded = {
            entries: logs.edges.length === 0 ? current.loaded.entries : [...current.loaded.entries, ...logs.edges],
            cursor: logs.pageInfo.endCursor ?? current.loaded.cursor,
            more: logs.pageInfo.hasNextPage,
          };
          current.loaded = next;
          setLoaded(next);
        }
        setReady(true);
      } finally {
        if (generation === current.generation) {
          current.busy = false;
          if (current.again) {
            current.again = false;
            void read(false);
          }
        }
      }
    },
    [client, id, minLevel],
  );

  // A new level starts over from the first line.
  useEffect(() => {
    const current = state.current;
    current.generation += 1;
    current.loaded = empty;
    current.busy = false;
    current.again = false;
    atEnd.current = true;
    setLoaded(empty);
    setReady(false);
    void read(false);
  }, [read]);

  useEffect(() => {
    if (version > 0) void read(false);
  }, [version, read]);

  useLayoutEffect(() => {
    const element = scroller.current;
    if (element && atEnd.current) element.scrollTop = element.scrollHeight;
  }, [loaded.entries.length]);

  const onScroll = () => {
    const element = scroller.current;
    if (element) atEnd.current = element.scrollHeight - element.scrollTop - element.clientHeight < 24;
  };

  return (
    <section aria-labelledby="task-logs-heading">
      <h2 id="task-logs-heading">Logs</h2>
      <div className="task-logs-tools">
        <label htmlFor="task-logs-level">Minimum level</label>
        <select id="task-logs-level" value={minLevel} onChange={(event) => setMinLevel(event.target.value as LogLevel | '')}>
          {LEVELS.map((level) => (
            <option key={level.value} value={level.value}>
              {level.label}
            </option>
          ))}
        </select>
        <span className="hint">
          {ready
            ? `${loaded.entries.length} ${loaded.entries.length === 1 ? 'line' : 'lines'}${running && !loaded.more ? ', new lines appear as they are written' : ''}`
            : 'Loading the logs…'}
        </span>
      </div>
      {error && (
        <p role="alert" className="error">
          The logs could not be read: {error}
        </p>
      )}
      {ready && loaded.entries.length === 0 ? (
        <p>{minLevel === '' ? 'No log lines yet.' : 'No log lines at this level or above.'}</p>
      ) : (
        <div
          className="scroll task-logs"
          ref={scroller}
          onScroll={onScroll}
          tabIndex={0}
          role="region"
          aria-label="Log lines"
        >
          <table>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Level</th>
                <th scope="col">Source</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {loaded.entries.map(({ cursor, node }) => (
                <tr key={cursor} data-level={node.level.toLowerCase()}>
                  <td>
                    <time dateTime={node.timestamp} title={node.timestamp}>
                      {logTime.format(new Date(node.timestamp))}
                    </time>
                  </td>
                  <td className="task-log-level">{LEVEL_LABELS[node.level]}</td>
                  <td>{node.source}</td>
                  <td className="task-log-message">{node.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {loaded.more && (
        <p className="task-logs-more">
          <span className="hint">More lines follow; new ones are not read until these are.</span>{' '}
          <button type="button" onClick={() => void read(true)}>
            Load more lines
          </button>
        </p>
      )}
    </section>
  );
}
