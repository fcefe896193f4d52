import { useId, useState, type FormEvent } from 'react';
import { useClient } from 'urql';
import { describeError } from '../../errors.ts';
import { graphql } from '../../gql/index.ts';

const findQuery = graphql(`
  query TasksFind($id: ID!, $text: String!) {
    task(id: $id) {
      id
    }
    byPoll: tasks(filter: { poll: $text }, first: 2) {
      edges {
        node {
          id
        }
      }
    }
    byIdempotencyKey: tasks(filter: { idempotencyKey: $text }, first: 2) {
      edges {
        node {
          id
        }
      }
    }
  }
`);

export type Found =
  | { kind: 'task'; id: string }
  | { kind: 'poll'; poll: string }
  | { kind: 'idempotencyKey'; key: string }
  | { kind: 'both'; text: string };

type Outcome = { kind: 'idle' } | { kind: 'looking' } | { kind: 'none'; text: string } | { kind: 'error'; message: string };

/**
 * "Find a task": a task id opens the task; otherwise the list shows the tasks of that poll, or the
 * task submitted with that idempotency key. Three reads by index, in one request.
 */
export function FindTask({ onFound }: { onFound: (found: Found) => void }) {
  const id = useId();
  const client = useClient();
  const [text, setText] = useState('');
  const [outcome, setOutcome] = useState<Outcome>({ kind: 'idle' });

  async function submit(event: FormEvent) {
    event.preventDefault();
    const wanted = text.trim();
    if (!wanted) return;
    setOutcome({ kind: 'looking' });
    const result = await client
      .query(findQuery, { id: wanted, text: wanted }, { requestPolicy: 'network-only' })
      .toPromise();
    if (result.error) {
      setOutcome({ kind: 'error', message: describeError(result.error) });
      return;
    }
    const data = result.data;
    if (!data) {
      setOutcome({ kind: 'error', message: 'The server answered without data.' });
      return;
    }
    setOutcome({ kind: 'idle' });
    const inPoll = data.byPoll.edges.length > 0;
    const withKey = data.byIdempotencyKey.edges.length > 0;
    if (data.task) onFound({ kind: 'task', id: data.task.id });
    else if (inPoll && withKey) onFound({ kind: 'both', text: wanted });
    else if (inPoll) onFound({ kind: 'poll', poll: wanted });
    else if (withKey) onFound({ kind: 'idempotencyKey', key: wanted });
    else setOutcome({ kind: 'none', text: wanted });
  }

  return (
    <form className="tasks-find" role="search" onSubmit={submit}>
      <label htmlFor={`${id}-text`}>Find a task</label>
      <div className="tasks-find-row">
        <input
          id={`${id}-text`}
          value={text}
          autoComplete="off"
          spellCheck={false}
          aria-describedby={`${id}-hint`}
          onChange={(event) => setText(event.target.value)}
        />
        <button type="submit" disabled={outcome.kind === 'looking'}>
          Find
        </button>
      </div>
      <span className="hint" id={`${id}-hint`}>
        A task id, a poll, or an idempotency key.
      </span>
      {outcome.kind === 'looking' && <p role="status">Looking…</p>}
      {outcome.kind === 'none' && (
        <p role="status" className="tasks-none">
          No task has the id, poll or idempotency key “{outcome.text}”.
        </p>
      )}
      {outcome.kind === 'error' && (
        <p role="alert" className="error">
          {outcome.message}
        </p>
      )}
    </form>
  );
}

