import { useEffect, useRef, useState } from 'react';
import { useMutation } from 'urql';
import { STATE_LABELS } from '../../components/StateLabel.tsx';
import { describeError } from '../../errors.ts';
import { graphql } from '../../gql/index.ts';
import type { DetailTask } from '../TaskDetail.tsx';

const cancelMutation = graphql(`
  mutation TaskDetailCancel($id: ID!) {
    cancelTask(id: $id) {
      __typename
      ... on CancelTaskSuccess {
        task {
          ...TaskDetailFields
        }
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

const retryMutation = graphql(`
  mutation TaskDetailRetry($id: ID!) {
    retryTask(id: $id) {
      __typename
      ... on RetryTaskSuccess {
        task {
          ...TaskDetailFields
        }
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

type Outcome =
  | { kind: 'done'; message: string; stopping?: boolean }
  | { kind: 'refused'; message: string }
  | null;

/** A stop asked of a running task is done once the task has ended, however it ended. */
function doneText(outcome: { message: string; stopping?: boolean }, task: DetailTask): string {
  if (!outcome.stopping || task.state === 'PROCESSING') return outcome.message;
  if (task.state === 'CANCELLED') return 'The task was cancelled.';
  return `The task ended ${STATE_LABELS[task.state]} before it stopped.`;
}

const CANCELLABLE = new Set(['PENDING', 'SUSPENDED', 'PROCESSING']);
const RETRYABLE = new Set(['FAILED', 'CANCELLED']);

export function Actions({ task, onChanged }: { task: DetailTask; onChanged: (task: DetailTask) => void }) {
  const [cancelState, cancel] = useMutation(cancelMutation);
  const [retryState, retry] = useMutation(retryMutation);
  const [outcome, setOutcome] = useState<Outcome>(null);
  const busy = cancelState.fetching || retryState.fetching;
  const said = useRef<HTMLParagraphElement>(null);
  const refusal = useRef<HTMLParagraphElement>(null);

  // The button pressed may go with the state it no longer fits: the focus moves to what was said.
  useEffect(() => {
    if (outcome?.kind === 'done') said.current?.focus();
    if (outcome?.kind === 'refused') refusal.current?.focus();
  }, [outcome]);

  const onCancel = async () => {
    if (!window.confirm(`Cancel task ${task.id} (${task.service}.${task.type})?`)) return;
    setOutcome(null);
    const result = await cancel({ id: task.id });
    if (result.error) return setOutcome({ kind: 'refused', message: describeError(result.error) });
    const answer = result.data?.cancelTask;
    if (!answer) return setOutcome({ kind: 'refused', message: 'The server answered without data.' });
    if (answer.__typename !== 'CancelTaskSuccess') {
      return setOutcome({ kind: 'refused', message: `The task was not cancelled: ${answer.message}` });
    }
    onChanged(answer.task);
    const stopping = answer.task.state === 'PROCESSING';
    setOutcome({
      kind: 'done',
      message: stopping ? 'The task was told to stop; it ends as Cancelled once its handler stops.' : 'The task was cancelled.',
      stopping,
    });
  };

  const onRetry = async () => {
    setOutcome(null);
    const result = await retry({ id: task.id });
    if (result.error) return setOutcome({ kind: 'refused', message: describeError(result.error) });
    const answer = result.data?.retryTask;
    if (!answer) return setOutcome({ kind: 'refused', message: 'The server answered without data.' });
    if (answer.__typename !== 'RetryTaskSuccess') {
      return setOutcome({ kind: 'refused', message: `The task was not retried: ${answer.message}` });
    }
    onChanged(answer.task);
    setOutcome({
      kind: 'done',
      message:
        answer.task.state === 'SUSPENDED'
          ? 'The task is back, suspended until the tasks it depends on succeed.'
          : 'The task is back in its queue.',
    });
  };

  const canCancel = CANCELLABLE.has(task.state);
  const canRetry = RETRYABLE.has(task.state);

  return (
    <div className="task-actions">
      {(canCancel || canRetry) && (
        <div className="task-buttons">
          {canCancel && (
            <button type="button" className="danger" onClick={() => void onCancel()} disabled={busy}>
              Cancel task
            </button>
          )}
          {canRetry && (
            <button type="button" onClick={() => void onRetry()} disabled={busy}>
              Retry task
            </button>
          )}
        </div>
      )}
      {outcome?.kind === 'refused' && (
        <p role="alert" className="error" tabIndex={-1} ref={refusal}>
          {outcome.message}
        </p>
      )}
      <p role="status" className="task-outcome" tabIndex={-1} ref={said}>
        {outcome?.kind === 'done' ? doneText(outcome, task) : ''}
      </p>
    </div>
  );
}
