import type { PgDatabase } from '../database.js';
import { statement } from './statements.js';

/** Above this many ids, one window query over the queues beats one indexed count per id. */
const POSITION_COUNT_LIMIT = 16;

const statements = {
  // Two indexed counts per id, all ids in one round trip.
  positionsByCount: statement(
    'positionsByCount',
    `SELECT t.id,
       (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND priority > t.priority)
     + (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND priority = t.priority AND id < t.id) AS position
     FROM tasks t WHERE t.id = ANY($1::bigint[]) AND t.state = 'PENDING'`,
  ),
  // Each queue concerned is ranked once, however many of its ids are asked for, in the order of its
  // index: no sort.
  positionsByWindow: statement(
    'positionsByWindow',
    `WITH queues AS MATERIALIZED (
       SELECT DISTINCT service, type FROM tasks WHERE id = ANY($1::bigint[]) AND state = 'PENDING'),
     ranked AS (
       SELECT r.id, r.position FROM queues AS q CROSS JOIN LATERAL (
         SELECT id, row_number() OVER (ORDER BY priority DESC, id) - 1 AS position FROM tasks
         WHERE service = q.service AND type = q.type AND state = 'PENDING') AS r)
     SELECT ranked.id, ranked.position FROM ranked JOIN unnest($1::bigint[]) AS wanted(id) ON wanted.id = ranked.id`,
  ),
  pendingByAction: statement(
    'pendingByAction',
    `SELECT service, type AS action, count(*)::int AS pending FROM tasks WHERE state = 'PENDING' GROUP BY service, type`,
  ),
};

export async function queuePositions(database: PgDatabase, taskIds: readonly number[]): Promise<Map<number, number>> {
  const positions = new Map<number, number>();
  if (taskIds.length === 0) return positions;
  const query = taskIds.length <= POSITION_COUNT_LIMIT ? statements.positionsByCount : statements.positionsByWindow;
  const { rows } = await database.pool.query(query([taskIds]));
  for (const row of rows as { id: number; position: number }[]) positions.set(row.id, row.position);
  return positions;
}

export async function pendingByAction(database: PgDatabase): Promise<{ service: string; action: string; pending: number }[]> {
  const { rows } = await database.pool.query(statements.pendingByAction([]));
  return rows as { service: string; action: string; pending: number }[];
}
