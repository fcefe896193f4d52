import { TASK_COLUMNS } from '../../rows.js';

/** A named statement: pg prepares it once per connection, then only binds its values. */
export const statement = (name: string, text: string) => (values: unknown[]) => ({ name: `queue.${name}`, text, values });

/**
 * The tasks of a short id array (a worker turn's, at most its concurrency), as a join the planner
 * answers with one primary-key lookup per id; for thousands of ids it may hash a scan of the table.
 * Written as `id = ANY($1) AND state = '…'`, it takes the partial index on that state instead
 * whenever the table's statistics are stale, which on a queue being worked they always are: it
 * then reads every entry of that index, live or dead, to find the few ids (a claim of 8 read 145
 * pages and took 1.4 ms where the lookups take 0.5, measured on a queue of 20,000).
 */
export const BY_KEY = (idsParameter: string) => `unnest(${idsParameter}::bigint[]) AS by_key(id)`;

/** TASK_COLUMNS where the tasks are joined with a relation that has an id of its own. */
export const TASK_COLUMNS_OF_JOIN = TASK_COLUMNS.replace(/^id,/, 'tasks.id,');
