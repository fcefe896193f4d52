import { eq, gt, gte, inArray, lt, lte, type Column, type SQL } from 'drizzle-orm';
import { taskFilterConditions, type TaskFilterCondition, type TaskFilterField } from '../domain/task-filter.js';
import type { TaskFilter } from '../domain/types.js';

/** The columns a filter compares, of either dialect's `tasks` table. */
export type TaskFilterColumns = { readonly [F in TaskFilterField]-?: Column };

const COMPARE_DATE = { gt, gte, lt, lte } as const;

// Times are stored as epoch milliseconds in both dialects.
function toSql(columns: TaskFilterColumns, condition: TaskFilterCondition): SQL {
  const column = columns[condition.field];
  switch (condition.comparison) {
    case 'equals':
      return eq(column, condition.value);
    case 'oneOf':
      return inArray(column, [...condition.values]);
    default:
      return COMPARE_DATE[condition.comparison](column, condition.value.getTime());
  }
}

/**
 * The filter's conditions (src/domain/task-filter.ts) as drizzle conditions on `tasks`: drizzle's
 * comparisons are the same in both dialects, so one function serves SQLite and PostgreSQL.
 */
export function taskFilterSql(tasks: TaskFilterColumns, filter: TaskFilter): SQL[] {
  return taskFilterConditions(filter).map((condition) => toSql(tasks, condition));
}
