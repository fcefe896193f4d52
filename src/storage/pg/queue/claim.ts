import type pg from 'pg';
import type { Task } from '../../../domain/types.js';
import type { Claim, ServedActions } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { statement } from './statements.js';

const statements = {
  // The best `limit` of each served queue, then the best `limit` of those: a queue no one serves
  // is never read, however many of its tasks are due. A task another worker is claiming is skipped.
  claim: statement(
    'claim',
    `WITH served AS (SELECT * FROM unnest($1::text[], $2::text[]) AS s(service, type)),
     candidates AS (
       SELECT c.id FROM served CROSS JOIN LATERAL (
         SELECT id, priority FROM tasks
         WHERE service = served.service AND type = served.type AND state = 'PENDING' AND available_at <= $3
         ORDER BY priority DESC, id LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED) AS c
       ORDER BY c.priority DESC, c.id LIMIT $4)
     UPDATE tasks SET state = 'PROCESSING', attempts = attempts + 1, date_started = $3, progress = NULL,
       lease_owner = $5, lease_expires_at = $6
     FROM candidates WHERE tasks.id = candidates.id
     RETURNING ${TASK_COLUMNS.replace(/^id,/, 'tasks.id,')}`,
  ),
  // One index seek per served queue: min() over a join would read every PENDING task.
  nextDue: statement(
    'nextDue',
    `SELECT min(due.at) AS "dueAt" FROM unnest($1::text[], $2::text[]) AS served(service, type)
     CROSS JOIN LATERAL (
       SELECT min(available_at) AS at FROM tasks
       WHERE service = served.service AND type = served.type AND state = 'PENDING') AS due`,
  ),
};

/** Inside the work transaction: the tasks the claim leases, best first. */
export async function claimTasks(client: pg.PoolClient, claim: Claim, now: number): Promise<Task[]> {
  if (!(claim.limit > 0 && claim.actions.length > 0)) return [];
  const [services, types] = servedArrays(claim.actions);
  const { rows } = await client.query(
    statements.claim([services, types, now, claim.limit, claim.lease.owner, claim.lease.until]),
  );
  return (rows as never[]).map(toTask).sort((a, b) => b.priority - a.priority || a.id - b.id);
}

export async function nextDueAt(database: PgDatabase, actions: ServedActions): Promise<number | null> {
  if (actions.length === 0) return null;
  const { rows } = await database.pool.query(statements.nextDue(servedArrays(actions)));
  return (rows[0] as { dueAt: number | null }).dueAt;
}

/** A worker serves the same actions all its life: their arrays are built once. */
const servedArraysCache = new WeakMap<ServedActions, [string[], string[]]>();

function servedArrays(actions: ServedActions): [string[], string[]] {
  let arrays = servedArraysCache.get(actions);
  if (arrays === undefined) {
    arrays = [actions.map((served) => served.service), actions.map((served) => served.action)];
    servedArraysCache.set(actions, arrays);
  }
  return arrays;
}
