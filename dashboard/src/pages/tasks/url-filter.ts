import { TASK_STATES } from '../../components/StateLabel.tsx';
import type { DateTimeFilter, TaskFilter, TaskState } from '../../gql/graphql.ts';

/** The text fields of TaskFilter, by the name each has in the query string. */
export const TEXT_FIELDS = [
  { param: 'service', label: 'Service' },
  { param: 'type', label: 'Action' },
  { param: 'poll', label: 'Poll' },
  { param: 'session', label: 'Session' },
  { param: 'user', label: 'User' },
  { param: 'idempotencyKey', label: 'Idempotency key' },
  { param: 'key', label: 'API key id' },
  { param: 'source', label: 'Source account id' },
  { param: 'sourceType', label: 'Source type' },
] as const;

export type TextParam = (typeof TEXT_FIELDS)[number]['param'];

export const DATE_RANGES = [
  { name: 'created', field: 'dateCreated', label: 'Created' },
  { name: 'started', field: 'dateStarted', label: 'Started' },
  { name: 'completed', field: 'dateCompleted', label: 'Completed' },
] as const;

export type RangeName = (typeof DATE_RANGES)[number]['name'];

/** What the query string says: the filter, and where the page starts. */
export interface ListView {
  states: TaskState[];
  text: Partial<Record<TextParam, string>>;
  /** ISO instants; `from` is inclusive, `to` exclusive. */
  ranges: Partial<Record<RangeName, { from?: string; to?: string }>>;
  /** The cursor of the page shown; none for the first page. */
  after: string | null;
  /** The cursors of the pages before it, oldest first, for Previous; the first page has none. */
  back: string[];
}

const STATE_SET = new Set<string>(TASK_STATES);

function validInstant(value: string | null): string | undefined {
  if (!value) return undefined;
  return Number.isNaN(Date.parse(value)) ? undefined : value;
}

export function parseView(search: string): ListView {
  const params = new URLSearchParams(search);
  const states = params.getAll('state').filter((state): state is TaskState => STATE_SET.has(state));
  const text: ListView['text'] = {};
  for (const { param } of TEXT_FIELDS) {
    const value = params.get(param)?.trim();
    if (value) text[param] = value;
  }
  const ranges: ListView['ranges'] = {};
  for (const { name } of DATE_RANGES) {
    const from = validInstant(params.get(`${name}From`));
    const to = validInstant(params.get(`${name}To`));
    if (from || to) ranges[name] = { ...(from && { from }), ...(to && { to }) };
  }
  return {
    states: TASK_STATES.filter((state) => states.includes(state)),
    text,
    ranges,
    after: params.get('after') || null,
    back: params.getAll('back').filter(Boolean),
  };
}

export function viewSearch(view: ListView): string {
  const params = new URLSearchParams();
  for (const state of view.states) params.append('state', state);
  for (const { param } of TEXT_FIELDS) {
    const value = view.text[param];
    if (value) params.set(param, value);
  }
  for (const { name } of DATE_RANGES) {
    const range = view.ranges[name];
    if (range?.from) params.set(`${name}From`, range.from);
    if (range?.to) params.set(`${name}To`, range.to);
  }
  for (const cursor of view.back) params.append('back', cursor);
  if (view.after) params.set('after', view.after);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The address of a view of the Tasks page, relative to the dashboard's base. */
export function viewHref(view: ListView): string {
  return `/tasks${viewSearch(view)}`;
}

export function filterOnly(view: ListView): ListView {
  return { ...view, after: null, back: [] };
}

export function hasFilter(view: ListView): boolean {
  return view.states.length > 0 || Object.keys(view.text).length > 0 || Object.keys(view.ranges).length > 0;
}

/** The TaskFilter the view names; the same view always gives an equal object, field by field. */
export function taskFilter(view: ListView): TaskFilter {
  const filter: TaskFilter = {};
  if (view.states.length > 0) filter.state = view.states;
  for (const { param } of TEXT_FIELDS) {
    const value = view.text[param];
    if (value) filter[param] = value;
  }
  for (const { name, field } of DATE_RANGES) {
    const range = view.ranges[name];
    if (!range) continue;
    const bounds: DateTimeFilter = {};
    if (range.from) bounds.gte = range.from;
    if (range.to) bounds.lt = range.to;
    filter[field] = bounds;
  }
  return filter;
}

const pad = (value: number) => String(value).padStart(2, '0');

/** An ISO instant as a datetime-local input shows it, in the reader's time zone. */
export function isoToLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const base = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return date.getSeconds() === 0 && date.getMilliseconds() === 0 ? base : `${base}:${pad(date.getSeconds())}`;
}

/** A datetime-local input's value (the reader's time zone) as an ISO instant. */
export function localInputToIso(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The filter in words, for the summary of a folded form: "State Failed or Pending; service demo". */
export function describeView(view: ListView, labels: Record<TaskState, string>, formatDate: (iso: string) => string): string {
  const parts: string[] = [];
  if (view.states.length > 0) parts.push(`state ${view.states.map((state) => labels[state]).join(' or ')}`);
  for (const { param, label } of TEXT_FIELDS) {
    const value = view.text[param];
    if (value) parts.push(`${label.toLowerCase()} ${value}`);
  }
  for (const { name, label } of DATE_RANGES) {
    const range = view.ranges[name];
    if (range?.from) parts.push(`${label.toLowerCase()} from ${formatDate(range.from)}`);
    if (range?.to) parts.push(`${label.toLowerCase()} before ${formatDate(range.to)}`);
  }
  if (parts.length === 0) return 'every task';
  const text = parts.join('; ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
