import type { ReactNode } from 'react';
import { StateLabel } from '../../components/StateLabel.tsx';
import { formatDate, number } from '../../format.ts';
import type { QueueStatus } from '../../gql/graphql.ts';
import type { DetailTask } from '../TaskDetail.tsx';

const STATUS_LABELS: Readonly<Record<QueueStatus, string>> = {
  IN_QUEUE: 'In queue',
  IN_PROGRESS: 'In progress',
  COMPLETED: 'Completed',
};

const percent = new Intl.NumberFormat('en', { style: 'percent', maximumFractionDigits: 0 });

export function DateText({ iso }: { iso: string }) {
  return (
    <time dateTime={iso} title={iso}>
      {formatDate(iso)}
    </time>
  );
}

function Item({ term, children }: { term: string; children: ReactNode }) {
  return (
    <div>
      <dt>{term}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function queueText(position: number): string {
  if (position === 0) return 'Next in its queue (no task ahead)';
  return `${number.format(position)} ${position === 1 ? 'task' : 'tasks'} ahead in its queue`;
}

export function Summary({ task }: { task: DetailTask }) {
  const progress = task.progress;
  return (
    <section aria-labelledby="task-summary-heading">
      <h2 id="task-summary-heading">Summary</h2>
      <dl className="task-summary">
        <Item term="State">
          <StateLabel state={task.state} />
        </Item>
        <Item term="Status">{STATUS_LABELS[task.status]}</Item>
        {task.state === 'PENDING' && (
          <Item term="Queue position">
            {task.queuePosition == null ? 'Not known' : queueText(task.queuePosition)}
            {task.waitingFor === 'NO_WORKER' && (
              <span className="sub"> · waiting for a worker: no server running now has this action</span>
            )}
          </Item>
        )}
        <Item term="Attempts">
          {number.format(task.attempts)} of {number.format(task.maxAttempts)}
        </Item>
        <Item term="Retries">{number.format(task.retries)}</Item>
        <Item term="Priority">{number.format(task.priority)}</Item>
        <Item term="Progress">
          {progress == null ? (
            'Not reported'
          ) : (
            <span className="task-progress">
              <progress max={1} value={progress} aria-label="Progress" />
              <span>{percent.format(progress)}</span>
            </span>
          )}
        </Item>
        {task.runAt && (
          <Item term="Not before">
            <DateText iso={task.runAt} />
          </Item>
        )}
        <Item term="Submitted by key">{task.key.name}</Item>
        {task.user && <Item term="User">{task.user}</Item>}
        {task.session && <Item term="Session">{task.session}</Item>}
        {task.poll && <Item term="Batch (poll)">{task.poll}</Item>}
        {task.target && <Item term="Target">{task.target}</Item>}
        {task.schedule && <Item term="Schedule">{task.schedule.name}</Item>}
        {task.scheduledFor && (
          <Item term="Scheduled for">
            <DateText iso={task.scheduledFor} />
          </Item>
        )}
        <Item term="Execution">{task.execution === 'REALTIME' ? 'Real-time call' : 'Asynchronous'}</Item>
        <Item term="Results">
          {task.retrievalProtocol === 'CHANNEL' ? 'Pushed to subscribers (CHANNEL)' : 'Kept until retrieved once (STORE)'}
          {task.resultRetrieved && <span className="sub"> · retrieved</span>}
        </Item>
      </dl>
    </section>
  );
}
