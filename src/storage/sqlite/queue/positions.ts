import type Database from 'better-sqlite3';
import { countsToRead, fairPositions, queuesOf, type RankedTask } from '../../fair-share.js';
import { waitingOrganisations } from './claim.js';
import { preparedOnce } from './statements.js';

/** Above this many ids, ranking the queues once beats counting for each id. */
const POSITION_COUNT_LIMIT = 16;

export const positionsStatements = preparedOnce((sqlite) => ({
  rankByCount: sqlite.prepare(
    `SELECT t.id, t.service, t.type AS action, t.organisation_id AS organisationId,
       (SELECT count(*) FROM tasks INDEXED BY tasks_queue_by_organisation
          WHERE state = 'PENDING' AND service = t.service AND type = t.type AND organisation_id = t.organisation_id
            AND priority > t.priority)
     + (SELECT count(*) FROM tasks INDEXED BY tasks_queue_by_organisation
          WHERE state = 'PENDING' AND service = t.service AND type = t.type AND organisation_id = t.organisation_id
            AND priority = t.priority AND id < t.id) AS rank
     FROM tasks t WHERE t.id = ? AND t.state = 'PENDING'`,
  ),
  // Each organisation's part of each queue concerned is ranked once, however many of its ids are
  // asked for. Materialised, so that SQLite ranks once instead of once per id asked for; CROSS JOIN
  // fixes the join order, which would otherwise depend on whether ANALYZE has run.
  ranksByWindow: sqlite.prepare(
    `WITH parts AS MATERIALIZED (
       SELECT DISTINCT t.service, t.type, t.organisation_id
       FROM json_each(@ids) AS wanted CROSS JOIN tasks AS t ON t.id = wanted.value
       WHERE t.state = 'PENDING'),
     ranked AS MATERIALIZED (
       SELECT t.id, t.service, t.type, t.organisation_id, row_number() OVER (
           PARTITION BY t.service, t.type, t.organisation_id ORDER BY t.priority DESC, t.id) - 1 AS rank
       FROM parts AS p CROSS JOIN tasks AS t INDEXED BY tasks_queue_by_organisation
         ON t.service = p.service AND t.type = p.type AND t.organisation_id = p.organisation_id
       WHERE t.state = 'PENDING')
     SELECT id, service, type AS action, organisation_id AS organisationId, rank FROM ranked
     WHERE id IN (SELECT value FROM json_each(@ids))`,
  ),
  // Counting stops where the turns before a task end: a backlog of 100,000 ahead of a lone task costs
  // its turns, not 100,000.
  pendingUpTo: sqlite.prepare(
    `SELECT count(*) AS pending FROM (
       SELECT 1 FROM tasks INDEXED BY tasks_queue_by_organisation
       WHERE service = @service AND type = @action AND organisation_id = @organisationId AND state = 'PENDING'
       LIMIT @upTo)`,
  ),
  pendingByAction: sqlite.prepare(
    `SELECT service, type AS action, count(*) AS pending FROM tasks INDEXED BY tasks_due
     WHERE state = 'PENDING' GROUP BY service, type`,
  ),
}));

/** Positions under fair share (src/storage/fair-share.ts): what runs before each task if nothing else arrives. */
export function queuePositions(sqlite: Database.Database, taskIds: readonly number[]): Map<number, number> {
  const statements = positionsStatements(sqlite);
  if (taskIds.length === 0) return new Map();
  const ranked =
    taskIds.length <= POSITION_COUNT_LIMIT
      ? taskIds.flatMap((id) => (statements.rankByCount.get(id) as RankedTask | undefined) ?? [])
      : (statements.ranksByWindow.all({ ids: JSON.stringify(taskIds) }) as RankedTask[]);
  if (ranked.length === 0) return new Map();
  const facts = waitingOrganisations(sqlite, queuesOf(ranked));
  const counts = countsToRead(ranked, facts).map((count) => ({
    ...count,
    pending: (statements.pendingUpTo.get(count) as { pending: number }).pending,
  }));
  return fairPositions(ranked, facts, counts);
}

export function pendingByAction(sqlite: Database.Database): { service: string; action: string; pending: number }[] {
  return positionsStatements(sqlite).pendingByAction.all() as { service: string; action: string; pending: number }[];
}
