import type Database from 'better-sqlite3';
import type { Task } from '../../../domain/types.js';
import type { Claim, ServedActions } from '../../contract.js';
import { planClaim, queueKeyOf, runPlanSync, type Head, type ShareFact, type WaitingOrganisations } from '../../fair-share.js';
import { TASK_COLUMNS, toTask } from '../../rows.js';
import { preparedOnce } from './statements.js';

// The organisations waiting in each queue, found by skipping through the queue's index one
// organisation at a time (a seek each, however many tasks each has), with their shares.
const WAITING_ORGANISATIONS = `
  WITH RECURSIVE served(service, type) AS (SELECT value ->> 0, value ->> 1 FROM json_each(@actions)),
  waiting(service, type, organisation_id) AS (
    SELECT served.service, served.type, (
      SELECT t.organisation_id FROM tasks AS t INDEXED BY tasks_queue_by_organisation
      WHERE t.service = served.service AND t.type = served.type AND t.state = 'PENDING'
      ORDER BY t.organisation_id, t.priority DESC, t.id LIMIT 1)
    FROM served
    UNION ALL
    SELECT waiting.service, waiting.type, (
      SELECT t.organisation_id FROM tasks AS t INDEXED BY tasks_queue_by_organisation
      WHERE t.service = waiting.service AND t.type = waiting.type AND t.state = 'PENDING'
        AND t.organisation_id > waiting.organisation_id
      ORDER BY t.organisation_id, t.priority DESC, t.id LIMIT 1)
    FROM waiting WHERE waiting.organisation_id IS NOT NULL)
  SELECT waiting.service, waiting.type AS action, waiting.organisation_id AS organisationId,
    coalesce(shares.served, 0) AS served, organisations.weight, organisations.max_concurrency AS maxConcurrency
  FROM waiting
  JOIN organisations ON organisations.id = waiting.organisation_id
  LEFT JOIN queue_shares AS shares ON shares.service = waiting.service AND shares.type = waiting.type
    AND shares.organisation_id = waiting.organisation_id
  WHERE waiting.organisation_id IS NOT NULL`;

export const claimStatements = preparedOnce((sqlite) => ({
  waitingOrganisations: sqlite.prepare(WAITING_ORGANISATIONS),
  heads: sqlite.prepare(
    `SELECT id, priority FROM tasks INDEXED BY tasks_queue_by_organisation
     WHERE service = @service AND type = @action AND organisation_id = @organisationId AND state = 'PENDING'
       AND available_at <= @now
     ORDER BY priority DESC, id LIMIT @limit`,
  ),
  runningInQueue: sqlite.prepare(
    `SELECT count(*) AS running FROM tasks INDEXED BY tasks_lease_expiry
     WHERE state = 'PROCESSING' AND service = ? AND type = ?`,
  ),
  runningOfOrganisation: sqlite.prepare(
    `SELECT count(*) AS running FROM tasks WHERE organisation_id = ? AND state = 'PROCESSING'`,
  ),
  lease: sqlite.prepare(
    `UPDATE tasks SET state = 'PROCESSING', attempts = attempts + 1, date_started = @now, progress = NULL,
       lease_owner = @owner, lease_expires_at = @leaseUntil
     WHERE id IN (SELECT value FROM json_each(@ids)) AND state = 'PENDING'
     RETURNING ${TASK_COLUMNS}`,
  ),
  saveShare: sqlite.prepare(
    `INSERT INTO queue_shares (service, type, organisation_id, served) VALUES (@service, @action, @organisationId, @served)
     ON CONFLICT (service, type, organisation_id) DO UPDATE SET served = excluded.served`,
  ),
  // One index seek per served queue: min() over a join would read every PENDING task.
  nextDue: sqlite.prepare(
    `SELECT min(dueAt) AS dueAt FROM (
       SELECT (SELECT min(available_at) FROM tasks INDEXED BY tasks_due
         WHERE service = served.value ->> 0 AND type = served.value ->> 1 AND state = 'PENDING') AS dueAt
       FROM json_each(@actions) AS served)`,
  ),
}));

/** The organisations waiting in `actions`' queues, with their shares, weights and caps. */
export function waitingOrganisations(sqlite: Database.Database, actions: ServedActions): ShareFact[] {
  return claimStatements(sqlite).waitingOrganisations.all({ actions: servedJson(actions) }) as ShareFact[];
}

/** Inside the work transaction: the tasks the claim leases, taking turns between organisations. */
export function claimTasks(sqlite: Database.Database, claim: Claim, now: number, waiting: WaitingOrganisations): Task[] {
  if (!(claim.limit > 0 && claim.actions.length > 0)) return [];
  const stale = waiting.stale(claim.actions, now);
  if (stale.length > 0) waiting.replace(stale, waitingOrganisations(sqlite, stale), now);
  let leased = leaseTurns(sqlite, claim, now, waiting);
  // Nothing due of the organisations this process knows of: another process may have brought one.
  if (leased.length === 0 && stale.length < claim.actions.length) {
    waiting.replace(claim.actions, waitingOrganisations(sqlite, claim.actions), now);
    leased = leaseTurns(sqlite, claim, now, waiting);
  }
  return leased;
}

function leaseTurns(sqlite: Database.Database, claim: Claim, now: number, waiting: WaitingOrganisations): Task[] {
  const statements = claimStatements(sqlite);
  const facts = waiting.facts(claim.actions);
  if (facts.length === 0) return [];
  const byQueue = new Map<string, number>();
  for (const { service, action, concurrency } of claim.actions) {
    if (concurrency == null) continue;
    byQueue.set(queueKeyOf(service, action), (statements.runningInQueue.get(service, action) as { running: number }).running);
  }
  const byOrganisation = new Map<number, number>();
  for (const fact of facts) {
    if (fact.maxConcurrency === null || byOrganisation.has(fact.organisationId)) continue;
    byOrganisation.set(fact.organisationId, (statements.runningOfOrganisation.get(fact.organisationId) as { running: number }).running);
  }
  const queues = claim.actions.map(({ service, action, concurrency }) => ({ service, action, concurrency: concurrency ?? null }));
  const plan = runPlanSync(
    planClaim(queues, facts, { byQueue, byOrganisation }, claim.limit),
    (request) => statements.heads.all({ ...request, now }) as Head[],
  );
  if (plan.taskIds.length === 0) return [];
  for (const share of plan.shares) statements.saveShare.run(share);
  waiting.served(plan.shares);
  const leased = (
    statements.lease.all({ ids: JSON.stringify(plan.taskIds), now, owner: claim.lease.owner, leaseUntil: claim.lease.until }) as never[]
  ).map(toTask);
  const order = new Map(plan.taskIds.map((id, index) => [id, index]));
  return leased.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
}

export function nextDueAt(sqlite: Database.Database, actions: ServedActions): number | null {
  const row = claimStatements(sqlite).nextDue.get({ actions: servedJson(actions) }) as { dueAt: number | null };
  return row.dueAt;
}

/** A worker serves the same actions all its life: their JSON is built once. */
const servedJsonCache = new WeakMap<ServedActions, string>();

export function servedJson(actions: ServedActions): string {
  let json = servedJsonCache.get(actions);
  if (json === undefined) {
    json = JSON.stringify(actions.map(({ service, action }) => [service, action]));
    servedJsonCache.set(actions, json);
  }
  return json;
}
