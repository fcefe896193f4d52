import { useEffect, useRef, type KeyboardEvent } from 'react';
import { Link } from 'wouter';
import { StateLabel } from '../../components/StateLabel.tsx';
import { formatDate, number } from '../../format.ts';
import { graphql } from '../../gql/index.ts';
import type { TasksRowFieldsFragment } from '../../gql/graphql.ts';
import { useQueuePositions } from './queue-positions.ts';

export const tasksRowFields = graphql(`
  fragment TasksRowFields on Task {
    id
    service
    type
    state
    attempts
    maxAttempts
    dateCreated
    dateStarted
    dateCompleted
    error {
      code
    }
  }
`);

export type TaskRow = TasksRowFieldsFragment;

function DateCell({ value }: { value: string | null | undefined }) {
  return (
    <td>
      {value ? (
        <time dateTime={value} title={value}>
          {formatDate(value)}
        </time>
      ) : (
        <span aria-label="not yet">—</span>
      )}
    </td>
  );
}

interface Props {
  rows: TaskRow[];
  /** Null when the key may not act on a selection: no checkboxes then. */
  selected: ReadonlySet<string> | null;
  onSelect: (ids: string[], selected: boolean) => void;
  caption: string;
}

/**
 * The page's tasks. Each row's id link is in the Tab order; Up and Down move between them, and
 * Space on one toggles its row's checkbox.
 */
export function TaskTable({ rows, selected, onSelect, caption }: Props) {
  const queuePositions = useQueuePositions(rows.filter((row) => row.state === 'PENDING').map((row) => row.id));
  const body = useRef<HTMLTableSectionElement>(null);
  const allBox = useRef<HTMLInputElement>(null);
  const selectedOnPage = selected ? rows.filter((row) => selected.has(row.id)).length : 0;

  useEffect(() => {
    if (allBox.current) allBox.current.indeterminate = selectedOnPage > 0 && selectedOnPage < rows.length;
  }, [selectedOnPage, rows.length]);

  function onKeyDown(event: KeyboardEvent<HTMLTableSectionElement>) {
    const target = event.target as HTMLElement;
    if (!target.matches('a[data-row-link]') || !body.current) return;
    const links = [...body.current.querySelectorAll<HTMLAnchorElement>('a[data-row-link]')];
    const index = links.indexOf(target as HTMLAnchorElement);
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const next = links[index + (event.key === 'ArrowDown' ? 1 : -1)];
      if (next) {
        event.preventDefault();
        next.focus();
      }
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      links[event.key === 'Home' ? 0 : links.length - 1]?.focus();
    } else if (event.key === ' ' && selected) {
      event.preventDefault();
      const id = target.dataset.rowLink!;
      onSelect([id], !selected.has(id));
    }
  }

  return (
    <div className="scroll" tabIndex={0} role="region" aria-label={caption}>
      <table className="tasks-table">
        <caption className="tasks-caption">{caption}</caption>
        <thead>
          <tr>
            {selected && (
              <th scope="col" className="tasks-select">
                <input
                  ref={allBox}
                  type="checkbox"
                  aria-label="Select every task on this page"
                  checked={rows.length > 0 && selectedOnPage === rows.length}
                  disabled={rows.length === 0}
                  onChange={(event) => onSelect(rows.map((row) => row.id), event.target.checked)}
                />
              </th>
            )}
            <th scope="col">Task</th>
            <th scope="col">Service / action</th>
            <th scope="col">State</th>
            <th scope="col" className="num">
              Attempts
            </th>
            <th scope="col">Created</th>
            <th scope="col">Started</th>
            <th scope="col">Completed</th>
            <th scope="col" className="num">
              In queue
            </th>
          </tr>
        </thead>
        <tbody ref={body} onKeyDown={onKeyDown}>
          {rows.map((row) => (
            <tr key={row.id} data-task-id={row.id}>
              {selected && (
                <td className="tasks-select">
                  <input
                    type="checkbox"
                    aria-label={`Select task ${row.id}`}
                    checked={selected.has(row.id)}
                    onChange={(event) => onSelect([row.id], event.target.checked)}
                  />
                </td>
              )}
              <th scope="row" className="tasks-id">
                <Link href={`/tasks/${encodeURIComponent(row.id)}`} data-row-link={row.id}>
                  {row.id}
                </Link>
              </th>
              <td>
                {row.service} / {row.type}
              </td>
              <td>
                <StateLabel state={row.state} />
                {row.state === 'FAILED' && row.error && <span className="sub"> {row.error.code}</span>}
              </td>
              <td className="num">
                {number.format(row.attempts)} of {number.format(row.maxAttempts)}
              </td>
              <DateCell value={row.dateCreated} />
              <DateCell value={row.dateStarted} />
              <DateCell value={row.dateCompleted} />
              <td className="num">
                {row.state === 'PENDING' && queuePositions.has(row.id) ? number.format(queuePositions.get(row.id)! + 1) : '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
