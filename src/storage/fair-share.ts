// Fair share between the organisations with pending tasks in one queue: start-time fair queueing.
// Each organisation has served a share of the queue (tasks started, 1/weight each). Its next task
// would finish its turn at served + 1/weight; the claim takes the smallest such turn first, ties to
// the lower organisation id. Within an organisation, priority and then first in, first out.
//
// Both dialects read the same facts (shares and weights, pending heads) and hand them to these
// functions, so that the claim and `queuePosition` agree on what runs first.

export interface Share {
  organisationId: number;
  weight: number;
  /** Share of the queue served so far, as stored (the claim writes it back). */
  served: number;
}

/**
 * An organisation idle for a while comes back with its old, low share: without a floor it would
 * take every turn until it caught up. So no share counts as less than one whole turn behind the
 * most served organisation with pending tasks: a returning organisation gets at most `weight`
 * tasks ahead of the others, then takes its turns.
 */
export function startingShares(shares: readonly Share[]): Share[] {
  const most = Math.max(...shares.map((share) => share.served));
  return shares.map((share) => ({ ...share, served: Math.max(share.served, most - 1) }));
}

// Shares add 1/weight at a time: compare turns with a tolerance, so that 3 × (1/3) equals 1.
const EPSILON = 1e-9;

function turnBefore(turn: number, organisationId: number, otherTurn: number, otherOrganisationId: number): boolean {
  if (turn < otherTurn - EPSILON) return true;
  if (turn > otherTurn + EPSILON) return false;
  return organisationId < otherOrganisationId;
}

/**
 * The organisations of the next `count` turns of the queue, in order. `available` caps how many
 * tasks each organisation can be given (its due tasks, what its concurrency cap leaves); an
 * organisation missing from it has no cap.
 */
export function nextTurns(shares: readonly Share[], count: number, available?: ReadonlyMap<number, number>): number[] {
  const taken = new Map<number, number>();
  const turns: number[] = [];
  while (turns.length < count) {
    let best: Share | null = null;
    let bestTurn = Infinity;
    for (const share of shares) {
      const given = taken.get(share.organisationId) ?? 0;
      if (given >= (available?.get(share.organisationId) ?? Infinity)) continue;
      const turn = share.served + (given + 1) / share.weight;
      if (best === null || turnBefore(turn, share.organisationId, bestTurn, best.organisationId)) {
        best = share;
        bestTurn = turn;
      }
    }
    if (best === null) break;
    taken.set(best.organisationId, (taken.get(best.organisationId) ?? 0) + 1);
    turns.push(best.organisationId);
  }
  return turns;
}

/**
 * How many tasks of the other organisations run before the task that is `rank`-th (0-based) in
 * its own organisation's order, if nothing else arrives: the turns of each other organisation
 * that come before that task's turn, as far as its pending tasks go. Add `rank` for its own.
 */
export function turnsAhead(shares: readonly Share[], organisationId: number, rank: number): Map<number, number> {
  const own = shares.find((share) => share.organisationId === organisationId);
  const ahead = new Map<number, number>();
  if (!own) return ahead;
  const turn = own.served + (rank + 1) / own.weight;
  for (const other of shares) {
    if (other.organisationId === organisationId) continue;
    // Turns k = 1, 2, … of `other` fall at other.served + k / weight: count those before `turn`.
    const span = (turn - other.served) * other.weight;
    const whole = Math.round(span);
    let count = Math.abs(span - whole) < EPSILON ? whole - (other.organisationId < organisationId ? 0 : 1) : Math.floor(span);
    count = Math.max(0, count);
    if (count > 0) ahead.set(other.organisationId, count);
  }
  return ahead;
}

/** One organisation's shares of one queue, and its cap over every queue, as the store reads them. */
export interface ShareFact extends Share {
  service: string;
  action: string;
  /** Null for no cap. */
  maxConcurrency: number | null;
}

export interface QueueOfClaim {
  service: string;
  action: string;
  /** The most tasks of the action that may run at once over every process; null for no cap. */
  concurrency: number | null;
}

/** What the planner asks the store for: the best `limit` due tasks of an organisation in a queue. */
export interface HeadsRequest {
  service: string;
  action: string;
  organisationId: number;
  limit: number;
}

export interface Head {
  id: number;
  priority: number;
}

/** The running tasks that concurrency caps count, by queue key and by organisation. */
export interface RunningCounts {
  byQueue: ReadonlyMap<string, number>;
  byOrganisation: ReadonlyMap<number, number>;
}

export interface ClaimPlan {
  taskIds: number[];
  /** New shares of the queues that more than one organisation is waiting in. */
  shares: { service: string; action: string; organisationId: number; from: number; served: number }[];
}

export const queueKeyOf = (service: string, action: string) => `${service}\u0000${action}`;

/**
 * Plans one claim of up to `limit` tasks from `facts` (the organisations waiting in each queue)
 * and the running counts of the caps that apply. It asks for pending heads as it needs them
 * (`yield`), so that SQLite answers inside its synchronous transaction and PostgreSQL in round
 * trips, from one plan.
 */
export function* planClaim(
  queues: readonly QueueOfClaim[],
  facts: readonly ShareFact[],
  running: RunningCounts,
  limit: number,
): Generator<HeadsRequest[], ClaimPlan, Map<string, Head[]>> {
  const organisationRoom = new Map<number, number>();
  for (const fact of facts) {
    if (fact.maxConcurrency !== null) {
      organisationRoom.set(fact.organisationId, Math.max(0, fact.maxConcurrency - (running.byOrganisation.get(fact.organisationId) ?? 0)));
    }
  }
  const waiting = new Map<string, Share[]>();
  for (const fact of facts) {
    const key = queueKeyOf(fact.service, fact.action);
    const shares = waiting.get(key);
    const share = { organisationId: fact.organisationId, weight: fact.weight, served: fact.served };
    if (shares) shares.push(share);
    else waiting.set(key, [share]);
  }

  interface QueuePlan {
    queue: QueueOfClaim;
    shares: Share[];
    /** The shares as read, before startingShares raised any. */
    stored: number[];
    budget: number;
    available: Map<number, number>;
    heads: Map<number, Head[]>;
    turns: number[] | null;
  }
  const plans: QueuePlan[] = [];
  for (const queue of queues) {
    const shares = waiting.get(queueKeyOf(queue.service, queue.action));
    if (!shares) continue;
    const queueRoom =
      queue.concurrency === null ? Infinity : queue.concurrency - (running.byQueue.get(queueKeyOf(queue.service, queue.action)) ?? 0);
    const budget = Math.min(limit, queueRoom);
    if (budget <= 0) continue;
    const available = new Map<number, number>();
    for (const share of shares) {
      const room = organisationRoom.get(share.organisationId);
      if (room !== undefined) available.set(share.organisationId, room);
    }
    plans.push({
      queue,
      shares: shares.length > 1 ? startingShares(shares) : shares,
      stored: shares.map((share) => share.served),
      budget,
      available,
      heads: new Map(),
      turns: null,
    });
  }

  // Each round plans the turns of every queue not yet settled, then fetches the heads those turns
  // need; an organisation with fewer due tasks than its turns is capped at what it has, and its
  // queue is planned again.
  for (;;) {
    const requests: HeadsRequest[] = [];
    for (const plan of plans) {
      if (plan.turns) continue;
      const turns = nextTurns(plan.shares, plan.budget, plan.available);
      const wanted = new Map<number, number>();
      for (const organisationId of turns) wanted.set(organisationId, (wanted.get(organisationId) ?? 0) + 1);
      let settled = true;
      for (const [organisationId, count] of wanted) {
        const fetched = plan.heads.get(organisationId);
        if (fetched && (fetched.length >= count || plan.available.get(organisationId) === fetched.length)) continue;
        settled = false;
        requests.push({ service: plan.queue.service, action: plan.queue.action, organisationId, limit: count });
      }
      if (settled) plan.turns = turns;
    }
    if (requests.length === 0) break;
    const answers = yield requests;
    for (const request of requests) {
      const plan = plans.find((candidate) => candidate.queue.service === request.service && candidate.queue.action === request.action)!;
      const heads = answers.get(headsKey(request)) ?? [];
      plan.heads.set(request.organisationId, heads);
      if (heads.length < request.limit) {
        plan.available.set(request.organisationId, Math.min(heads.length, plan.available.get(request.organisationId) ?? Infinity));
      }
    }
  }

  // Each queue's tasks in its own fair order; across queues, the better head first, as the claim
  // always took them; an organisation's cap holds over all of them.
  const sequences = plans.map((plan) => {
    const used = new Map<number, number>();
    return (plan.turns ?? []).map((organisationId) => {
      const index = used.get(organisationId) ?? 0;
      used.set(organisationId, index + 1);
      return { organisationId, head: plan.heads.get(organisationId)![index]! };
    });
  });
  const cursors = sequences.map(() => 0);
  const taken = new Map<string, Map<number, number>>();
  const taskIds: number[] = [];
  while (taskIds.length < limit) {
    let best = -1;
    for (const [index, sequence] of sequences.entries()) {
      while (cursors[index]! < sequence.length && organisationRoom.get(sequence[cursors[index]!]!.organisationId) === 0) cursors[index]! += 1;
      const candidate = sequence[cursors[index]!];
      if (!candidate) continue;
      const current = best === -1 ? undefined : sequences[best]![cursors[best]!]!;
      if (!current || candidate.head.priority > current.head.priority || (candidate.head.priority === current.head.priority && candidate.head.id < current.head.id)) {
        best = index;
      }
    }
    if (best === -1) break;
    const { organisationId, head } = sequences[best]![cursors[best]!]!;
    cursors[best]! += 1;
    taskIds.push(head.id);
    const room = organisationRoom.get(organisationId);
    if (room !== undefined) organisationRoom.set(organisationId, room - 1);
    const key = queueKeyOf(plans[best]!.queue.service, plans[best]!.queue.action);
    let byOrganisation = taken.get(key);
    if (!byOrganisation) taken.set(key, (byOrganisation = new Map()));
    byOrganisation.set(organisationId, (byOrganisation.get(organisationId) ?? 0) + 1);
  }

  const shares: ClaimPlan['shares'] = [];
  for (const plan of plans) {
    // One organisation alone in a queue has no one to be fair to; its share is raised to the
    // others' when they come (startingShares).
    if (plan.shares.length < 2) continue;
    const byOrganisation = taken.get(queueKeyOf(plan.queue.service, plan.queue.action));
    for (const [index, share] of plan.shares.entries()) {
      const count = byOrganisation?.get(share.organisationId) ?? 0;
      // A share raised to its floor is written too: the floor rises as the others are served.
      if (count === 0 && share.served === plan.stored[index]) continue;
      shares.push({
        service: plan.queue.service,
        action: plan.queue.action,
        organisationId: share.organisationId,
        from: share.served,
        served: share.served + count / share.weight,
      });
    }
  }
  return { taskIds, shares };
}

export function headsKey(request: Pick<HeadsRequest, 'service' | 'action' | 'organisationId'>): string {
  return `${request.service}\u0000${request.action}\u0000${request.organisationId}`;
}

/** Runs a plan whose heads are read synchronously (SQLite, inside its transaction). */
export function runPlanSync(plan: Generator<HeadsRequest[], ClaimPlan, Map<string, Head[]>>, read: (request: HeadsRequest) => Head[]): ClaimPlan {
  let step = plan.next(new Map());
  while (!step.done) {
    const answers = new Map<string, Head[]>();
    for (const request of step.value) answers.set(headsKey(request), read(request));
    step = plan.next(answers);
  }
  return step.value;
}

/** Runs a plan whose heads are read in one round trip per round (PostgreSQL). */
export async function runPlan(
  plan: Generator<HeadsRequest[], ClaimPlan, Map<string, Head[]>>,
  read: (requests: HeadsRequest[]) => Promise<Map<string, Head[]>>,
): Promise<ClaimPlan> {
  let step = plan.next(new Map());
  while (!step.done) step = plan.next(await read(step.value));
  return step.value;
}

/** Pending tasks of one organisation in a queue, and the facts of the queue's organisations. */
export interface PositionFacts {
  shares: readonly Share[];
  /** How many pending tasks each organisation has in the queue, at most as many as could count. */
  pending: ReadonlyMap<number, number>;
}

/** `queuePosition` under fair share: its own organisation's tasks ahead, and the others' turns before it. */
export function fairPosition(facts: PositionFacts, organisationId: number, rank: number): number {
  const shares = facts.shares.length > 1 ? startingShares(facts.shares) : facts.shares;
  let position = rank;
  for (const [other, turns] of turnsAhead(shares, organisationId, rank)) {
    position += Math.min(turns, facts.pending.get(other) ?? 0);
  }
  return position;
}

/**
 * How long a process trusts what it read of the organisations waiting in a queue and their
 * shares. Finding them is a seek per organisation (the skip scan); between two reads a claim
 * plans from this process's copy and writes the shares it changes to the database, where every
 * process reads them at its next refresh. An organisation that starts waiting through another
 * process is seen within this long, through this one at once; on PostgreSQL the turns of several
 * workers agree to within what each served in this long.
 */
export const WAITING_REFRESH_MS = 500;

/** The organisations a process knows to be waiting in each queue, with their shares, weights and caps. */
export class WaitingOrganisations {
  readonly #byQueue = new Map<string, { organisations: Map<number, ShareFact>; readAt: number }>();

  /** The queues of `queues` whose list is older than WAITING_REFRESH_MS, or was never read. */
  stale(queues: readonly { service: string; action: string }[], now: number): { service: string; action: string }[] {
    return queues.filter(({ service, action }) => {
      const known = this.#byQueue.get(queueKeyOf(service, action));
      return !known || now - known.readAt >= WAITING_REFRESH_MS;
    });
  }

  /** The lists of `queues`, read afresh: `facts` are every organisation waiting in them. */
  replace(queues: readonly { service: string; action: string }[], facts: readonly ShareFact[], now: number): void {
    for (const { service, action } of queues) this.#byQueue.set(queueKeyOf(service, action), { organisations: new Map(), readAt: now });
    for (const fact of facts) this.#byQueue.get(queueKeyOf(fact.service, fact.action))?.organisations.set(fact.organisationId, { ...fact });
  }

  /** A task of the organisation became PENDING through this process: an unknown one is looked for at the next claim. */
  note(service: string, action: string, organisationId: number): void {
    const known = this.#byQueue.get(queueKeyOf(service, action));
    if (known && !known.organisations.has(organisationId)) known.readAt = -Infinity;
  }

  facts(queues: readonly { service: string; action: string }[]): ShareFact[] {
    return queues.flatMap(({ service, action }) => [...(this.#byQueue.get(queueKeyOf(service, action))?.organisations.values() ?? [])]);
  }

  /** The shares a claim has written. */
  served(shares: ClaimPlan['shares']): void {
    for (const share of shares) {
      const known = this.#byQueue.get(queueKeyOf(share.service, share.action))?.organisations.get(share.organisationId);
      if (known) known.served = share.served;
    }
  }
}

/** A pending task and how many of its own organisation's tasks are ahead of it in its queue. */
export interface RankedTask {
  id: number;
  service: string;
  action: string;
  organisationId: number;
  rank: number;
}

/** What to count of an organisation's pending tasks in a queue: no further than `upTo`. */
export interface CountToRead {
  service: string;
  action: string;
  organisationId: number;
  upTo: number;
}

/** How many pending tasks of an organisation a queue has, as far as they were counted. */
export interface PendingCount {
  service: string;
  action: string;
  organisationId: number;
  pending: number;
}

function groupedByQueue<T extends { service: string; action: string }>(rows: readonly T[]): Map<string, T[]> {
  const grouped = new Map<string, T[]>();
  for (const row of rows) {
    const key = queueKeyOf(row.service, row.action);
    const list = grouped.get(key);
    if (list) list.push(row);
    else grouped.set(key, [row]);
  }
  return grouped;
}

/** The distinct queues of `tasks`. */
export function queuesOf(tasks: readonly { service: string; action: string }[]): { service: string; action: string }[] {
  return [...groupedByQueue(tasks).values()].map(([first]) => ({ service: first!.service, action: first!.action }));
}

/**
 * What of each other organisation to count for `ranked`'s positions: its turns before the
 * furthest of them, since what it has beyond those runs after every one.
 */
export function countsToRead(ranked: readonly RankedTask[], facts: readonly ShareFact[]): CountToRead[] {
  const shares = groupedByQueue(facts);
  const upTo = new Map<string, CountToRead>();
  for (const task of ranked) {
    const queueShares = shares.get(queueKeyOf(task.service, task.action)) ?? [];
    const started = queueShares.length > 1 ? startingShares(queueShares) : queueShares;
    for (const [organisationId, turns] of turnsAhead(started, task.organisationId, task.rank)) {
      const key = `${queueKeyOf(task.service, task.action)}\u0000${organisationId}`;
      const known = upTo.get(key);
      if (known) known.upTo = Math.max(known.upTo, turns);
      else upTo.set(key, { service: task.service, action: task.action, organisationId, upTo: turns });
    }
  }
  return [...upTo.values()];
}

/** `queuePosition` of each of `ranked`, from the queues' shares and the counts countsToRead asked for. */
export function fairPositions(ranked: readonly RankedTask[], facts: readonly ShareFact[], counts: readonly PendingCount[]): Map<number, number> {
  const shares = groupedByQueue(facts);
  const pending = new Map<string, Map<number, number>>();
  for (const [key, rows] of groupedByQueue(counts)) pending.set(key, new Map(rows.map((row) => [row.organisationId, row.pending])));
  const positions = new Map<number, number>();
  for (const task of ranked) {
    const key = queueKeyOf(task.service, task.action);
    positions.set(task.id, fairPosition({ shares: shares.get(key) ?? [], pending: pending.get(key) ?? new Map() }, task.organisationId, task.rank));
  }
  return positions;
}
