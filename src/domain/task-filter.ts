import type { DateRange, Task, TaskFilter, TaskState } from './types.js';

// The one definition of what a TaskFilter selects. listTasks turns its conditions into SQL
// (src/storage/task-filter.ts) and taskEvents tests tasks that changed after the query with
// `matchesTaskFilter`: both read the same conditions, so the two cannot drift apart.

export type TaskFilterField = keyof TaskFilter;

type ComparisonOf<F extends TaskFilterField> =
  NonNullable<TaskFilter[F]> extends DateRange ? 'range' : NonNullable<TaskFilter[F]> extends readonly unknown[] ? 'oneOf' : 'equals';

/**
 * How each field compares. Every filter field is the task property (and the tasks column) of the
 * same name; a new TaskFilter field does not compile until it is given its comparison here.
 */
export const TASK_FILTER_FIELDS: { readonly [F in TaskFilterField]-?: ComparisonOf<F> } = Object.freeze({
  id: 'oneOf',
  keyId: 'equals',
  user: 'equals',
  sourceId: 'equals',
  session: 'equals',
  poll: 'equals',
  idempotencyKey: 'equals',
  sourceType: 'equals',
  service: 'equals',
  type: 'equals',
  state: 'oneOf',
  dateCreated: 'range',
  dateStarted: 'range',
  dateCompleted: 'range',
});

type FieldsComparedBy<C> = { [F in TaskFilterField]-?: ComparisonOf<F> extends C ? F : never }[TaskFilterField];
export type EqualityField = FieldsComparedBy<'equals'>;
export type DateField = FieldsComparedBy<'range'>;
export type ListField = FieldsComparedBy<'oneOf'>;
export type RangeBound = keyof DateRange;

const RANGE_BOUNDS: readonly RangeBound[] = ['gt', 'gte', 'lt', 'lte'];

/** One test a task must pass; a filter selects the tasks that pass all of its conditions. */
export type TaskFilterCondition =
  | { field: EqualityField; comparison: 'equals'; value: string | number }
  | { field: 'state'; comparison: 'oneOf'; values: readonly TaskState[] }
  | { field: 'id'; comparison: 'oneOf'; values: readonly number[] }
  | { field: DateField; comparison: RangeBound; value: Date };

/** Absent and null fields, empty state lists and null bounds select everything: they give no condition. */
export function taskFilterConditions(filter: TaskFilter): TaskFilterCondition[] {
  const conditions: TaskFilterCondition[] = [];
  for (const field of Object.keys(TASK_FILTER_FIELDS) as TaskFilterField[]) {
    const comparison = TASK_FILTER_FIELDS[field];
    if (comparison === 'equals') {
      const value = filter[field as EqualityField];
      if (value != null) conditions.push({ field: field as EqualityField, comparison, value });
    } else if (comparison === 'oneOf') {
      if (field === 'state' && filter.state && filter.state.length > 0) conditions.push({ field, comparison, values: filter.state });
      if (field === 'id' && filter.id && filter.id.length > 0) conditions.push({ field, comparison, values: filter.id });
    } else {
      const range = filter[field as DateField];
      for (const bound of RANGE_BOUNDS) {
        const value = range?.[bound];
        if (value != null) conditions.push({ field: field as DateField, comparison: bound, value });
      }
    }
  }
  return conditions;
}

// As in SQL, a null value passes no comparison: a task not yet started is outside every dateStarted range.
function passes(task: Task, condition: TaskFilterCondition): boolean {
  switch (condition.comparison) {
    case 'equals':
      return task[condition.field] === condition.value;
    case 'oneOf':
      return (condition.values as readonly unknown[]).includes(task[condition.field]);
  }
  const date = task[condition.field];
  if (date === null) return false;
  const time = date.getTime();
  const bound = condition.value.getTime();
  switch (condition.comparison) {
    case 'gt':
      return time > bound;
    case 'gte':
      return time >= bound;
    case 'lt':
      return time < bound;
    case 'lte':
      return time <= bound;
  }
}

/** Whether listTasks would list the task, for a task read after the listing. */
export function matchesTaskFilter(task: Task, filter: TaskFilter): boolean {
  return taskFilterConditions(filter).every((condition) => passes(task, condition));
}
