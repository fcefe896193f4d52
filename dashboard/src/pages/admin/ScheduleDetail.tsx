import { useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link } from 'wouter';
import { StateLabel } from '../../components/StateLabel.tsx';
import { describeError } from '../../errors.ts';
import { graphql } from '../../gql/index.ts';
import type { AdminScheduleDetailQuery, ScheduleCatchUp, ScheduleOverlap } from '../../gql/graphql.ts';
import { CATCH_UPS, formatInZone, OUTCOMES, OVERLAPS, ZonedTime } from './Schedules.tsx';
import { Alert, DateCell, failureOf, Pager, parseJson, Status, usePager } from './shared.tsx';

const PAGE_SIZE = 20;

const scheduleQuery = graphql(`
  query AdminScheduleDetail($id: ID!, $after: String, $first: Int) {
    schedule(id: $id) {
      id
      name
      cron
      timezone
      service
      action
      params
      priority
      paused
      overlap
      catchUp
      dateCreated
      dateUpdated
      nextRuns(count: 10)
      lastRun {
        scheduledFor
        outcome
      }
      tasks(after: $after, first: $first) {
        edges {
          node {
            id
            state
            scheduledFor
            dateCreated
            dateCompleted
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`);

const updateMutation = graphql(`
  mutation AdminScheduleUpdate($id: ID!, $input: UpdateScheduleInput!) {
    updateSchedule(id: $id, input: $input) {
      __typename
      ... on ScheduleSuccess {
        schedule {
          id
          name
        }
      }
      ... on Error {
        message
      }
      ... on ValidationError {
        field
      }
    }
  }
`);

type Schedule = NonNullable<AdminScheduleDetailQuery['schedule']>;

export function ScheduleDetail({ id }: { id: string }) {
  const pager = usePager();
  const [result, reexecute] = useQuery({
    query: scheduleQuery,
    variables: { id, after: pager.after, first: PAGE_SIZE },
    requestPolicy: 'cache-and-network',
  });
  const schedule = result.data?.schedule;
  const tasks = schedule?.tasks.edges.map((edge) => edge.node) ?? [];

  return (
    <>
      <p>
        <Link href="/schedules">Back to the schedules</Link>
      </p>
      <h1>Schedule{schedule && <> {schedule.name}</>}</h1>
      {result.error && <Alert message={describeError(result.error)} />}
      {!result.data && !result.error && <p role="status">Loading…</p>}
      {result.data && !schedule && (
        <p role="alert" className="error">
          There is no schedule {id} in this organisation (or it was deleted).
        </p>
      )}
      {schedule && (
        <>
          <dl className="facts">
            <dt>Cron</dt>
            <dd>
              <code>{schedule.cron}</code> in {schedule.timezone}
            </dd>
            <dt>Runs</dt>
            <dd>
              {schedule.service}.{schedule.action}, priority {schedule.priority}
            </dd>
            <dt>Status</dt>
            <dd>{schedule.paused ? 'Paused' : 'Active'}</dd>
            <dt>Overlap</dt>
            <dd>{OVERLAPS[schedule.overlap].label}</dd>
            <dt>Catch-up</dt>
            <dd>{CATCH_UPS[schedule.catchUp].label}</dd>
            <dt>Last run</dt>
            <dd>
              {schedule.lastRun ? (
                <>
                  {OUTCOMES[schedule.lastRun.outcome]} for{' '}
                  <ZonedTime iso={schedule.lastRun.scheduledFor} timeZone={schedule.timezone} />
                </>
              ) : (
                'Not run yet'
              )}
            </dd>
            <dt>Created</dt>
            <dd>
              <DateCell iso={schedule.dateCreated} />; changed <DateCell iso={schedule.dateUpdated} />
            </dd>
          </dl>
          <h2>Next runs</h2>
          <ol className="next-runs">
            {schedule.nextRuns.map((run) => (
              <li key={run}>
                <ZonedTime iso={run} timeZone={schedule.timezone} />
              </li>
            ))}
          </ol>
          <EditSchedule key={schedule.id} schedule={schedule} onSaved={() => reexecute({ requestPolicy: 'network-only' })} />
          <section aria-labelledby="schedule-tasks-heading">
            <h2 id="schedule-tasks-heading">Tasks it created</h2>
            {tasks.length === 0 ? (
              <p>It has created no task yet (or retention has deleted them).</p>
            ) : (
              <div className="scroll" tabIndex={0} role="region" aria-labelledby="schedule-tasks-heading">
                <table className="admin-table">
                  <thead>
                    <tr>
                      <th scope="col">Fire time</th>
                      <th scope="col">State</th>
                      <th scope="col">Created</th>
                      <th scope="col">Ended</th>
                    </tr>
                  </thead>
                  <tbody>
                    {tasks.map((task) => (
                      <tr key={task.id}>
                        <th scope="row">
                          <Link href={`~/dashboard/tasks/${encodeURIComponent(task.id)}`}>
                            {task.scheduledFor ? formatInZone(task.scheduledFor, schedule.timezone) : 'Run now'}
                          </Link>
                        </th>
                        <td>
                          <StateLabel state={task.state} />
                        </td>
                        <td>
                          <DateCell iso={task.dateCreated} />
                        </td>
                        <td>
                          <DateCell iso={task.dateCompleted} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            <Pager
              pager={pager}
              label="Pages of the schedule's tasks"
              hasNextPage={schedule.tasks.pageInfo.hasNextPage}
              endCursor={schedule.tasks.pageInfo.endCursor}
            />
          </section>
        </>
      )}
    </>
  );
}

function EditSchedule({ schedule, onSaved }: { schedule: Schedule; onSaved: () => void }) {
  const ids = useId();
  const [name, setName] = useState(schedule.name);
  const [cron, setCron] = useState(schedule.cron);
  const [timezone, setTimezone] = useState(schedule.timezone);
  const [params, setParams] = useState(JSON.stringify(schedule.params, null, 2));
  const [priority, setPriority] = useState(String(schedule.priority));
  const [overlap, setOverlap] = useState<ScheduleOverlap>(schedule.overlap);
  const [catchUp, setCatchUp] = useState<ScheduleCatchUp>(schedule.catchUp);
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [{ fetching }, update] = useMutation(updateMutation);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setStatus(null);
    const parsed = parseJson(params, {});
    if ('error' in parsed) {
      setJsonError(parsed.error);
      return;
    }
    setJsonError(null);
    const answer = await update({
      id: schedule.id,
      input: {
        name: name.trim(),
        cron: cron.trim(),
        timezone: timezone.trim(),
        params: parsed.value,
        priority: Number(priority),
        overlap,
        catchUp,
      },
    });
    const failure = failureOf(answer.error, answer.data?.updateSchedule, 'ScheduleSuccess');
    if (failure) {
      setError(failure);
      return;
    }
    setStatus('The schedule is saved; a new cron or time zone waits for its next fire time after now.');
    onSaved();
  };

  return (
    <details className="edit-endpoint">
      <summary>Change the schedule</summary>
      <form className="admin-form" onSubmit={(event) => void submit(event)}>
        <div className="field">
          <label htmlFor={`${ids}-name`}>Name</label>
          <input id={`${ids}-name`} value={name} required onChange={(event) => setName(event.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-cron`}>Cron expression</label>
          <input id={`${ids}-cron`} value={cron} required spellCheck={false} onChange={(event) => setCron(event.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-timezone`}>Time zone (IANA)</label>
          <input
            id={`${ids}-timezone`}
            value={timezone}
            required
            spellCheck={false}
            onChange={(event) => setTimezone(event.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-params`}>Parameters (JSON object)</label>
          <textarea
            id={`${ids}-params`}
            rows={4}
            spellCheck={false}
            value={params}
            aria-invalid={jsonError ? true : undefined}
            aria-describedby={jsonError ? `${ids}-params-error` : undefined}
            onChange={(event) => {
              setParams(event.target.value);
              setJsonError(null);
            }}
          />
          {jsonError && (
            <span id={`${ids}-params-error`} role="alert" className="error">
              {jsonError}
            </span>
          )}
        </div>
        <div className="field">
          <label htmlFor={`${ids}-priority`}>Priority</label>
          <input
            id={`${ids}-priority`}
            type="number"
            required
            value={priority}
            onChange={(event) => setPriority(event.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-overlap`}>Overlap</label>
          <select id={`${ids}-overlap`} value={overlap} onChange={(event) => setOverlap(event.target.value as ScheduleOverlap)}>
            {(Object.keys(OVERLAPS) as ScheduleOverlap[]).map((value) => (
              <option key={value} value={value}>
                {OVERLAPS[value].label}
              </option>
            ))}
          </select>
          <span className="hint">{OVERLAPS[overlap].about}</span>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-catchup`}>Catch-up</label>
          <select id={`${ids}-catchup`} value={catchUp} onChange={(event) => setCatchUp(event.target.value as ScheduleCatchUp)}>
            {(Object.keys(CATCH_UPS) as ScheduleCatchUp[]).map((value) => (
              <option key={value} value={value}>
                {CATCH_UPS[value].label}
              </option>
            ))}
          </select>
          <span className="hint">{CATCH_UPS[catchUp].about}</span>
        </div>
        <Alert message={error} />
        <button type="submit" disabled={fetching}>
          {fetching ? 'Saving…' : 'Save the schedule'}
        </button>
      </form>
      <Status message={status} />
    </details>
  );
}
