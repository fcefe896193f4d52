import type { TaskState } from '../gql/graphql.ts';

export const STATE_LABELS: Readonly<Record<TaskState, string>> = {
  PENDING: 'Pending',
  SUSPENDED: 'Suspended',
  PROCESSING: 'Processing',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

export const TASK_STATES = Object.keys(STATE_LABELS) as TaskState[];

/** The state's name, written out; the coloured dot only repeats it. */
export function StateLabel({ state }: { state: TaskState }) {
  return (
    <span className="state" data-state={state.toLowerCase()}>
      <span className="dot" aria-hidden="true" />
      {STATE_LABELS[state]}
    </span>
  );
}
