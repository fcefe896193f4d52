import { useId, useMemo, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link } from 'wouter';
import { describeError } from '../../errors.ts';
import { formatDate } from '../../format.ts';
import { graphql } from '../../gql/index.ts';
import type {
  AdminSchedulesQuery,
  ScheduleCatchUp,
  ScheduleOverlap,
  ScheduleRunOutcome,
} from '../../gql/graphql.ts';
import { Alert, ConfirmButton, failureOf, Hidden, Pager, parseJson, Status, usePager } from './shared.tsx';

const PAGE_SIZE = 25;

const schedulesQuery = graphql(`
  query AdminSchedules($after: String, $first: Int) {
    schedules(after: $after, first: $first) {
      edges {
        node {
          ...AdminScheduleFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
    services {
      slug
      name
      actions {
        slug
        name
        execution
      }
    }
  }

  fragment AdminScheduleFields on Schedule {
    id
    name
    cron
    timezone
    service
    action
    paused
    overlap
    catchUp
    nextRuns(count: 3)
    lastRun {
      scheduledFor
      outcome
      task {
        id
      }
    }
  }
`);

const createScheduleMutation = graphql(`
  mutation AdminSchedulesCreate($input: CreateScheduleInput!) {
    createSchedule(input: $input) {
      __typename
      ... on ScheduleSuccess {
        schedule {
          ...AdminScheduleFields
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

const pauseMutation = graphql(`
  mutation AdminSchedulesPause($id: ID!) {
    pauseSchedule(id: $id) {
      __typename
      ... on ScheduleSuccess {
        schedule {
          ...AdminScheduleFields
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const resumeMutation = graphql(`
  mutation AdminSchedulesResume($id: ID!) {
    resumeSchedule(id: $id) {
      __typename
      ... on ScheduleSuccess {
        schedule {
          ...AdminScheduleFields
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const triggerMutation = graphql(`
  mutation AdminSchedulesTrigger($id: ID!) {
    triggerSchedule(id: $id) {
      __typename
      ... on TriggerScheduleSuccess {
        task {
          id
        }
        schedule {
          ...AdminScheduleFields
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

const deleteMutation = graphql(`
  mutation AdminSchedulesDelete($id: ID!) {
    deleteSchedule(id: $id) {
      __typename
      ... on ScheduleSuccess {
        schedule {
          id
          name
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

type Schedule = AdminSchedulesQuery['schedules']['edges'][number]['node'];

/** A fire time as the schedule reads it: in its own time zone, named, so that "03:00" matches its cron. */
export function formatInZone(iso: string, timeZone: string): string {
  try {
    return new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'short',
    }).format(new Date(iso));
  } catch {
    return formatDate(iso);
  }
}

export function ZonedTime({ iso, timeZone }: { iso: string; timeZone: string }) {
  return (
    <time dateTime={iso} title={`${formatDate(iso)} in your time zone`}>
      {formatInZone(iso, timeZone)}
    </time>
  );
}

export const OUTCOMES: Readonly<Record<ScheduleRunOutcome, string>> = {
  CREATED: 'Task created',
  MISSED: 'Missed',
  REFUSED: 'Refused',
  SKIPPED_OVERLAP: 'Skipped (overlap)',
};

export const OVERLAPS: Readonly<Record<ScheduleOverlap, { label: string; about: string }>> = {
  ALLOW: { label: 'Allow (ALLOW)', about: 'A task at every fire time, however many of its earlier ones still run.' },
  SKIP: { label: 'Skip (SKIP)', about: 'No task while the previous one has not ended; the fire time is recorded as skipped.' },
};

export const CATCH_UPS: Readonly<Record<ScheduleCatchUp, { label: string; about: string }>> = {
  NONE: { label: 'None (NONE)', about: 'Fire times more than 60 s late (no process was running) are recorded as missed.' },
  LATEST: { label: 'Latest (LATEST)', about: 'One task for the most recent of the missed fire times, then the next as usual.' },
};

export function Schedules() {
  const pager = usePager();
  const [result, reexecute] = useQuery({
    query: schedulesQuery,
    variables: { after: pager.after, first: PAGE_SIZE },
    requestPolicy: 'cache-and-network',
  });
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [, pause] = useMutation(pauseMutation);
  const [, resume] = useMutation(resumeMutation);
  const [, trigger] = useMutation(triggerMutation);
  const [, remove] = useMutation(deleteMutation);
  const refresh = () => reexecute({ requestPolicy: 'network-only' });

  const act = async (
    schedule: Schedule,
    verb: string,
    run: () => Promise<{ error?: Parameters<typeof failureOf>[0]; result: Parameters<typeof failureOf>[1]; success: string }>,
    done: string,
  ) => {
    setError(null);
    setStatus(null);
    const answer = await run();
    const failure = failureOf(answer.error, answer.result, answer.success);
    if (failure) setError(`${verb} ${schedule.name}: ${failure}`);
    else setStatus(done);
    refresh();
  };

  const schedules = result.data?.schedules.edges.map((edge) => edge.node) ?? [];

  return (
    <>
      <h1>Schedules</h1>
      <p className="hint">Tasks from cron expressions, submitted as the key that created the schedule.</p>
      <Status message={status} />
      <Alert message={error} />
      <section aria-labelledby="schedules-heading">
        <h2 id="schedules-heading">Schedules</h2>
        {result.error && <Alert message={describeError(result.error)} />}
        {!result.data && !result.error && <p role="status">Loading…</p>}
        {result.data && schedules.length === 0 && <p>The organisation has no schedule.</p>}
        {schedules.length > 0 && (
          <div className="scroll" tabIndex={0} role="region" aria-labelledby="schedules-heading">
            <table className="admin-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Cron</th>
                  <th scope="col">Time zone</th>
                  <th scope="col">Service.action</th>
                  <th scope="col">Next runs</th>
                  <th scope="col">Last run</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {schedules.map((schedule) => (
                  <tr key={schedule.id}>
                    <th scope="row">
                      <Link href={`/schedules/${encodeURIComponent(schedule.id)}`}>{schedule.name}</Link>
                    </th>
                    <td>
                      <code>{schedule.cron}</code>
                    </td>
                    <td>{schedule.timezone}</td>
                    <td>
                      {schedule.service}.{schedule.action}
                    </td>
                    <td>
                      <ul className="plain">
                        {schedule.nextRuns.map((run) => (
                          <li key={run}>
                            <ZonedTime iso={run} timeZone={schedule.timezone} />
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>
                      {schedule.lastRun ? (
                        <>
                          {OUTCOMES[schedule.lastRun.outcome]}
                          <br />
                          <span className="sub">
                            for <ZonedTime iso={schedule.lastRun.scheduledFor} timeZone={schedule.timezone} />
                          </span>
                          {schedule.lastRun.task && (
                            <>
                              <br />
                              <Link href={`~/dashboard/tasks/${encodeURIComponent(schedule.lastRun.task.id)}`}>Its task</Link>
                            </>
                          )}
                        </>
                      ) : (
                        'Not run yet'
                      )}
                    </td>
                    <td>{schedule.paused ? 'Paused' : 'Active'}</td>
                    <td>
<div className="actions">
                      {schedule.paused ? (
                        <button
                          type="button"
                          onClick={() =>
                            void act(
                              schedule,
                              'Resuming',
                              async () => {
                                const answer = await resume({ id: schedule.id });
                                return { error: answer.error, result: answer.data?.resumeSchedule, success: 'ScheduleSuccess' };
                              },
                              `${schedule.name} is resumed: it waits for its next fire time.`,
                            )
                          }
                        >
                          Resume<Hidden> {schedule.name}</Hidden>
                        </button>
                      ) : (
                        <button
                          type="button"
                          className="secondary"
                          onClick={() =>
                            void act(
                              schedule,
                              'Pausing',
                              async () => {
                                const answer = await pause({ id: schedule.id });
                                return { error: answer.error, result: answer.data?.pauseSchedule, success: 'ScheduleSuccess' };
                              },
                              `${schedule.name} is paused: no tasks until it is resumed.`,
                            )
                          }
                        >
                          Pause<Hidden> {schedule.name}</Hidden>
                        </button>
                      )}
                      <button
                        type="button"
                        className="secondary"
                        onClick={() =>
                          void act(
                            schedule,
                            'Triggering',
                            async () => {
                              const answer = await trigger({ id: schedule.id });
                              return {
                                error: answer.error,
                                result: answer.data?.triggerSchedule,
                                success: 'TriggerScheduleSuccess',
                              };
                            },
                            `${schedule.name} submitted a task now.`,
                          )
                        }
                      >
                        Run<Hidden> {schedule.name}</Hidden> now
                      </button>
                      <ConfirmButton
                        label="Delete"
                        target={schedule.name}
                        question={`Delete ${schedule.name}? It creates no more tasks.`}
                        confirmLabel="Yes, delete"
                        onConfirm={() =>
                          act(
                            schedule,
                            'Deleting',
                            async () => {
                              const answer = await remove({ id: schedule.id });
                              return { error: answer.error, result: answer.data?.deleteSchedule, success: 'ScheduleSuccess' };
                            },
                            `${schedule.name} is deleted.`,
                          )
                        }
                      />
                    </div>
</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {result.data && (
          <Pager
            pager={pager}
            label="Pages of schedules"
            hasNextPage={result.data.schedules.pageInfo.hasNextPage}
            endCursor={result.data.schedules.pageInfo.endCursor}
          />
        )}
      </section>
      {result.data && (
        <CreateScheduleForm
          services={result.data.services}
          onCreated={(name) => {
            setError(null);
            setStatus(`${name} is created.`);
            refresh();
          }}
        />
      )}
    </>
  );
}

function timeZones(): string[] {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return ['UTC'];
  }
}

function CreateScheduleForm({
  services,
  onCreated,
}: {
  services: AdminSchedulesQuery['services'];
  onCreated: (name: string) => void;
}) {
  const ids = useId();
  const actions = services.flatMap((service) =>
    service.actions
      .filter((action) => action.execution.includes('ASYNCHRONOUS'))
      .map((action) => ({ value: `${service.slug}.${action.slug}`, service: service.slug, action: action.slug, label: action.name })),
  );
  const zones = useMemo(timeZones, []);
  const [name, setName] = useState('');
  const [cron, setCron] = useState('');
  const [timezone, setTimezone] = useState('UTC');
  const [target, setTarget] = useState(actions[0]?.value ?? '');
  const [params, setParams] = useState('');
  const [overlap, setOverlap] = useState<ScheduleOverlap>('ALLOW');
  const [catchUp, setCatchUp] = useState<ScheduleCatchUp>('NONE');
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [{ fetching }, create] = useMutation(createScheduleMutation);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const parsed = parseJson(params, {});
    if ('error' in parsed) {
      setJsonError(parsed.error);
      return;
    }
    setJsonError(null);
    const chosen = actions.find((option) => option.value === target);
    if (!chosen) {
      setError('Choose an action.');
      return;
    }
    const answer = await create({
      input: {
        name: name.trim(),
        cron: cron.trim(),
        timezone: timezone.trim() || null,
        service: chosen.service,
        action: chosen.action,
        params: parsed.value,
        overlap,
        catchUp,
      },
    });
    const created = answer.data?.createSchedule;
    const failure = failureOf(answer.error, created, 'ScheduleSuccess');
    if (failure || created?.__typename !== 'ScheduleSuccess') {
      setError(failure);
      return;
    }
    setName('');
    setCron('');
    setParams('');
    onCreated(created.schedule.name);
  };

  return (
    <section aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Create a schedule</h2>
      <form className="admin-form" onSubmit={(event) => void submit(event)}>
        <div className="field">
          <label htmlFor={`${ids}-name`}>Name</label>
          <input
            id={`${ids}-name`}
            value={name}
            required
            aria-describedby={`${ids}-name-hint`}
            onChange={(event) => setName(event.target.value)}
          />
          <span id={`${ids}-name-hint`} className="hint">
            Unique among the organisation's schedules.
          </span>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-cron`}>Cron expression</label>
          <input
            id={`${ids}-cron`}
            value={cron}
            required
            spellCheck={false}
            placeholder="*/5 * * * *"
            aria-describedby={`${ids}-cron-hint`}
            onChange={(event) => setCron(event.target.value)}
          />
          <span id={`${ids}-cron-hint`} className="hint">
            5 fields, or 6 with seconds first (e.g. "*/10 * * * * *"), or @hourly, @daily, …
          </span>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-timezone`}>Time zone (IANA)</label>
          <input
            id={`${ids}-timezone`}
            value={timezone}
            list={`${ids}-zones`}
            spellCheck={false}
            onChange={(event) => setTimezone(event.target.value)}
          />
          <datalist id={`${ids}-zones`}>
            {zones.map((zone) => (
              <option key={zone} value={zone} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-action`}>Service.action</label>
          <select id={`${ids}-action`} value={target} onChange={(event) => setTarget(event.target.value)}>
            {actions.map((option) => (
              <option key={option.value} value={option.value}>
                {option.value} ({option.label})
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-params`}>Parameters (JSON object, optional)</label>
          <textarea
            id={`${ids}-params`}
            rows={3}
            spellCheck={false}
            value={params}
            placeholder='{ "message": "hello" }'
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
          <label htmlFor={`${ids}-overlap`}>Overlap</label>
          <select
            id={`${ids}-overlap`}
            value={overlap}
            aria-describedby={`${ids}-overlap-hint`}
            onChange={(event) => setOverlap(event.target.value as ScheduleOverlap)}
          >
            {(Object.keys(OVERLAPS) as ScheduleOverlap[]).map((value) => (
              <option key={value} value={value}>
                {OVERLAPS[value].label}
              </option>
            ))}
          </select>
          <span id={`${ids}-overlap-hint`} className="hint">
            {OVERLAPS[overlap].about}
          </span>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-catchup`}>Catch-up</label>
          <select
            id={`${ids}-catchup`}
            value={catchUp}
            aria-describedby={`${ids}-catchup-hint`}
            onChange={(event) => setCatchUp(event.target.value as ScheduleCatchUp)}
          >
            {(Object.keys(CATCH_UPS) as ScheduleCatchUp[]).map((value) => (
              <option key={value} value={value}>
                {CATCH_UPS[value].label}
              </option>
            ))}
          </select>
          <span id={`${ids}-catchup-hint`} className="hint">
            {CATCH_UPS[catchUp].about}
          </span>
        </div>
        <Alert message={error} />
        <button type="submit" disabled={fetching}>
          {fetching ? 'Creating the schedule…' : 'Create schedule'}
        </button>
      </form>
    </section>
  );
}
