import { useId, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { STATE_LABELS, TASK_STATES } from '../../components/StateLabel.tsx';
import { formatDate } from '../../format.ts';
import type { TaskState } from '../../gql/graphql.ts';
import {
  DATE_RANGES,
  TEXT_FIELDS,
  describeView,
  isoToLocalInput,
  localInputToIso,
  type ListView,
  type RangeName,
  type TextParam,
} from './url-filter.ts';

// On a phone the form would push the list a screen down: it starts folded there, its summary
// still saying what it filters on.
const startsOpen = () => typeof window.matchMedia !== 'function' || window.matchMedia('(min-width: 700px)').matches;

const MAIN_FIELDS: ReadonlySet<TextParam> = new Set(['service', 'type', 'poll']);

const HINTS: Partial<Record<TextParam, string>> = {
  key: 'The id of the key that submitted the tasks.',
  source: 'The id of the registered account the tasks run against.',
  sourceType: 'The service of that account.',
};

type Dates = Record<`${RangeName}${'From' | 'To'}`, string>;

function initialDates(view: ListView): Dates {
  const dates = {} as Dates;
  for (const { name } of DATE_RANGES) {
    dates[`${name}From`] = isoToLocalInput(view.ranges[name]?.from);
    dates[`${name}To`] = isoToLocalInput(view.ranges[name]?.to);
  }
  return dates;
}

/**
 * The filter as a form; it writes the URL (onApply) and the list reads it. Give it a key that
 * changes with the URL so that it shows the filter of the address after Back or a shared link.
 */
export function FilterForm({ view, onApply }: { view: ListView; onApply: (view: ListView) => void }) {
  const id = useId();
  const [states, setStates] = useState<TaskState[]>(view.states);
  const [text, setText] = useState<Partial<Record<TextParam, string>>>(view.text);
  const [dates, setDates] = useState<Dates>(() => initialDates(view));
  const moreInUse =
    TEXT_FIELDS.some(({ param }) => !MAIN_FIELDS.has(param) && view.text[param]) || Object.keys(view.ranges).length > 0;

  function toggleState(state: TaskState, checked: boolean) {
    setStates((current) => (checked ? [...current, state] : current.filter((other) => other !== state)));
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    const cleaned: ListView['text'] = {};
    for (const { param } of TEXT_FIELDS) {
      const value = text[param]?.trim();
      if (value) cleaned[param] = value;
    }
    const ranges: ListView['ranges'] = {};
    for (const { name } of DATE_RANGES) {
      const from = localInputToIso(dates[`${name}From`]);
      const to = localInputToIso(dates[`${name}To`]);
      if (from || to) ranges[name] = { ...(from && { from }), ...(to && { to }) };
    }
    onApply({ states: TASK_STATES.filter((state) => states.includes(state)), text: cleaned, ranges, after: null, back: [] });
  }

  const textInput = (param: TextParam, label: string) => (
    <div className="tasks-field" key={param}>
      <label htmlFor={`${id}-${param}`}>{label}</label>
      <input
        id={`${id}-${param}`}
        name={param}
        value={text[param] ?? ''}
        autoComplete="off"
        spellCheck={false}
        aria-describedby={HINTS[param] ? `${id}-${param}-hint` : undefined}
        onChange={(event) => setText((current) => ({ ...current, [param]: event.target.value }))}
      />
      {HINTS[param] && (
        <span className="hint" id={`${id}-${param}-hint`}>
          {HINTS[param]}
        </span>
      )}
    </div>
  );

  return (
    <details className="tasks-filter-box" open={startsOpen()}>
      <summary>
        <span className="tasks-filter-title">Filter</span>: {describeView(view, STATE_LABELS, formatDate)}
      </summary>
      <form className="tasks-filter" aria-label="Filter tasks" onSubmit={submit}>
        <fieldset className="tasks-states">
          <legend>State</legend>
          {TASK_STATES.map((state) => (
            <label key={state} className="tasks-check" data-state={state.toLowerCase()}>
              <input
                type="checkbox"
                name="state"
                value={state}
                checked={states.includes(state)}
                onChange={(event) => toggleState(state, event.target.checked)}
              />
              <span className="dot" aria-hidden="true" />
              {STATE_LABELS[state]}
            </label>
          ))}
        </fieldset>
        <div className="tasks-fields">
          {TEXT_FIELDS.filter(({ param }) => MAIN_FIELDS.has(param)).map(({ param, label }) => textInput(param, label))}
        </div>
        <details className="tasks-more" open={moreInUse}>
          <summary>More filters: session, user, key, source, dates</summary>
          <div className="tasks-fields">
            {TEXT_FIELDS.filter(({ param }) => !MAIN_FIELDS.has(param)).map(({ param, label }) => textInput(param, label))}
          </div>
          <div className="tasks-ranges">
            {DATE_RANGES.map(({ name, label }) => (
              <fieldset key={name}>
                <legend>{label}</legend>
                {(['From', 'To'] as const).map((end) => (
                  <div className="tasks-field" key={end}>
                    <label htmlFor={`${id}-${name}${end}`}>
                      {label} {end === 'From' ? 'from' : 'before'}
                    </label>
                    <input
                      id={`${id}-${name}${end}`}
                      type="datetime-local"
                      step={1}
                      name={`${name}${end}`}
                      value={dates[`${name}${end}`]}
                      onChange={(event) => setDates((current) => ({ ...current, [`${name}${end}`]: event.target.value }))}
                    />
                  </div>
                ))}
              </fieldset>
            ))}
          </div>
          <p className="hint">Dates are in your time zone; “before” leaves out that moment itself.</p>
        </details>
        <div className="tasks-actions">
          <button type="submit">Apply filter</button>
          <Link href="/tasks">Clear filter</Link>
        </div>
      </form>
    </details>
  );
}
