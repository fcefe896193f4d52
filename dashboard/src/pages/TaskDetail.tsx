import { useCallback, useEffect, useState } from 'react';
import { useQuery, useSubscription } from 'urql';
import { Link } from 'wouter';
import { StateLabel } from '../components/StateLabel.tsx';
import { describeError } from '../errors.ts';
import { graphql } from '../gql/index.ts';
import type { TaskDetailFieldsFragment, TaskState } from '../gql/graphql.ts';
import { Actions } from './task-detail/Actions.tsx';
import { Dependencies } from './task-detail/Dependencies.tsx';
import { Logs } from './task-detail/Logs.tsx';
import { Results } from './task-detail/Results.tsx';
import { Summary } from './task-detail/Summary.tsx';
import { Timeline } from './task-detail/Timeline.tsx';
import './task-detail/task-detail.css';

// One selection for the first read, every live update and the mutations' answers, so that the
// page shows the same fields whichever of them came last.
graphql(`
  fragment TaskDetailFields on Task {
    id
    service
    type
    state
    status
    attempts
    maxAttempts
    retries
    priority
    queuePosition
    waitingFor
    runAt
    progress
    dateCreated
    dateStarted
    dateCompleted
    params
    poll
    session
    user
    target
    execution
    retrievalProtocol
    resultRetrieved
    scheduledFor
    schedule {
      id
      name
    }
    key {
      id
      name
    }
    error {
      code
      message
    }
    results {
      id
      name
      contentType
      size
      dateCreated
      retrieved
    }
    retryHistory {
      attempts
      state
      dateStarted
      dateCompleted
      dateRetried
      error {
        code
        message
      }
      retriedBy {
        id
        name
      }
    }
    dependsOn {
      id
      service
      type
      state
    }
    dependents {
      id
      service
      type
      state
    }
  }
`);

const taskQuery = graphql(`
  query TaskDetail($id: ID!) {
    task(id: $id) {
      ...TaskDetailFields
    }
  }
`);

const taskSubscription = graphql(`
  subscription TaskDetailUpdated($id: ID!) {
    taskUpdated(id: $id) {
      ...TaskDetailFields
    }
  }
`);

// Once taskUpdated has completed at a terminal state, this only says that the task came back (a
// retry from elsewhere, or of a task it depends on), so that the page follows it again.
const wakeSubscription = graphql(`
  subscription TaskDetailWake($filter: TaskFilter) {
    taskEvents(filter: $filter) {
      kind
      task {
        id
        state
      }
    }
  }
`);

export type DetailTask = TaskDetailFieldsFragment;

const TERMINAL: ReadonlySet<TaskState> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

function decodedId(id: string): string {
  try {
    return decodeURIComponent(id);
  } catch {
    return id;
  }
}

export function TaskDetail({ id }: { id: string }) {
  const taskId = decodedId(id);
  // A fresh page per id: following a dependency's link must not show the previous task's logs.
  return <TaskPage key={taskId} id={taskId} />;
}

function TaskPage({ id }: { id: string }) {
  const [queried] = useQuery({ query: taskQuery, variables: { id }, requestPolicy: 'network-only' });
  const found = queried.data?.task ?? null;
  // The latest of the first read, the live updates and the mutations' answers.
  const [latest, setLatest] = useState<DetailTask | null>(null);
  const task = latest ?? found;
  // Bumped on every live update, so that the logs read what was written since.
  const [version, setVersion] = useState(0);

  const [live, resubscribe] = useSubscription({
    query: taskSubscription,
    variables: { id },
    pause: !found,
  });

  useEffect(() => {
    if (live.data) {
      setLatest(live.data.taskUpdated);
      setVersion((value) => value + 1);
    }
  }, [live.data]);

  // urql keeps `fetching` set after a stream completes; a terminal state is what says it did.
  const ended = task !== null && TERMINAL.has(task.state) && live.data !== undefined && TERMINAL.has(live.data.taskUpdated.state);
  const [woken] = useSubscription({ query: wakeSubscription, variables: { filter: { ids: [id] } }, pause: !ended });
  useEffect(() => {
    const state = woken.data?.taskEvents.task.state;
    if (state && !TERMINAL.has(state)) resubscribe();
  }, [woken.data, resubscribe]);

  const onChanged = useCallback(
    (changed: DetailTask) => {
      setLatest(changed);
      setVersion((value) => value + 1);
      // The stream completes at a terminal state; a retried task runs again and has more to say.
      resubscribe();
    },
    [resubscribe],
  );

  if (queried.error) {
    return (
      <>
        <TaskHeading id={id} task={null} />
        <p role="alert" className="error">
          {describeError(queried.error)}
        </p>
      </>
    );
  }
  if (!task && (queried.fetching || !queried.data)) {
    return (
      <>
        <TaskHeading id={id} task={null} />
        <p role="status">Loading the task…</p>
      </>
    );
  }
  if (!task) {
    return (
      <>
        <TaskHeading id={id} task={null} />
        <p role="alert" className="error">
          No task with this id: it does not exist, or it belongs to another organisation.
        </p>
      </>
    );
  }

  return (
    <div className="task-detail">
      <TaskHeading id={id} task={task} />
      {live.error && (
        <p role="alert" className="error">
          Live updates stopped: {describeError(live.error)}{' '}
          <button type="button" className="secondary" onClick={() => resubscribe()}>
            Follow the task again
          </button>
        </p>
      )}
      <Actions task={task} onChanged={onChanged} />
      <Summary task={task} />
      {task.error && (
        <section aria-labelledby="task-error-heading" className="task-error">
          <h2 id="task-error-heading">Error</h2>
          <p>
            <code>{task.error.code}</code>: {task.error.message}
          </p>
        </section>
      )}
      <Timeline task={task} />
      <section aria-labelledby="task-params-heading">
        <h2 id="task-params-heading">Params</h2>
        <pre className="task-json" tabIndex={0} role="region" aria-label="Params as JSON">
          {JSON.stringify(task.params, null, 2)}
        </pre>
      </section>
      <Logs id={id} version={version} running={task.state === 'PROCESSING'} />
      <Results task={task} />
      <Dependencies task={task} />
    </div>
  );
}

function TaskHeading({ id, task }: { id: string; task: DetailTask | null }) {
  return (
    <header className="task-heading">
      <p>
        <Link href="/tasks">Back to tasks</Link>
      </p>
      <h1>
        Task <span className="task-id">{id}</span>
      </h1>
      {task && (
        <p className="task-what">
          <span className="task-action">
            {task.service}.{task.type}
          </span>{' '}
          <StateLabel state={task.state} />
        </p>
      )}
    </header>
  );
}
