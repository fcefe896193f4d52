import { useMemo, useState } from 'react';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { Link, useLocation, useSearch } from 'wouter';
import { describeError } from '../errors.ts';
import { number } from '../format.ts';
import { graphql } from '../gql/index.ts';
import { useViewer } from '../viewer.ts';
import { FilterForm } from './tasks/FilterForm.tsx';
import { FindTask, type Found } from './tasks/FindTask.tsx';
import { mergeLive, NEWER_LIMIT, useLiveRows, useNewerCount } from './tasks/live.ts';
import { TaskTable } from './tasks/TaskTable.tsx';
import { filterOnly, hasFilter, parseView, taskFilter, viewHref, type ListView } from './tasks/url-filter.ts';
import './tasks/tasks.css';

const PAGE_SIZE = 50;

const tasksPageQuery = graphql(`
  query TasksPage($filter: TaskFilter!, $first: Int!, $after: String) {
    tasks(filter: $filter, first: $first, after: $after) {
      edges {
        node {
          ...TasksRowFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const cancelMutation = graphql(`
  mutation TasksCancelSelected($ids: [ID!]!) {
    cancelTasks(filter: { ids: $ids }) {
      __typename
      ... on CancelTasksSuccess {
        count
        dependents
      }
      ... on Error {
        message
      }
    }
  }
`);

const retryMutation = graphql(`
  mutation TasksRetrySelected($ids: [ID!]!) {
    retryTasks(filter: { ids: $ids }) {
      __typename
      ... on RetryTasksSuccess {
        count
        dependents
      }
      ... on Error {
        message
      }
    }
  }
`);

const EMPTY_VIEW: ListView = { states: [], text: {}, ranges: {}, after: null, back: [] };

type Notice = { kind: 'status' | 'alert'; text: string; link?: { href: string; text: string } };

function plural(count: number, noun: string): string {
  return `${number.format(count)} ${noun}${count === 1 ? '' : 's'}`;
}

export function Tasks() {
  const viewer = useViewer();
  const isAdmin = viewer.key.role === 'ADMIN';
  useSearch();
  // wouter's search is decodeURI'd, which would turn an escaped "%" in a value into a bare one.
  const search = window.location.search.replace(/^\?/, '');
  const [, navigate] = useLocation();
  const view = useMemo(() => parseView(search), [search]);
  const filterKey = JSON.stringify(taskFilter(view));
  const filter = useMemo(() => JSON.parse(filterKey) as ReturnType<typeof taskFilter>, [filterKey]);

  const [result, reexecute] = useQuery({
    query: tasksPageQuery,
    variables: { filter, first: PAGE_SIZE, after: view.after },
    requestPolicy: 'cache-and-network',
  });
  const { data, error, fetching } = result;
  // When the rows were read, to tell which live changes are newer than the read.
  const baseAt = useMemo(() => performance.now(), [data]);

  const [paused, setPaused] = useState(false);
  const baseRows = useMemo(() => data?.tasks.edges.map((edge) => edge.node) ?? [], [data]);
  const ids = useMemo(() => baseRows.map((row) => row.id), [baseRows]);
  const live = useLiveRows(ids, !paused);
  const rows = useMemo(() => mergeLive(baseRows, baseAt, live.rows), [baseRows, baseAt, live.rows]);
  const newest = baseRows[0]?.dateCreated ?? null;
  const newer = useNewerCount(filter, newest, !paused && !view.after && data !== undefined && !error);

  // Selections and outcomes belong to one address: another page or filter starts afresh.
  const [selection, setSelection] = useState<{ search: string; ids: ReadonlySet<string> }>({ search, ids: new Set() });
  const [notice, setNotice] = useState<{ search: string; notice: Notice } | null>(null);
  const selected = useMemo(() => {
    const visible = new Set(ids);
    return new Set(selection.search === search ? [...selection.ids].filter((id) => visible.has(id)) : []);
  }, [selection, search, ids]);
  const shownNotice = notice?.search === search ? notice.notice : null;

  const [cancelState, cancelTasks] = useMutation(cancelMutation);
  const [retryState, retryTasks] = useMutation(retryMutation);
  const busy = cancelState.fetching || retryState.fetching;

  function select(changed: string[], on: boolean) {
    const next = new Set(selected);
    for (const id of changed) {
      if (on) next.add(id);
      else next.delete(id);
    }
    setSelection({ search, ids: next });
  }

  function refresh() {
    reexecute({ requestPolicy: 'network-only' });
  }

  // Changes that came while paused were not kept: resuming reads the page afresh.
  function togglePaused() {
    if (paused) refresh();
    setPaused(!paused);
  }

  /** Says how a bulk action on the selection went, and reads the page again after one that ran. */
  function settle(
    chosen: readonly string[],
    outcome: { error?: CombinedError | undefined },
    answer: { count: number; dependents: number } | { message: string } | undefined,
    done: (count: number, dependents: number, skipped: number) => string,
  ) {
    if (outcome.error || !answer) {
      setNotice({ search, notice: { kind: 'alert', text: outcome.error ? describeError(outcome.error) : 'The server answered without data.' } });
      return;
    }
    if (!('count' in answer)) {
      setNotice({ search, notice: { kind: 'alert', text: answer.message } });
      return;
    }
    setNotice({ search, notice: { kind: 'status', text: done(answer.count, answer.dependents, chosen.length - answer.count) } });
    setSelection({ search, ids: new Set() });
    refresh();
  }

  async function cancelSelected() {
    const chosen = [...selected];
    if (!window.confirm(`Cancel ${plural(chosen.length, 'selected task')}? Tasks that have ended stay as they are.`)) return;
    const outcome = await cancelTasks({ ids: chosen });
    settle(
      chosen,
      outcome,
      outcome.data?.cancelTasks,
      (count, dependents, skipped) =>
        `Cancelled ${plural(count, 'task')} of ${number.format(chosen.length)} selected` +
        (skipped > 0 ? `; ${number.format(skipped)} had already ended` : '') +
        (dependents > 0 ? `; ${plural(dependents, 'waiting dependent')} failed with them` : '') +
        '.',
    );
  }

  async function retrySelected() {
    const chosen = [...selected];
    const outcome = await retryTasks({ ids: chosen });
    settle(
      chosen,
      outcome,
      outcome.data?.retryTasks,
      (count, dependents, skipped) =>
        `Put ${plural(count, 'task')} of ${number.format(chosen.length)} selected back in their queues` +
        (skipped > 0 ? `; ${number.format(skipped)} could not be retried (only failed and cancelled tasks can)` : '') +
        (dependents > 0 ? `; ${plural(dependents, 'dependent')} came back with them` : '') +
        '.',
    );
  }

  function found(what: Found) {
    if (what.kind === 'task') {
      navigate(`/tasks/${encodeURIComponent(what.id)}`);
      return;
    }
    const text = what.kind === 'idempotencyKey' ? { idempotencyKey: what.key } : { poll: what.kind === 'poll' ? what.poll : what.text };
    const href = viewHref({ ...EMPTY_VIEW, text });
    navigate(href);
    if (what.kind === 'both') {
      setNotice({
        search: href.slice('/tasks?'.length),
        notice: {
          kind: 'status',
          text: `“${what.text}” is a poll (listed here) and also an idempotency key.`,
          link: { href: viewHref({ ...EMPTY_VIEW, text: { idempotencyKey: what.text } }), text: 'Show the task of that key' },
        },
      });
    }
  }

  const pageNumber = view.after ? view.back.length + 2 : 1;
  const first = (pageNumber - 1) * PAGE_SIZE + 1;
  const caption =
    rows.length === 0
      ? 'Tasks'
      : `Tasks ${number.format(first)} to ${number.format(first + rows.length - 1)}, newest first`;
  const pageInfo = data?.tasks.pageInfo;
  const nextHref =
    pageInfo?.hasNextPage && pageInfo.endCursor
      ? viewHref({ ...view, after: pageInfo.endCursor, back: view.after ? [...view.back, view.after] : [] })
      : null;
  const previousHref = view.after ? viewHref({ ...view, after: view.back.at(-1) ?? null, back: view.back.slice(0, -1) }) : null;

  return (
    <>
      <h1>Tasks</h1>
      <div className="tasks-top">
        <FindTask onFound={found} />
        <FilterForm key={viewHref(filterOnly(view))} view={view} onApply={(next) => navigate(viewHref(next))} />
      </div>

      <div className="tasks-toolbar">
        <p className="tasks-live" data-live={live.state.status}>
          <span className="tasks-live-dot" aria-hidden="true" />
          {live.state.status === 'paused' ? 'Paused' : live.state.status === 'error' ? 'Live updates stopped' : 'Live'}
        </p>
        <button type="button" className="secondary" aria-pressed={paused} onClick={togglePaused}>
          Pause live updates
        </button>
        {isAdmin ? (
          <>
            <button type="button" className="danger" disabled={selected.size === 0 || busy} onClick={() => void cancelSelected()}>
              Cancel selected ({number.format(selected.size)})
            </button>
            <button type="button" disabled={selected.size === 0 || busy} onClick={() => void retrySelected()}>
              Retry selected ({number.format(selected.size)})
            </button>
          </>
        ) : (
          <p className="hint">Cancelling and retrying several tasks at once needs an ADMIN key.</p>
        )}
      </div>
      {live.state.status === 'error' && (
        <p role="alert" className="error">
          Live updates stopped: {live.state.message}
        </p>
      )}
      {shownNotice && (
        <p role={shownNotice.kind} className={shownNotice.kind === 'alert' ? 'error' : 'tasks-outcome'}>
          {shownNotice.text}
          {shownNotice.link && (
            <>
              {' '}
              <Link href={shownNotice.link.href}>{shownNotice.link.text}</Link>
            </>
          )}
        </p>
      )}
      {newer > 0 && (
        <p role="status" className="tasks-newer">
          {newer > NEWER_LIMIT ? `More than ${number.format(NEWER_LIMIT)} new tasks match` : `${plural(newer, 'new task')} ${newer === 1 ? 'matches' : 'match'}`}{' '}
          <button type="button" className="secondary" onClick={refresh}>
            Show them
          </button>
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          {describeError(error)}
        </p>
      )}
      {!data && !error && <p role="status">Loading…</p>}
      {data && rows.length === 0 && (
        <p role="status" className="tasks-none">
          {view.after ? 'No more tasks.' : hasFilter(view) ? 'No task matches this filter.' : 'There are no tasks yet.'}
        </p>
      )}
      {data && rows.length > 0 && (
        <TaskTable rows={rows} selected={isAdmin ? selected : null} onSelect={select} caption={caption} />
      )}
      <nav className="tasks-pager" aria-label="Pages of tasks">
        {previousHref && <Link href={previousHref}>Previous page</Link>}
        {view.after && <Link href={viewHref(filterOnly(view))}>First page</Link>}
        <span className="hint">
          Page {number.format(pageNumber)}
          {fetching && data ? ' (refreshing)' : ''}
        </span>
        {nextHref && <Link href={nextHref}>Next page</Link>}
      </nav>
    </>
  );
}
