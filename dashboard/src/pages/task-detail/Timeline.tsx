import { useEffect, useState, type ReactNode } from 'react';
import { StateLabel } from '../../components/StateLabel.tsx';
import { formatDuration, number } from '../../format.ts';
import type { DetailTask } from '../TaskDetail.tsx';
import { DateText } from './Summary.tsx';

interface Step {
  key: string;
  title: ReactNode;
  at: string | null;
  /** What the time since the step before was: "waited", "ran". */
  since?: string;
  detail?: ReactNode;
}

function useNow(ticking: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!ticking) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [ticking]);
  return now;
}

function attemptsText(attempts: number): string {
  if (attempts === 0) return 'It never ran.';
  return `${number.format(attempts)} ${attempts === 1 ? 'attempt' : 'attempts'} in all`;
}

function steps(task: DetailTask): Step[] {
  const list: Step[] = [{ key: 'created', title: 'Created', at: task.dateCreated }];
  const runs = task.retryHistory;
  runs.forEach((run, index) => {
    const name = `Run ${index + 1}`;
    if (run.dateStarted) list.push({ key: `run${index}-started`, title: `${name} started`, at: run.dateStarted, since: 'waited' });
    list.push({
      key: `run${index}-ended`,
      title: (
        <>
          {name} ended <StateLabel state={run.state} />
        </>
      ),
      at: run.dateCompleted,
      since: run.dateStarted ? 'ran' : 'waited',
      detail: (
        <>
          {attemptsText(run.attempts)}
          {run.error && (
            <>
              {' '}
              · <code>{run.error.code}</code>: {run.error.message}
            </>
          )}
        </>
      ),
    });
    list.push({
      key: `run${index}-retried`,
      title: `Retried by key ${run.retriedBy.name}`,
      at: run.dateRetried,
      since: 'after',
    });
  });

  const current = runs.length > 0 ? `Run ${runs.length + 1} ` : '';
  const lastRetry = runs.at(-1)?.dateRetried ?? null;
  // A retry keeps the earlier run's dateStarted until a worker claims the task again.
  const started =
    task.dateStarted && (lastRetry === null || Date.parse(task.dateStarted) >= Date.parse(lastRetry)) ? task.dateStarted : null;
  if (started) {
    list.push({
      key: 'started',
      title: `${current ? `${current}started` : 'Started'}${task.attempts > 1 ? ` (attempt ${number.format(task.attempts)})` : ''}`,
      at: started,
      since: 'waited',
    });
  } else if (task.state === 'PENDING' || task.state === 'SUSPENDED') {
    list.push({
      key: 'started',
      title: task.state === 'SUSPENDED' ? 'Not started: waits for the tasks it depends on' : 'Not started yet',
      at: null,
    });
  }
  if (task.dateCompleted) {
    list.push({
      key: 'completed',
      title: (
        <>
          {current ? `${current}ended` : 'Ended'} <StateLabel state={task.state} />
        </>
      ),
      at: task.dateCompleted,
      since: started ? 'ran' : 'waited',
      detail: attemptsText(task.attempts),
    });
  } else if (task.state === 'PROCESSING') {
    list.push({ key: 'completed', title: 'Running', at: null });
  }
  return list;
}

export function Timeline({ task }: { task: DetailTask }) {
  const open = task.state === 'PROCESSING' || task.state === 'PENDING';
  const now = useNow(open);
  const list = steps(task);
  let previous: string | null = null;
  return (
    <section aria-labelledby="task-timeline-heading">
      <h2 id="task-timeline-heading">Timeline</h2>
      <ol className="task-timeline">
        {list.map((step) => {
          const before = previous;
          if (step.at) previous = step.at;
          const sinceMs = step.at && before ? Date.parse(step.at) - Date.parse(before) : null;
          // An open step counts up from the last dated one, so that a running task shows how long it has run.
          const openMs = !step.at && before && open ? now - Date.parse(before) : null;
          return (
            <li key={step.key}>
              <span className="task-step">{step.title}</span>
              {step.at && (
                <>
                  {' '}
                  <DateText iso={step.at} />
                </>
              )}
              {sinceMs !== null && step.since && (
                <span className="sub">
                  {' '}
                  ({step.since} {formatDuration(sinceMs)})
                </span>
              )}
              {openMs !== null && <span className="sub"> (for {formatDuration(openMs)})</span>}
              {step.detail && <div className="sub">{step.detail}</div>}
            </li>
          );
        })}
      </ol>
    </section>
  );
}
