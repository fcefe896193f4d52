import type Database from 'better-sqlite3';
import { preparedOnce } from './statements.js';

/** Above this many ids, one window query over the queues beats one indexed count per id. */
const POSITION_COUNT_LIMIT = 16;

export const positionsStatements = preparedOnce((sqlite) => ({
  positionByCount: sqlite.prepare(
    `SELECT
       (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND priority > t.priority)
     + (SELECT count(*) FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND priority = t.priority AND id < t.id) AS position
     FROM tasks t WHERE t.id = ? AND t.state = 'PENDING'`,
  ),
  // Materialised, so that SQLite ranks each queue once instead of once per id asked for; CROSS JOIN
  // fixes the join order, which would otherwise depend on whether ANALYZE has run.
  positionsByWindow: sqlite.prepare(
    `WITH queues AS MATERIALIZED (
       SELECT DISTINCT t.service, t.type FROM json_each(@ids) AS wanted CROSS JOIN tasks AS t ON t.id = wanted.value
       WHERE t.state = 'PENDING'),
     ranked AS MATERIALIZED (
       SELECT t.id, row_number() OVER (PARTITION BY t.service, t.type ORDER BY t.priority DESC, t.id) - 1 AS position
       FROM queues AS q CROSS JOIN tasks AS t INDEXED BY tasks_queue ON t.service = q.service AND t.type = q.type
       WHERE t.state = 'PENDING')
     SELECT id, position FROM ranked WHERE id IN (SELECT value FROM json_each(@ids))`,
  ),
  pendingByAction: sqlite.prepare(
    `SELECT service, type AS action, count(*) AS pending FROM tasks INDEXED BY tasks_queue
     WHERE state = 'PENDING' GROUP BY service, type`,
  ),
}));

export function queuePositions(sqlite: Database.Database, taskIds: readonly number[]): Map<number, number> {
  const statements = positionsStatements(sqlite);
  const positions = new Map<number, number>();
  if (taskIds.length === 0) return positions;
  if (taskIds.length <= POSITION_COUNT_LIMIT) {
    for (const id of taskIds) {
      const row = statements.positionByCount.get(id) as { position: number } | undefined;
      if (row) positions.set(id, row.position);
    }
    return positions;
  }
  const rows = statements.positionsByWindow.all({ ids: JSON.stringify(taskIds) }) as {
    id: number;
    position: number;
  }[];
  for (const row of rows) positions.set(row.id, row.position);
  return positions;
}

export function pendingByAction(sqlite: Database.Database): { service: string; action: string; pending: number }[] {
  return positionsStatements(sqlite).pendingByAction.all() as { service: string; action: string; pending: number }[];
}
