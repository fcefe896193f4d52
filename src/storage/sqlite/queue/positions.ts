import type Database from 'better-sqlite3';
import type { ServedActions } from '../../contract.js';
import { fairPosition, queueKeyOf, turnsAhead, startingShares, type ShareFact } from '../../fair-share.js';
import { waitingOrganisations } from './claim.js';
import { preparedOnce } from './statements.js';

/** Above this many ids, ranking the queues once beats counting for each id. */
const POSITION_COUNT_LIMIT = 16;

interface Ranked {
  id: number;
  service: string;
  action: string;
  organisationId: number;
  /** Pending tasks of its own organisation ahead of it in the queue. */
  rank: number;
}

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
  // Counting stops where the turns before a task end: a backlog of 100,000 ahead of a lone task costs
  // its turns, not 100,000.
  pendingUpTo: sqlite.prepare(
    `SELECT count(*) AS pending FROM (
       SELECT 1 FROM tasks INDEXED BY tasks_queue_by_organisation
       WHERE service = @service AND type = @action AND organisation_id = @organisationId AND state = 'PENDING'
       LIMIT @limit)`,
  ),
  // Materialised, so that SQLite ranks each queue once instead of once per id asked for; CROSS JOIN
  // fixes the join order, which would otherwise depend on whether ANALYZE has run.
  ranksByWindow: sqlite.prepare(
    `WITH queues AS MATERIALIZED (
       SELECT DISTINCT t.service, t.type FROM json_each(@ids) AS wanted CROSS JOIN tasks AS t ON t.id = wanted.value
       WHERE t.state = 'PENDING'),
     ranked AS MATERIALIZED (
       SELECT t.id, t.service, t.type, t.organisation_id, row_number() OVER (
           PARTITION BY t.service, t.type, t.organisation_id ORDER BY t.priority DESC, t.id) - 1 AS rank
       FROM queues AS q CROSS JOIN tasks AS t INDEXED BY tasks_queue_by_organisation
         ON t.service = q.service AND t.type = q.type
       WHERE t.state = 'PENDING')
     SELECT id, service, type AS action, organisation_id AS organisationId, rank FROM ranked
     WHERE id IN (SELECT value FROM json_each(@ids))`,
  ),
  pendingByOrganisation: sqlite.prepare(
    `SELECT t.service, t.type AS action, t.organisation_id AS organisationId, count(*) AS pending
     FROM json_each(@queues) AS q CROSS JOIN tasks AS t INDEXED BY tasks_queue_by_organisation
       ON t.service = q.value ->> 0 AND t.type = q.value ->> 1
     WHERE t.state = 'PENDING'
     GROUP BY t.service, t.type, t.organisation_id`,
  ),
  pendingByAction: sqlite.prepare(
    `SELECT service, type AS action, count(*) AS pending FROM tasks INDEXED BY tasks_due
     WHERE state = 'PENDING' GROUP BY service, type`,
  ),
}));

function sharesByQueue(facts: readonly ShareFact[]): Map<string, ShareFact[]> {
  const byQueue = new Map<string, ShareFact[]>();
  for (const fact of facts) {
    const key = queueKeyOf(fact.service, fact.action);
    const list = byQueue.get(key);
    if (list) list.push(fact);
    else byQueue.set(key, [fact]);
  }
  return byQueue;
}

/** Positions under fair share (src/storage/fair-share.ts): what runs before each task if nothing else arrives. */
export function queuePositions(sqlite: Database.Database, taskIds: readonly number[]): Map<number, number> {
  const statements = positionsStatements(sqlite);
  const positions = new Map<number, number>();
  if (taskIds.length === 0) return positions;
  if (taskIds.length <= POSITION_COUNT_LIMIT) {
    const waiting = new Map<string, ShareFact[]>();
    for (const id of taskIds) {
      const task = statements.rankByCount.get(id) as Ranked | undefined;
      if (!task) continue;
      const key = queueKeyOf(task.service, task.action);
      let shares = waiting.get(key);
      if (!shares) waiting.set(key, (shares = waitingOrganisations(sqlite, [{ service: task.service, action: task.action }])));
      const pending = new Map<number, number>();
      const started = shares.length > 1 ? startingShares(shares) : shares;
      for (const [organisationId, turns] of turnsAhead(started, task.organisationId, task.rank)) {
        const row = statements.pendingUpTo.get({ service: task.service, action: task.action, organisationId, limit: turns });
        pending.set(organisationId, (row as { pending: number }).pending);
      }
      positions.set(id, fairPosition({ shares, pending }, task.organisationId, task.rank));
    }
    return positions;
  }
  const ranked = statements.ranksByWindow.all({ ids: JSON.stringify(taskIds) }) as Ranked[];
  if (ranked.length === 0) return positions;
  const queues: ServedActions = [...new Map(ranked.map((task) => [queueKeyOf(task.service, task.action), task])).values()].map(
    ({ service, action }) => ({ service, action }),
  );
  const shares = sharesByQueue(waitingOrganisations(sqlite, queues));
  const pending = new Map<string, Map<number, number>>();
  const counts = statements.pendingByOrganisation.all({
    queues: JSON.stringify(queues.map(({ service, action }) => [service, action])),
  }) as { service: string; action: string; organisationId: number; pending: number }[];
  for (const row of counts) {
    const key = queueKeyOf(row.service, row.action);
    let byOrganisation = pending.get(key);
    if (!byOrganisation) pending.set(key, (byOrganisation = new Map()));
    byOrganisation.set(row.organisationId, row.pending);
  }
  for (const task of ranked) {
    const key = queueKeyOf(task.service, task.action);
    positions.set(task.id, fairPosition({ shares: shares.get(key) ?? [], pending: pending.get(key) ?? new Map() }, task.organisationId, task.rank));
  }
  return positions;
}

export function pendingByAction(sqlite: Database.Database): { service: string; action: string; pending: number }[] {
  return positionsStatements(sqlite).pendingByAction.all() as { service: string; action: string; pending: number }[];
}
