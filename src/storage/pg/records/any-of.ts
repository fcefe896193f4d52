import { sql, type Placeholder, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';

/**
 * `column = ANY($1)` with the whole list as one array parameter: the statement text is the same
 * however many ids, where IN would have a placeholder per id.
 */
export function anyOf(column: PgColumn, values: readonly number[] | Placeholder): SQL {
  return sql`${column} = ANY(${Array.isArray(values) ? sql.param([...values]) : values})`;
}
