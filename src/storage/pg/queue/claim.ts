import type pg from 'pg';
import type { Task } from '../../../domain/types.js';
import type { Claim, ServedActions } from '../../contract.js';
import { headsKey, planClaim, queueKeyOf, runPlan, type Head, type HeadsRequest, type ShareFact, type WaitingOrganisations } from '../../fair-share.js';
import type { PgDatabase } from '../database.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { statement } from './statements.js';

// The organisations waiting in each queue, found by skipping through the queue's index one
// organisation at a time (a seek each, however many tasks each has), with their shares. Ordered
// as that index is: by organisation_id alone, PostgreSQL prefers other indexes led by it and
// filters their rows, which costs every task of the table when a queue is empty.
const WAITING_ORGANISATIONS = `
  WITH RECURSIVE served AS (SELECT * FROM unnest($1::text[], $2::text[]) AS s(service, type)),
  waiting(service, type, organisation_id) AS (
    SELECT served.service, served.type, (
      SELECT t.organisation_id FROM tasks AS t
      WHERE t.service = served.service AND t.type = served.type AND t.state = 'PENDING'
      ORDER BY t.organisation_id, t.priority DESC, t.id LIMIT 1)
    FROM served
    UNION ALL
    SELECT waiting.service, waiting.type, (
      SELECT t.organisation_id FROM tasks AS t
      WHERE t.service = waiting.service AND t.type = waiting.type AND t.state = 'PENDING'
        AND t.organisation_id > waiting.organisation_id
      ORDER BY t.organisation_id, t.priority DESC, t.id LIMIT 1)
    FROM waiting WHERE waiting.organisation_id IS NOT NULL)
  SELECT waiting.service, waiting.type AS action, waiting.organisation_id AS "organisationId",
    coalesce(shares.served, 0) AS served, organisations.weight, organisations.max_concurrency AS "maxConcurrency"
  FROM waiting
  JOIN organisations ON organisations.id = waiting.organisation_id
  LEFT JOIN queue_shares AS shares ON shares.service = waiting.service AND shares.type = waiting.type
    AND shares.organisation_id = waiting.organisation_id
  WHERE waiting.organisation_id IS NOT NULL`;

const statements = {
  waitingOrganisations: statement('waitingOrganisations', WAITING_ORGANISATIONS),
  // A task another worker is claiming is skipped.
  heads: statement(
    'heads',
    `SELECT wanted.service, wanted.type AS action, wanted.organisation_id AS "organisationId", head.id, head.priority
     FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS wanted(service, type, organisation_id, wanted)
     CROSS JOIN LATERAL (
       SELECT id, priority FROM tasks
       WHERE service = wanted.service AND type = wanted.type AND organisation_id = wanted.organisation_id
         AND state = 'PENDING' AND available_at <= $5
       ORDER BY priority DESC, id LIMIT wanted.wanted FOR NO KEY UPDATE SKIP LOCKED) AS head`,
  ),
  // Caps are counted and then filled: claims that share a cap take turns, so that two processes
  // cannot each see room for the same last slot.
  lockCaps: statement(
    'lockCaps',
    `SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key ORDER BY key`,
  ),
  runningInQueues: statement(
    'runningInQueues',
    `SELECT queue.service, queue.type AS action, (
       SELECT count(*)::int FROM tasks WHERE state = 'PROCESSING' AND service = queue.service AND type = queue.type) AS running
     FROM unnest($1::text[], $2::text[]) AS queue(service, type)`,
  ),
  runningOfOrganisations: statement(
    'runningOfOrganisations',
    `SELECT organisation.id AS "organisationId", (
       SELECT count(*)::int FROM tasks WHERE organisation_id = organisation.id AND state = 'PROCESSING') AS running
     FROM unnest($1::int[]) AS organisation(id)`,
  ),
  // Only heads this transaction locked are leased, and the lock kept them PENDING: a condition on
  // state would only let the planner take a partial index on it, which it does whenever the table's
  // statistics are stale (always, on a queue being worked), and then read every entry of that
  // index, live or dead (a lease of 32 took 4.3 ms that way, 1.1 ms by key, on a queue of 20,000).
  lease: statement(
    'lease',
    `UPDATE tasks SET state = 'PROCESSING', attempts = attempts + 1, date_started = $2, progress = NULL,
       lease_owner = $3, lease_expires_at = $4
     WHERE id = ANY($1::bigint[])
     RETURNING ${TASK_COLUMNS}`,
  ),
  // Another process may have moved a share since this one read it: what this claim took is added to
  // what the share is now (or to its floor, if that is higher). A share no process has written yet
  // is created with it; the UPDATE cannot see the rows its own statement inserts.
  saveShares: statement(
    'saveShares',
    `WITH taken AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::float8[], $5::float8[])
         AS taken(service, type, organisation_id, base, added)),
     created AS (
       INSERT INTO queue_shares (service, type, organisation_id, served)
       SELECT service, type, organisation_id, base + added FROM taken
       ON CONFLICT (service, type, organisation_id) DO NOTHING)
     UPDATE queue_shares SET served = greatest(queue_shares.served, taken.base) + taken.added
     FROM taken
     WHERE queue_shares.service = taken.service AND queue_shares.type = taken.type
       AND queue_shares.organisation_id = taken.organisation_id`,
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

/** The organisations waiting in `actions`' queues, with their shares, weights and caps. */
export async function waitingOrganisations(client: pg.ClientBase | pg.Pool, actions: ServedActions): Promise<ShareFact[]> {
  const { rows } = await client.query(statements.waitingOrganisations(servedArrays(actions)));
  return rows as ShareFact[];
}

async function readHeads(client: pg.PoolClient, requests: HeadsRequest[], now: number): Promise<Map<string, Head[]>> {
  const { rows } = await client.query(
    statements.heads([
      requests.map((request) => request.service),
      requests.map((request) => request.action),
      requests.map((request) => request.organisationId),
      requests.map((request) => request.limit),
      now,
    ]),
  );
  const heads = new Map<string, Head[]>();
  for (const row of rows as (HeadsRequest & Head)[]) {
    const key = headsKey(row);
    const list = heads.get(key);
    if (list) list.push({ id: row.id, priority: row.priority });
    else heads.set(key, [{ id: row.id, priority: row.priority }]);
  }
  return heads;
}

/** Inside the work transaction: the tasks the claim leases, taking turns between organisations. */
export async function claimTasks(client: pg.PoolClient, claim: Claim, now: number, waiting: WaitingOrganisations): Promise<Task[]> {
  if (!(claim.limit > 0 && claim.actions.length > 0)) return [];
  const stale = waiting.stale(claim.actions, now);
  if (stale.length > 0) waiting.replace(stale, await waitingOrganisations(client, stale), now);
  let leased = await leaseTurns(client, claim, now, waiting);
  // Nothing due of the organisations this process knows of: another process may have brought one.
  if (leased.length === 0 && stale.length < claim.actions.length) {
    waiting.replace(claim.actions, await waitingOrganisations(client, claim.actions), now);
    leased = await leaseTurns(client, claim, now, waiting);
  }
  return leased;
}

async function leaseTurns(client: pg.PoolClient, claim: Claim, now: number, waiting: WaitingOrganisations): Promise<Task[]> {
  const facts = waiting.facts(claim.actions);
  if (facts.length === 0) return [];
  const cappedQueues = claim.actions.filter(
    (served) => served.concurrency != null && facts.some((fact) => fact.service === served.service && fact.action === served.action),
  );
  const cappedOrganisations = [...new Set(facts.filter((fact) => fact.maxConcurrency !== null).map((fact) => fact.organisationId))];
  const byQueue = new Map<string, number>();
  const byOrganisation = new Map<number, number>();
  if (cappedQueues.length > 0 || cappedOrganisations.length > 0) {
    await client.query(
      statements.lockCaps([
        [
          ...cappedQueues.map(({ service, action }) => `taskport.queue:${service}.${action}`),
          ...cappedOrganisations.map((id) => `taskport.organisation:${id}`),
        ],
      ]),
    );
    if (cappedQueues.length > 0) {
      const { rows } = await client.query(
        statements.runningInQueues([cappedQueues.map((queue) => queue.service), cappedQueues.map((queue) => queue.action)]),
      );
      for (const row of rows as { service: string; action: string; running: number }[]) {
        byQueue.set(queueKeyOf(row.service, row.action), row.running);
      }
    }
    if (cappedOrganisations.length > 0) {
      const { rows } = await client.query(statements.runningOfOrganisations([cappedOrganisations]));
      for (const row of rows as { organisationId: number; running: number }[]) byOrganisation.set(row.organisationId, row.running);
    }
  }
  const queues = claim.actions.map(({ service, action, concurrency }) => ({ service, action, concurrency: concurrency ?? null }));
  const plan = await runPlan(planClaim(queues, facts, { byQueue, byOrganisation }, claim.limit), (requests) =>
    readHeads(client, requests, now),
  );
  if (plan.taskIds.length === 0) return [];
  if (plan.shares.length > 0) {
    await client.query(
      statements.saveShares([
        plan.shares.map((share) => share.service),
        plan.shares.map((share) => share.action),
        plan.shares.map((share) => share.organisationId),
        plan.shares.map((share) => share.from),
        plan.shares.map((share) => share.served - share.from),
      ]),
    );
    waiting.served(plan.shares);
  }
  const { rows } = await client.query(statements.lease([plan.taskIds, now, claim.lease.owner, claim.lease.until]));
  const order = new Map(plan.taskIds.map((id, index) => [id, index]));
  return (rows as never[]).map(toTask).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
}

export async function nextDueAt(database: PgDatabase, actions: ServedActions): Promise<number | null> {
  if (actions.length === 0) return null;
  const { rows } = await database.pool.query(statements.nextDue(servedArrays(actions)));
  return (rows[0] as { dueAt: number | null }).dueAt;
}

/** A worker serves the same actions all its life: their arrays are built once. */
const servedArraysCache = new WeakMap<ServedActions, [string[], string[]]>();

export function servedArrays(actions: ServedActions): [string[], string[]] {
  let arrays = servedArraysCache.get(actions);
  if (arrays === undefined) {
    arrays = [actions.map((served) => served.service), actions.map((served) => served.action)];
    servedArraysCache.set(actions, arrays);
  }
  return arrays;
}
