import { countsToRead, fairPositions, queuesOf, type PendingCount, type RankedTask } from '../../fair-share.js';
import type { PgDatabase } from '../database.js';
import { waitingOrganisations } from './claim.js';
import { statement } from './statements.js';

/** Above this many ids, one window query over the queues beats indexed counts per id. */
const POSITION_COUNT_LIMIT = 16;

const RANKED_COLUMNS = `t.id, t.service, t.type AS action, t.organisation_id AS "organisationId"`;

const statements = {
  // Two indexed counts per id, all ids in one round trip.
  ranksByCount: statement(
    'ranksByCount',
    `SELECT ${RANKED_COLUMNS},
       (SELECT count(*)::int FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND organisation_id = t.organisation_id AND priority > t.priority)
     + (SELECT count(*)::int FROM tasks WHERE state = 'PENDING' AND service = t.service AND type = t.type
          AND organisation_id = t.organisation_id AND priority = t.priority AND id < t.id) AS rank
     FROM tasks t WHERE t.id = ANY($1::bigint[]) AND t.state = 'PENDING'`,
  ),
  // Each organisation's part of each queue concerned is ranked once, however many of its ids are
  // asked for, in the order of its index: no sort.
  ranksByWindow: statement(
    'ranksByWindow',
    `WITH queues AS MATERIALIZED (
       SELECT DISTINCT service, type, organisation_id FROM tasks WHERE id = ANY($1::bigint[]) AND state = 'PENDING'),
     ranked AS (
       SELECT r.id, q.service, q.type, q.organisation_id, r.rank FROM queues AS q CROSS JOIN LATERAL (
         SELECT id, (row_number() OVER (ORDER BY priority DESC, id) - 1)::int AS rank FROM tasks
         WHERE service = q.service AND type = q.type AND organisation_id = q.organisation_id AND state = 'PENDING') AS r)
     SELECT ranked.id, ranked.service, ranked.type AS action, ranked.organisation_id AS "organisationId", ranked.rank
     FROM ranked JOIN unnest($1::bigint[]) AS wanted(id) ON wanted.id = ranked.id`,
  ),
  // Counting stops where the turns before a task end: a backlog of 100,000 ahead of a lone task
  // costs its turns, not 100,000.
  pendingUpTo: statement(
    'pendingUpTo',
    `SELECT wanted.service, wanted.type AS action, wanted.organisation_id AS "organisationId", (
       SELECT count(*)::int FROM (
         SELECT 1 FROM tasks WHERE service = wanted.service AND type = wanted.type
           AND organisation_id = wanted.organisation_id AND state = 'PENDING' LIMIT wanted.up_to) AS counted) AS pending
     FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS wanted(service, type, organisation_id, up_to)`,
  ),
  pendingByAction: statement(
    'pendingByAction',
    `SELECT service, type AS action, count(*)::int AS pending FROM tasks WHERE state = 'PENDING' GROUP BY service, type`,
  ),
};

/** Positions under fair share (src/storage/fair-share.ts): what runs before each task if nothing else arrives. */
export async function queuePositions(database: PgDatabase, taskIds: readonly number[]): Promise<Map<number, number>> {
  if (taskIds.length === 0) return new Map();
  const ranks = taskIds.length <= POSITION_COUNT_LIMIT ? statements.ranksByCount : statements.ranksByWindow;
  const ranked = (await database.pool.query(ranks([taskIds]))).rows as RankedTask[];
  if (ranked.length === 0) return new Map();
  const facts = await waitingOrganisations(database.pool, queuesOf(ranked));
  const wanted = countsToRead(ranked, facts);
  const counts: PendingCount[] = [];
  if (wanted.length > 0) {
    const { rows } = await database.pool.query(
      statements.pendingUpTo([
        wanted.map((entry) => entry.service),
        wanted.map((entry) => entry.action),
        wanted.map((entry) => entry.organisationId),
        wanted.map((entry) => entry.upTo),
      ]),
    );
    counts.push(...(rows as PendingCount[]));
  }
  return fairPositions(ranked, facts, counts);
}

export async function pendingByAction(database: PgDatabase): Promise<{ service: string; action: string; pending: number }[]> {
  const { rows } = await database.pool.query(statements.pendingByAction([]));
  return rows as { service: string; action: string; pending: number }[];
}
