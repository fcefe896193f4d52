import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, TaskFailure, type Catalog, type HandlerAccount, type HandlerContext } from '../catalog/index.js';
import type { AttemptOutcome, QueueStore, RecordStore, ServedActions, WorkBatch, WorkReport } from '../storage/index.js';
import { queueKey, type PubSub, type TaskChange } from '../domain/events.js';
import type { EngineLogger } from './logger.js';
import { acceptLog, acceptResult, handlerFailure, type OutputTally } from './output.js';
import { publishChanges } from './publish.js';
import { RunAbort } from './run-abort.js';
import type { Task, TaskError } from '../domain/types.js';

export interface WorkerOptions {
  queue: QueueStore;
  records: RecordStore;
  catalog: Catalog;
  events: PubSub;
  logger: EngineLogger;
  concurrency: number;
  retryBaseMs: number;
  /** How long a claimed task stays this worker's without a renewal; renewed every third of it. */
  leaseMs: number;
  /** The actions this worker claims; every action of the catalog when absent. */
  actions?: ServedActions;
}

/** Why a run's AbortSignal fired; the reason decides how the attempt ends. */
export class RunAborted extends Error {
  override name = 'RunAborted';
  constructor(readonly reason: 'CANCELLED' | 'TIMEOUT' | 'SHUTDOWN' | 'LEASE_LOST') {
    super(`run aborted: ${reason}`);
  }
}

/** Why the run was aborted, when `error` is our RunAborted; instanceof itself throws on a revoked proxy. */
function abortReason(error: unknown): RunAborted['reason'] | null {
  try {
    return error instanceof RunAborted ? error.reason : null;
  } catch {
    return null;
  }
}

type Failure = TaskError & { retryable: boolean; cancelled?: boolean; shutdown?: boolean; leaseLost?: boolean };

/** Its tally counts the task's results so far, those of earlier attempts included. */
interface Run extends OutputTally {
  task: Task;
  controller: RunAbort;
  settled: boolean;
  timer: NodeJS.Timeout;
  /** Until when this worker surely holds the task: past it, another may have reclaimed it. */
  leaseUntil: number;
  /** performance.now() when the claim had committed: a renewal issued later must find the task. */
  claimedAt: number;
  stopListening: () => void;
}

interface EarlierResults {
  count: number;
  bytes: number;
}

/** How long one turn may keep claiming and writing before it yields to the event loop. */
const TURN_BUDGET_MS = 4;
/** Enough for a handler that returns at once to settle: its run, the race, the settle callback. */
const HANDLER_SETTLE_MICROTASKS = 6;
const FAILED_TURN_RETRY_MS = 1000;
const MAX_RETRY_DELAY_MS = 15 * 60_000;
/**
 * The longest an idle worker waits before it looks for due tasks itself: a `due` event may be lost
 * (another process's bus reconnecting), and then a submission still starts within this.
 */
const MAX_IDLE_WAIT_MS = 1000;
/**
 * Result text one write may carry: the storage sends a batch as one JSON string, whose escaping
 * can double it, and a V8 string stops near 512 Mi characters. The rest waits for the next turn.
 */
const MAX_FLUSH_RESULT_CHARS = 64 * 1024 * 1024;
/** Organisation and key names a worker remembers; past this, it forgets them and looks them up again. */
const MAX_REMEMBERED_NAMES = 10_000;
const ENGINE_LOG_SOURCE = 'taskport';
const HANDLER_LOG_SOURCE = 'handler';

async function afterMicrotasks(count: number): Promise<void> {
  for (let tick = 0; tick < count; tick++) await Promise.resolve();
}

/** Every action of the catalog: a worker claims the tasks of the actions it can run, and only those. */
export function servedActions(catalog: Catalog): ServedActions {
  return catalog.services().flatMap((service) => service.actions.map((action) => ({ service: service.slug, action: action.slug })));
}

function emptyBatch(): WorkBatch {
  return { logs: [], results: [], progress: [], outcomes: [] };
}

/**
 * Claims due tasks into a fixed number of slots and runs their handlers. It shares the process
 * with the API, so it works in small steps, each one transaction that writes what the handlers
 * produced and claims into the free slots, for at most TURN_BUDGET_MS per turn of the event
 * loop; requests are served between turns.
 */
export class Worker {
  readonly #options: WorkerOptions;
  readonly #actions: ServedActions;
  readonly #runs = new Map<number, Run>();
  /** Organisation of each task with work not yet flushed, to address the events of that work. */
  readonly #organisationOf = new Map<number, number>();
  #batch: WorkBatch = emptyBatch();
  readonly #progress = new Map<number, { attempt: number; progress: number }>();
  readonly #prepared = new Map<string, Promise<unknown>>();
  /** Names never change once created: a handler's `task` costs a query per new name, not per task. */
  readonly #organisationNames = new Map<number, string>();
  readonly #keyNames = new Map<number, string>();
  #turnScheduled = false;
  #turning = false;
  #turnAgain = false;
  #stopping = false;
  /** Past the final write of stop(): no turn may touch the storage any more. */
  #stopped = false;
  #started = false;
  #dueTimer: NodeJS.Timeout | null = null;
  #renewTimer: NodeJS.Timeout | null = null;
  #renewing = false;
  #idleWaiters: (() => void)[] = [];
  readonly #stopListening: (() => void)[] = [];
  /** Names this worker's leases: unique among every process on the database, now and before. */
  readonly owner = `${hostname()}/${process.pid}/${randomBytes(6).toString('base64url')}`;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#actions = (options.actions ?? servedActions(options.catalog)).map((served) => ({
      ...served,
      concurrency: options.catalog.action(served.service, served.action)?.concurrency ?? null,
    }));
  }

  get running(): number {
    return this.#runs.size;
  }

  get actions(): ServedActions {
    return this.#actions;
  }

  start(): void {
    this.#started = true;
    const { events } = this.#options;
    for (const { service, action } of this.#actions) {
      this.#stopListening.push(events.listen('due', queueKey(service, action), () => this.wake()));
    }
    this.#renewTimer = setInterval(() => void this.#renewLeases(), Math.max(100, Math.floor(this.#options.leaseMs / 3)));
    this.#renewTimer.unref();
    this.wake();
  }

  /**
   * One statement renews the leases of all the tasks this worker runs. A task the renewal no longer finds was taken
   * from it (its lease ran out while this process stalled), and a run past its lease may have been:
   * either run stops, so that no task runs twice at once. A cancellation whose event this process
   * missed is found here too.
   */
  async #renewLeases(): Promise<void> {
    if (this.#renewing || this.#runs.size === 0 || this.#stopped) return;
    this.#renewing = true;
    const issuedAt = performance.now();
    const until = Date.now() + this.#options.leaseMs;
    try {
      const running = [...this.#runs.keys()];
      const { held, cancelRequested } = await this.#options.queue.renewLeases(this.owner, running, until);
      const stillHeld = new Set(held);
      for (const run of this.#runs.values()) {
        if (stillHeld.has(run.task.id)) run.leaseUntil = until;
        else if (run.claimedAt < issuedAt) run.controller.abort(new RunAborted('LEASE_LOST'));
      }
      for (const taskId of cancelRequested) this.#runs.get(taskId)?.controller.abort(new RunAborted('CANCELLED'));
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'renewing the leases of running tasks failed; retrying');
    } finally {
      this.#renewing = false;
    }
    const now = Date.now();
    for (const run of this.#runs.values()) {
      if (now > run.leaseUntil) run.controller.abort(new RunAborted('LEASE_LOST'));
    }
  }

  /**
   * Something may have become due, or a handler produced something: write and claim on the next
   * turn. While stopping, turns still write (without claiming), so that subscribers see what the
   * running handlers do during the grace period.
   */
  wake(): void {
    if (!this.#started || this.#stopped || this.#turnScheduled) return;
    this.#turnScheduled = true;
    setImmediate(() => void this.#turn());
  }

  /** Stops claiming, gives running tasks `graceMs` to finish, then hands the rest back to the queue. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    for (const stopListening of this.#stopListening.splice(0)) stopListening();
    // A turn under way may have claimed tasks whose runs it has not begun yet (it reads their
    // accounts first): they must be running, and counted, before the grace period is.
    while (this.#turning) await sleep(1);
    const deadline = Date.now() + graceMs;
    while (this.#runs.size > 0 && Date.now() < deadline) {
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        sleep(Math.max(0, deadline - Date.now())),
      ]);
    }
    for (const run of this.#runs.values()) run.controller.abort(new RunAborted('SHUTDOWN'));
    // An aborted run settles on a later microtask; its RELEASED outcome must be in the last write.
    while (this.#runs.size > 0) await new Promise((resolve) => setImmediate(resolve));
    while (this.#turning) await sleep(1);
    this.#stopped = true;
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    while (this.#hasUnwritten()) await this.#flush(0);
  }

  #hasUnwritten(): boolean {
    const batch = this.#batch;
    return (
      this.#progress.size > 0 ||
      batch.logs.length + batch.results.length + batch.progress.length + batch.outcomes.length > 0
    );
  }

  async #turn(): Promise<void> {
    this.#turnScheduled = false;
    if (this.#stopped) return;
    if (this.#turning) {
      this.#turnAgain = true;
      return;
    }
    this.#turning = true;
    try {
      const deadline = performance.now() + TURN_BUDGET_MS;
      for (;;) {
        this.#turnAgain = false;
        const free = this.#stopping ? 0 : this.#options.concurrency - this.#runs.size;
        const leaseUntil = Date.now() + this.#options.leaseMs;
        const report = await this.#flush(free, leaseUntil);
        if (free > 0) await this.#start(report?.claimed ?? [], free, leaseUntil);
        if (!this.#turnAgain || this.#stopping || performance.now() >= deadline) break;
        // Most handlers finish within a few microtasks; when they have, the next claim can go in
        // this same turn. Under HTTP load a turn of the event loop is long, and one claim per
        // turn would leave the worker far behind.
        await afterMicrotasks(HANDLER_SETTLE_MICROTASKS);
        if (this.#runs.size >= this.#options.concurrency) break;
      }
    } catch (error) {
      // A database that refuses writes (disk full, locked by another program) would make an
      // immediate retry spin: try again a little later.
      this.#options.logger.error({ err: error }, 'worker turn failed; retrying shortly');
      this.#turnAgain = false;
      setTimeout(() => this.wake(), FAILED_TURN_RETRY_MS).unref();
    } finally {
      this.#turning = false;
      if (this.#turnAgain) {
        this.#turnAgain = false;
        this.wake();
      }
    }
  }

  async #start(claimed: Task[], free: number, leaseUntil: number): Promise<void> {
    if (claimed.length > 0) {
      const accounts = await this.#accountsOf(claimed);
      const earlier = await this.#earlierResults(claimed);
      await this.#learnNames(claimed);
      for (const task of claimed) {
        this.#run(task, task.sourceId === null ? null : accounts.get(task.sourceId) ?? null, earlier.get(task.id), leaseUntil);
      }
    }
    if (claimed.length === free) {
      this.#turnAgain = true;
    } else {
      await this.#armDueTimer();
    }
  }

  async #accountsOf(tasks: Task[]): Promise<Map<number, HandlerAccount>> {
    const byOrganisation = new Map<number, number[]>();
    for (const task of tasks) {
      if (task.sourceId === null) continue;
      const ids = byOrganisation.get(task.organisationId) ?? [];
      ids.push(task.sourceId);
      byOrganisation.set(task.organisationId, ids);
    }
    const accounts = new Map<number, HandlerAccount>();
    for (const [organisationId, ids] of byOrganisation) {
      for (const account of await this.#options.records.getAccounts(organisationId, ids)) {
        accounts.set(account.id, { id: account.id, service: account.service, username: account.username });
      }
    }
    return accounts;
  }

  async #learnNames(tasks: Task[]): Promise<void> {
    if (this.#organisationNames.size + this.#keyNames.size >= MAX_REMEMBERED_NAMES) {
      this.#organisationNames.clear();
      this.#keyNames.clear();
    }
    const organisations = new Set<number>();
    const keysByOrganisation = new Map<number, Set<number>>();
    for (const task of tasks) {
      if (!this.#organisationNames.has(task.organisationId)) organisations.add(task.organisationId);
      if (this.#keyNames.has(task.keyId)) continue;
      const keys = keysByOrganisation.get(task.organisationId) ?? new Set();
      keys.add(task.keyId);
      keysByOrganisation.set(task.organisationId, keys);
    }
    const { records } = this.#options;
    for (const id of organisations) {
      const organisation = await records.getOrganisation(id);
      if (organisation) this.#organisationNames.set(id, organisation.name);
    }
    for (const [organisationId, keyIds] of keysByOrganisation) {
      for (const key of await records.getApiKeys(organisationId, [...keyIds])) this.#keyNames.set(key.id, key.name);
    }
  }

  /**
   * A retried task keeps what its earlier attempts published: that counts against its limits. Most
   * claims are first attempts, and they cost no read; so a first attempt handed back at shutdown
   * and run again starts its count afresh, once per shutdown.
   */
  async #earlierResults(tasks: Task[]): Promise<Map<number, EarlierResults>> {
    const earlier = new Map<number, EarlierResults>();
    const retried = tasks.filter((task) => task.attempts > 1).map((task) => task.id);
    if (retried.length === 0) return earlier;
    for (const result of await this.#options.records.taskResults(retried)) {
      const sum = earlier.get(result.taskId) ?? { count: 0, bytes: 0 };
      sum.count += 1;
      sum.bytes += result.size;
      earlier.set(result.taskId, sum);
    }
    return earlier;
  }

  async #armDueTimer(): Promise<void> {
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    this.#dueTimer = null;
    if (this.#actions.length === 0) return;
    const dueAt = await this.#options.queue.nextDueAt(this.#actions);
    if (this.#stopping) return;
    // A task already due that the claim just left is held by a concurrency cap (or another worker's
    // lock): it is not worth a claim before something ends or the idle wait is over.
    const now = Date.now();
    const wait = dueAt === null || dueAt <= now ? MAX_IDLE_WAIT_MS : Math.min(dueAt - now, MAX_IDLE_WAIT_MS);
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = null;
      this.wake();
    }, wait);
    this.#dueTimer.unref();
  }

  #run(task: Task, account: HandlerAccount | null, earlier: EarlierResults | undefined, leaseUntil: number): void {
    const controller = new RunAbort();
    const timer = setTimeout(() => controller.abort(new RunAborted('TIMEOUT')), task.timeoutMs);
    const run: Run = {
      task,
      controller,
      settled: false,
      timer,
      leaseUntil,
      claimedAt: performance.now(),
      stopListening: this.#options.events.listen('cancelRequested', task.id, () =>
        controller.abort(new RunAborted('CANCELLED')),
      ),
      resultCount: earlier?.count ?? 0,
      resultBytes: earlier?.bytes ?? 0,
      loggedBytes: 0,
      logsDropped: false,
    };
    this.#runs.set(task.id, run);
    try {
      this.#execute(run, account);
    } catch (error) {
      this.#bookkeepingFailed(run, error);
    }
  }

  #execute(run: Run, account: HandlerAccount | null): void {
    const { task, controller } = run;
    const action = this.#options.catalog.action(task.service, task.type);
    if (!action) {
      this.#settle(run, {
        code: 'UNKNOWN_ACTION',
        message: `No handler for ${task.service}.${task.type} in this server's catalog.`,
        retryable: false,
      });
      return;
    }
    const context = this.#handlerContext(run, account);
    const aborted = controller.race();
    const running = action.prepare
      ? this.#preparedFor(task, action.prepare).then((prepared) => action.handler({ ...context, prepared }))
      : Promise.resolve().then(() => action.handler(context));
    Promise.race([running, aborted])
      .then(
        (value) => {
          if (run.settled) return;
          if (value !== undefined) this.#acceptResult(run, 'result', value, 'application/json');
          this.#settle(run, null);
        },
        (error: unknown) => this.#settle(run, this.#describeFailure(task, error)),
      )
      .catch((error: unknown) => this.#bookkeepingFailed(run, error));
  }

  /**
   * The last resort: a fault in the worker's own handling of an attempt fails that attempt. As an
   * unhandled rejection it would end the process, and recovery would start the task, and the
   * crash, again at the next start.
   */
  #bookkeepingFailed(run: Run, error: unknown): void {
    this.#options.logger.error({ err: error, taskId: run.task.id }, 'handling an attempt failed; the attempt fails');
    try {
      this.#settle(run, {
        code: 'INTERNAL_ERROR',
        message: 'The server failed while handling this attempt; its log says why.',
        retryable: false,
      });
    } catch (again) {
      // Not even the outcome could be queued: free the slot at least. The task stays PROCESSING
      // until its lease, no longer renewed, runs out and it is reclaimed.
      this.#options.logger.error({ err: again, taskId: run.task.id }, 'failing the attempt failed too');
      run.settled = true;
      clearTimeout(run.timer);
      this.#runs.delete(run.task.id);
      if (this.#runs.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
    run.controller.abort(new TaskFailure('INTERNAL_ERROR', 'the attempt failed', false));
  }

  /** Once per process and action; a failed prepare is tried again by the next task. */
  #preparedFor(task: Task, prepare: () => unknown): Promise<unknown> {
    const key = `${task.service}/${task.type}`;
    let prepared = this.#prepared.get(key);
    if (!prepared) {
      prepared = Promise.resolve()
        .then(prepare)
        .catch((error: unknown) => {
          this.#prepared.delete(key);
          throw new TaskFailure('PREPARE_FAILED', `preparing ${key} failed: ${describe(error)}`);
        });
      this.#prepared.set(key, prepared);
    }
    return prepared;
  }

  /** Nothing here throws at the handler, which may call it from a timer where a throw would end the process. */
  #handlerContext(run: Run, account: HandlerAccount | null): HandlerContext {
    const { task } = run;
    const attempt = task.attempts;
    return {
      task: {
        id: task.id,
        organisation: { id: task.organisationId, name: this.#organisationNames.get(task.organisationId) ?? '' },
        keyName: this.#keyNames.get(task.keyId) ?? '',
        poll: task.poll,
        session: task.session,
        user: task.user,
        target: task.target,
        source: account,
        priority: task.priority,
        attempt,
        maxAttempts: task.maxAttempts,
      },
      taskId: task.id,
      attempt,
      params: task.params,
      account,
      get signal() {
        return run.controller.signal;
      },
      log: (level, message) => this.#acceptLog(run, level, message),
      progress: (fraction) => {
        if (run.settled || !Number.isFinite(fraction)) return;
        this.#progress.set(task.id, { attempt, progress: Math.min(1, Math.max(0, fraction)) });
        this.wake();
      },
      publish: (name, data, contentType = 'application/json') => {
        if (!run.settled) this.#acceptResult(run, name, data, contentType);
      },
      prepared: undefined,
    };
  }

  #acceptLog(run: Run, level: unknown, message: unknown): void {
    if (run.settled) return;
    const accepted = acceptLog(run, level, message);
    if (!accepted) return;
    const source = accepted.kind === 'line' ? HANDLER_LOG_SOURCE : ENGINE_LOG_SOURCE;
    this.#batch.logs.push({ taskId: run.task.id, level: accepted.level, message: accepted.message, source, timestamp: Date.now() });
    this.wake();
  }

  /** Queues a result within the limits, or fails the attempt with the limit it broke. */
  #acceptResult(run: Run, name: unknown, data: unknown, contentType: unknown): void {
    const accepted = acceptResult(run, name, data, contentType);
    if (!accepted.ok) return this.#fail(run, { ...accepted.failure, retryable: false });
    const result = { taskId: run.task.id, name: accepted.name, contentType: accepted.contentType, data: accepted.json };
    this.#batch.results.push({ ...result, timestamp: Date.now() });
    this.wake();
  }

  /** Ends the attempt with `failure` and fires the handler's signal, so that it stops working for nothing. */
  #fail(run: Run, failure: Failure): void {
    this.#settle(run, failure);
    run.controller.abort(new TaskFailure(failure.code, failure.message, failure.retryable));
  }

  #describeFailure(task: Task, error: unknown): Failure {
    const aborted = abortReason(error);
    if (!aborted) return handlerFailure(error);
    switch (aborted) {
      case 'CANCELLED':
        return { code: 'CANCELLED', message: 'Cancelled on request.', retryable: false, cancelled: true };
      case 'TIMEOUT':
        return { code: 'TIMEOUT', message: `The attempt ran past its time limit of ${task.timeoutMs / 1000} s.`, retryable: true };
      case 'SHUTDOWN':
        return { code: 'SHUTDOWN', message: 'The server stopped during the attempt.', retryable: true, shutdown: true };
      case 'LEASE_LOST':
        return { code: 'WORKER_LOST', message: 'The worker lost its lease on the task.', retryable: true, leaseLost: true };
    }
  }

  #settle(run: Run, failure: Failure | null): void {
    if (run.settled) return;
    const { task } = run;
    const lease = { taskId: task.id, attempt: task.attempts };
    let outcome: AttemptOutcome;
    if (failure === null) {
      outcome = { ...lease, state: 'SUCCEEDED' };
    } else if (failure.shutdown) {
      outcome = { ...lease, state: 'RELEASED' };
    } else if (failure.cancelled) {
      outcome = { ...lease, state: 'CANCELLED', error: failure };
    } else if (failure.retryable && task.attempts < task.maxAttempts) {
      const retryAt = Date.now() + this.#retryDelay(task.attempts);
      outcome = { ...lease, state: 'PENDING', error: failure, retryAt };
      const seconds = ((retryAt - Date.now()) / 1000).toFixed(1);
      this.#batch.logs.push({
        taskId: task.id,
        level: 'WARN',
        message: `attempt ${task.attempts} of ${task.maxAttempts} failed (${failure.code}): ${failure.message}; retrying in ${seconds} s`,
        source: ENGINE_LOG_SOURCE,
        timestamp: Date.now(),
      });
    } else {
      outcome = { ...lease, state: 'FAILED', error: { code: failure.code, message: failure.message } };
    }
    if (failure?.code === 'TIMEOUT' && !failure.shutdown) {
      this.#batch.logs.push({ taskId: task.id, level: 'ERROR', message: failure.message, source: ENGINE_LOG_SOURCE, timestamp: Date.now() });
    }
    // From here on the handler's log, progress and publish calls are ignored.
    run.settled = true;
    clearTimeout(run.timer);
    run.stopListening();
    this.#runs.delete(task.id);
    // A lost lease is the reclaim's to settle: the run spent its attempt, and whatever it reports
    // now could race the worker that holds the task since.
    if (!failure?.leaseLost) this.#batch.outcomes.push(outcome);
    if (this.#runs.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.wake();
  }

  /** Exponential, with jitter so that tasks that failed together do not retry together. */
  #retryDelay(attempt: number): number {
    const ceiling = Math.min(this.#options.retryBaseMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** Writes what the handlers produced and claims up to `claimLimit` tasks, in one transaction. */
  async #flush(claimLimit: number, leaseUntil = Date.now() + this.#options.leaseMs): Promise<WorkReport | null> {
    if (this.#progress.size > 0) {
      for (const [taskId, update] of this.#progress) this.#batch.progress.push({ taskId, ...update });
      this.#progress.clear();
    }
    const written = this.#batch.logs.length + this.#batch.results.length + this.#batch.progress.length + this.#batch.outcomes.length;
    if (written === 0 && claimLimit === 0) return null;
    const batch = this.#takeBatch();
    let report: WorkReport;
    try {
      const claim = { limit: claimLimit, actions: this.#actions, lease: { owner: this.owner, until: leaseUntil } };
      report = await this.#options.queue.work(batch, claim, Date.now());
    } catch (error) {
      // Nothing of it was written: keep it, ahead of what came since, for the next try.
      const since = this.#batch;
      this.#batch = {
        logs: [...batch.logs, ...since.logs],
        results: [...batch.results, ...since.results],
        progress: [...batch.progress, ...since.progress],
        outcomes: [...batch.outcomes, ...since.outcomes],
      };
      throw error;
    }
    for (const task of report.claimed) this.#organisationOf.set(task.id, task.organisationId);
    this.#announce(report);
    for (const outcome of batch.outcomes) {
      if (!this.#runs.has(outcome.taskId)) this.#organisationOf.delete(outcome.taskId);
    }
    return report;
  }

  /**
   * The batch to write now: all of it, unless its results pass MAX_FLUSH_RESULT_CHARS. Then the
   * results past that wait for the next write, and so do the outcomes of their tasks, so that no
   * task is seen finished before its results are stored.
   */
  #takeBatch(): WorkBatch {
    const batch = this.#batch;
    let chars = 0;
    let cut = batch.results.length;
    for (const [index, result] of batch.results.entries()) {
      chars += result.data.length;
      if (chars > MAX_FLUSH_RESULT_CHARS && index > 0) {
        cut = index;
        break;
      }
    }
    if (cut === batch.results.length) {
      this.#batch = emptyBatch();
      return batch;
    }
    const waiting = batch.results.slice(cut);
    const waitingTasks = new Set(waiting.map((result) => result.taskId));
    this.#batch = {
      logs: [],
      results: waiting,
      progress: [],
      outcomes: batch.outcomes.filter((outcome) => waitingTasks.has(outcome.taskId)),
    };
    this.#turnAgain = true;
    return {
      logs: batch.logs,
      results: batch.results.slice(0, cut),
      progress: batch.progress,
      outcomes: batch.outcomes.filter((outcome) => !waitingTasks.has(outcome.taskId)),
    };
  }

  /**
   * Publishes what one write changed, stamped with the time it is announced: a subscriber's
   * events then arrive in the order of `at`, whichever part of the server published them. A log
   * line keeps the time it was written in its own timestamp.
   */
  #announce(report: WorkReport): void {
    const { events } = this.#options;
    const organisationOf = this.#organisationOf;
    const at = new Date();
    const publish = (change: TaskChange) => {
      events.publish('task', change.taskId, change);
      events.publish('organisation', change.organisationId, change);
    };
    for (const log of report.logs) {
      const organisationId = organisationOf.get(log.taskId);
      if (organisationId !== undefined) publish({ kind: 'LOG', taskId: log.taskId, organisationId, at, log });
    }
    for (const result of report.results) {
      const organisationId = organisationOf.get(result.taskId);
      if (organisationId !== undefined) publish({ kind: 'RESULT', taskId: result.taskId, organisationId, at, resultId: result.id });
    }
    for (const { taskId, organisationId, progress } of report.progressed) {
      publish({ kind: 'PROGRESS', taskId, organisationId, at, progress });
    }
    publishChanges(events, [...report.changed, ...report.claimed], 'STATE_CHANGED', at);
  }
}
