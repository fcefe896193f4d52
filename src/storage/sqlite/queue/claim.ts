import type Database from 'better-sqlite3';
import type { Task } from '../../../domain/types.js';
import type { Claim, ServedActions } from '../../contract.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { preparedOnce } from './statements.js';

export const claimStatements = preparedOnce((sqlite) => ({
  // The best `limit` of each served queue, then the best `limit` of those: a queue no one serves
  // is never read, however many of its tasks are due.
  claim: sqlite.prepare(
    `UPDATE tasks SET state = 'PROCESSING', attempts = attempts + 1, date_started = @now, progress = NULL,
       lease_owner = @owner, lease_expires_at = @leaseUntil
     WHERE id IN (
       SELECT t.id FROM json_each(@actions) AS served CROSS JOIN tasks AS t ON t.id IN (
         SELECT q.id FROM tasks AS q INDEXED BY tasks_queue
         WHERE q.service = served.value ->> 0 AND q.type = served.value ->> 1 AND q.state = 'PENDING'
           AND q.available_at <= @now
         ORDER BY q.priority DESC, q.id LIMIT @limit)
       ORDER BY t.priority DESC, t.id LIMIT @limit)
     RETURNING ${TASK_COLUMNS}`,
  ),
  // One index seek per served queue: min() over a join would read every PENDING task.
  nextDue: sqlite.prepare(
    `SELECT min(dueAt) AS dueAt FROM (
       SELECT (SELECT min(available_at) FROM tasks INDEXED BY tasks_due
         WHERE service = served.value ->> 0 AND type = served.value ->> 1 AND state = 'PENDING') AS dueAt
       FROM json_each(@actions) AS served)`,
  ),
}));

/** Inside the work transaction: the tasks the claim leases, best first. */
export function claimTasks(sqlite: Database.Database, claim: Claim, now: number): Task[] {
  if (!(claim.limit > 0 && claim.actions.length > 0)) return [];
  return (
    claimStatements(sqlite).claim.all({
      now,
      limit: claim.limit,
      actions: servedJson(claim.actions),
      owner: claim.lease.owner,
      leaseUntil: claim.lease.until,
    }) as never[]
  )
    .map(toTask)
    .sort((a, b) => b.priority - a.priority || a.id - b.id);
}

export function nextDueAt(sqlite: Database.Database, actions: ServedActions): number | null {
  const row = claimStatements(sqlite).nextDue.get({ actions: servedJson(actions) }) as { dueAt: number | null };
  return row.dueAt;
}

/** A worker serves the same actions all its life: their JSON is built once. */
const servedJsonCache = new WeakMap<ServedActions, string>();

function servedJson(actions: ServedActions): string {
  let json = servedJsonCache.get(actions);
  if (json === undefined) {
    json = JSON.stringify(actions.map(({ service, action }) => [service, action]));
    servedJsonCache.set(actions, json);
  }
  return json;
}
