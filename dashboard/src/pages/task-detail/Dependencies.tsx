import { Link } from 'wouter';
import { StateLabel } from '../../components/StateLabel.tsx';
import type { DetailTask } from '../TaskDetail.tsx';
import { taskHref } from './links.ts';

type Linked = DetailTask['dependsOn'][number];

function TaskList({ id, title, tasks, none }: { id: string; title: string; tasks: Linked[]; none: string }) {
  return (
    <div className="task-deps">
      <h3 id={id}>{title}</h3>
      {tasks.length === 0 ? (
        <p>{none}</p>
      ) : (
        <ul aria-labelledby={id}>
          {tasks.map((task) => (
            <li key={task.id}>
              <Link href={taskHref(task.id)}>
                {task.service}.{task.type} <span className="task-id">{task.id}</span>
              </Link>{' '}
              <StateLabel state={task.state} />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Dependencies({ task }: { task: DetailTask }) {
  return (
    <section aria-labelledby="task-deps-heading">
      <h2 id="task-deps-heading">Dependencies</h2>
      <div className="task-deps-lists">
        <TaskList id="task-waits-for" title="Waits for" tasks={task.dependsOn} none="It waits for no task." />
        <TaskList
          id="task-waited-for-by"
          title="Waited for by"
          tasks={task.dependents}
          none="No task waits for it."
        />
      </div>
      {task.dependents.length >= 100 && <p className="hint">Only the first 100 tasks that wait for it are listed.</p>}
    </section>
  );
}
