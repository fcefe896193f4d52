import type {
  Account,
  Allocation,
  ApiKey,
  ExecutionToken,
  KeyPermissions,
  LogLevel,
  Organisation,
  OrganisationShareChanges,
  Page,
  PageRequest,
  RetrievalProtocol,
  Role,
  Task,
  TaskError,
  TaskFilter,
  TaskLog,
  TaskResult,
  TaskResultPayload,
  TaskRetry,
  TaskState,
} from '../domain/types.js';
import type { PubSub } from '../domain/events.js';
import type { TaskWebhook } from '../domain/webhooks.js';
import type { AggregateStore } from './aggregate-store.js';
import type { ScheduleStore } from './schedule-store.js';
import type { WebhookEndpointStore } from './webhook-endpoint-store.js';
import type { WebhookStore } from './webhook-store.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { QueueDepth } from '../domain/api.js';
import type { KeyRateLimits } from '../domain/rate-limits.js';

// The storage contract: what the engine asks of a database, and nothing of how. Each dialect
// (sqlite/, pg/) implements it with statements of its own, under the same names.

/** A task as submitted: the engine has checked every field. */
export type NewTask = Pick<
  Task,
  | 'organisationId'
  | 'keyId'
  | 'user'
  | 'sourceId'
  | 'sourceType'
  | 'session'
  | 'poll'
  | 'service'
  | 'type'
  | 'target'
  | 'params'
  | 'priority'
  | 'maxAttempts'
  | 'timeoutMs'
  | 'retrievalProtocol'
  | 'idempotencyKey'
> & {
  /** Epoch milliseconds. */
  runAt: number | null;
  dependsOn: readonly number[];
  webhook?: TaskWebhook | null;
  scheduleId?: number | null;
  /** Epoch milliseconds. */
  scheduledFor?: number | null;
};

export type EnqueueResult =
  | { ok: true; tasks: { task: Task; created: boolean }[] }
  /** A dependency that is not a task of the organisation. */
  | { ok: false; index: number; missingDependency: number };

export interface NewLog {
  taskId: number;
  level: LogLevel;
  message: string;
  source: string;
  timestamp: number;
}

export interface NewResult {
  taskId: number;
  name: string;
  contentType: string;
  /** JSON text. */
  data: string;
  timestamp: number;
}

/** How one attempt ended. `attempt` guards it: a stale attempt's outcome changes nothing. */
export type AttemptOutcome =
  | { taskId: number; attempt: number; state: 'SUCCEEDED' }
  | { taskId: number; attempt: number; state: 'FAILED' | 'CANCELLED'; error: TaskError }
  | { taskId: number; attempt: number; state: 'PENDING'; error: TaskError; retryAt: number }
  /** Handed back unfinished (shutdown): the attempt does not count. */
  | { taskId: number; attempt: number; state: 'RELEASED' };

/**
 * The actions a worker runs, as they are named in tasks (`type` is the action's slug). It claims,
 * and waits for, the tasks of these actions only: a task of any other action stays PENDING, costs
 * that worker nothing, and runs when a worker that has its action claims it.
 */
export type ServedActions = readonly ServedAction[];

export interface ServedAction {
  service: string;
  action: string;
  /** The most tasks of the action that may run at once over every process (its definition's `concurrency`). */
  concurrency?: number | null | undefined;
}

/**
 * What a worker turn claims: up to `limit` due tasks of `actions`, each leased to `lease.owner`
 * until `lease.until`, a lease the worker then renews while the task runs.
 */
export interface Claim {
  limit: number;
  actions: ServedActions;
  lease: { owner: string; until: number };
}

/** Everything the running handlers produced since the last flush, written in one transaction. */
export interface WorkBatch {
  logs: NewLog[];
  results: NewResult[];
  progress: { taskId: number; attempt: number; progress: number }[];
  outcomes: AttemptOutcome[];
}

export interface WorkReport {
  logs: TaskLog[];
  results: TaskResult[];
  progressed: { taskId: number; organisationId: number; progress: number }[];
  /** Tasks whose state changed: the outcomes that held, and the dependents they released or failed. */
  changed: Task[];
  claimed: Task[];
}

export type CancelResult =
  | { outcome: 'cancelled'; changed: Task[] }
  | { outcome: 'requested'; task: Task }
  | { outcome: 'terminal'; task: Task }
  | { outcome: 'not-found' };

/** One batch of cancelTasks. */
export interface CancelManyResult {
  /** Of the tasks asked: those cancelled at once (they were PENDING or SUSPENDED). */
  cancelled: Task[];
  /** Of the tasks asked: PROCESSING ones whose handler is now told to stop. */
  requested: Task[];
  /** Every task whose state changed: the cancelled ones and the dependents that failed with them. */
  changed: Task[];
}

/** One batch of retries. */
export interface RetryResult {
  /** Of the tasks asked: those put back in the queue. */
  retried: Task[];
  /** Every task whose state changed: the retried ones and their DEPENDENCY_FAILED dependents that came back with them. */
  changed: Task[];
}

/** Where a retention sweep goes on from: tasks are swept by completion time, then id. */
export interface RetentionCursor {
  dateCompleted: number;
  id: number;
}

/** Before every task: where a sweep starts. */
export const RETENTION_START: RetentionCursor = Object.freeze({ dateCompleted: -1, id: 0 });

export type RetentionBatch =
  /** Another process is sweeping (PostgreSQL): this one leaves the sweep to it. */
  | { busy: true }
  /** `next` null: no expired task remains past the cursor; it may equal `after` when the batch only deleted some logs or results. */
  | { busy: false; deleted: number; next: RetentionCursor | null };

export interface StatusRow {
  id: number;
  state: TaskState;
  resultRetrieved: boolean;
  retrievalProtocol: RetrievalProtocol;
  error: TaskError | null;
}

/**
 * Every statement of the queue's life cycle. The engine only sees this interface, so that a
 * PostgreSQL store (FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY) can take the SQLite one's place.
 */
export interface QueueStore {
  /**
   * How many tasks one transaction of a bulk operation (cancelMany, retry) should take: a SQLite
   * transaction holds the event loop while it runs, a PostgreSQL one only waits on the network.
   */
  readonly bulkBatchSize: number;
  enqueue(tasks: readonly NewTask[], now: number): Promise<EnqueueResult>;
  /**
   * One turn of a worker, in one transaction: writes what its handlers produced, then moves up
   * to `claim.limit` due PENDING tasks of `claim.actions` to PROCESSING, highest priority first,
   * then oldest.
   */
  work(batch: WorkBatch, claim: Claim, now: number): Promise<WorkReport>;
  cancel(organisationId: number, taskId: number, now: number): Promise<CancelResult>;
  /** cancel of many tasks in one transaction; ids of other organisations and tasks that have ended change nothing. */
  cancelMany(organisationId: number, taskIds: readonly number[], now: number): Promise<CancelManyResult>;
  /**
   * Puts FAILED and CANCELLED tasks among `taskIds` back in the queue, in one transaction, with a new
   * attempt budget, recording how each run ended (`keyId` asked). A task a dependency of which ended
   * FAILED or CANCELLED, or retried MAX_RETRIES_PER_TASK times, stays as it is.
   */
  retry(organisationId: number, keyId: number, taskIds: readonly number[], now: number): Promise<RetryResult>;
  /**
   * Extends the leases `owner` holds on `taskIds` to `until`, in one statement however many.
   * Returns the tasks it still holds, and those of them whose cancellation was requested.
   */
  renewLeases(owner: string, taskIds: readonly number[], until: number): Promise<{ held: number[]; cancelRequested: number[] }>;
  /**
   * PROCESSING tasks whose lease ran out before `now` belong to a worker that died or lost touch:
   * requeued (the lost run spent its attempt), or failed with WORKER_LOST when out of attempts.
   * Any process may call it at any time; each such task changes once.
   */
  reclaimExpiredLeases(now: number): Promise<Task[]>;
  queuePositions(taskIds: readonly number[]): Promise<Map<number, number>>;
  statuses(organisationId: number, taskIds: readonly number[]): Promise<Map<number, StatusRow>>;
  /** When the next PENDING task of `actions` falls due (in the past when one is due now); null when there is none. */
  nextDueAt(actions: ServedActions): Promise<number | null>;
  /** The PENDING tasks of each action that has any. */
  pendingByAction(): Promise<{ service: string; action: string; pending: number }[]>;
  /**
   * Reserves `count` task ids for executions recorded later: a real-time call answers with its
   * task id before the task is written.
   */
  reserveTaskIds(count: number): Promise<number[]>;
  /** Writes answered real-time calls as finished tasks, in one transaction. */
  recordExecutions(records: readonly ExecutionRecord[]): Promise<Task[]>;
}

export interface ExecutionRecord {
  taskId: number;
  organisationId: number;
  keyId: number;
  allocationId: number;
  service: string;
  type: string;
  params: Record<string, unknown>;
  state: 'SUCCEEDED' | 'FAILED';
  error: TaskError | null;
  progress: number | null;
  timeoutMs: number;
  retrievalProtocol: RetrievalProtocol;
  dateCreated: number;
  dateCompleted: number;
  logs: Omit<NewLog, 'taskId'>[];
  /** Delivered in the HTTP answer: only their metadata is kept. */
  results: { name: string; contentType: string; size: number }[];
}

export interface NewApiKey {
  organisationId: number;
  name: string;
  role: Role;
  tokenHash: string;
  permissions?: KeyPermissions | null;
  rateLimits?: KeyRateLimits | null;
}

/** What updateApiKey changes: an absent field stays as it is; rateLimits null goes back to the defaults. */
export interface ApiKeyChanges {
  name?: string;
  rateLimits?: KeyRateLimits | null;
}

export type RetrieveOutcome =
  | { outcome: 'retrieved'; payloads: TaskResultPayload[] }
  | { outcome: 'already-retrieved' }
  | { outcome: 'not-completed' }
  | { outcome: 'not-found' };

export interface RetrievalRequest {
  /** Hash of the client's retrievalKey; null for a one-shot retrieval, whose payloads go at once. */
  keyHash: string | null;
  /** Until when a retry with the same key gets the payloads again. */
  keepUntil: number;
}

/** Everything that is not the queue's life cycle: tenants, keys, accounts, reads of tasks. */
export interface RecordStore {
  findOrCreateOrganisation(name: string, now: number): Promise<Organisation>;
  getOrganisation(id: number): Promise<Organisation | null>;
  setRetrievalProtocol(id: number, protocol: RetrievalProtocol): Promise<Organisation | null>;
  /** Weight and concurrency cap; null when there is no such organisation. */
  setOrganisationShare(name: string, changes: OrganisationShareChanges): Promise<Organisation | null>;
  countApiKeys(): Promise<number>;
  createApiKey(input: NewApiKey, now: number): Promise<ApiKey>;
  /** The key and its organisation, when the key exists and is not revoked. */
  findActiveKey(tokenHash: string): Promise<{ key: ApiKey; organisation: Organisation } | null>;
  revokeApiKey(organisationId: number, keyId: number, now: number): Promise<ApiKey | null>;
  /** Null when the organisation has no such key. */
  updateApiKey(organisationId: number, keyId: number, changes: ApiKeyChanges): Promise<ApiKey | null>;
  listApiKeys(organisationId: number): Promise<ApiKey[]>;
  getApiKeys(organisationId: number, ids: readonly number[]): Promise<ApiKey[]>;

  /** Null when an active account of that service and username already exists. */
  registerAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null>;
  deregisterAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null>;
  findActiveAccount(organisationId: number, service: string, username: string): Promise<Account | null>;
  listAccounts(organisationId: number, service: string | null, page: PageRequest): Promise<Page<Account>>;
  getAccounts(organisationId: number, ids: readonly number[]): Promise<Account[]>;

  getTasks(organisationId: number, ids: readonly number[]): Promise<Task[]>;
  listTasks(organisationId: number, filter: TaskFilter, page: PageRequest): Promise<Page<Task>>;
  /** A page of each task's logs, oldest first, in one statement; every task gets the same page request. */
  /** Log lines by id: an event from another process names its line, and the listener reads it. */
  getLogs(ids: readonly number[]): Promise<TaskLog[]>;
  taskLogs(taskIds: readonly number[], minLevel: LogLevel | null, page: PageRequest): Promise<Map<number, Page<TaskLog>>>;
  taskResults(taskIds: readonly number[]): Promise<TaskResult[]>;
  getResults(organisationId: number, ids: readonly number[]): Promise<TaskResult[]>;
  dependencies(taskIds: readonly number[]): Promise<{ taskId: number; dependsOnId: number }[]>;
  /** The ids of the tasks that depend on the task, oldest first, at most `limit`. */
  dependents(taskId: number, limit: number): Promise<number[]>;
  /** The runs the tasks had before each retry, oldest first. */
  taskRetries(taskIds: readonly number[]): Promise<TaskRetry[]>;
  /**
   * One batch of retention, in one transaction: deletes terminal tasks that completed before
   * `completedBefore`, after `after`, with their logs, results, retries and dependency rows; as many
   * as the dialect deletes in one short transaction (RETENTION_BATCH_SIZE of each).
   * A task that a task kept depends on stays until that one goes. A batch whose tasks have many logs
   * or results deletes only a chunk of those, and the next call with the same cursor goes on.
   */
  deleteExpiredTasks(completedBefore: number, after: RetentionCursor): Promise<RetentionBatch>;
  /**
   * The first retrieval marks the task retrieved and returns its payloads; a retry with the same key
   * before `keepUntil` returns them again; anything else is already-retrieved.
   */
  retrieveResults(organisationId: number, taskId: number, request: RetrievalRequest, now: number): Promise<RetrieveOutcome>;
  /** Deletes the payloads whose retry window ended before `now`, of at most `limit` tasks; returns how many tasks. */
  deleteExpiredPayloads(now: number, limit: number): Promise<number>;
  /** CHANNEL: reserves a payload for one delivery; null when it is delivered, retrieved or reserved by another. */
  claimResultDelivery(resultId: number, claim: string): Promise<TaskResultPayload | null>;
  /** The claimed payload was written: it is delivered and dropped. False when a retrieval took it meanwhile. */
  confirmResultDelivery(resultId: number, claim: string, now: number): Promise<boolean>;
  /** The claimed payload was not written: it stays for retrieveResults. */
  releaseResultDelivery(resultId: number, claim: string): Promise<void>;

  createAllocation(input: NewAllocation, now: number): Promise<Allocation>;
  /** Allocations not deleted: of one organisation, or of all of them (null) for a server's start. */
  listAllocations(organisationId: number | null): Promise<Allocation[]>;
  /** Deletes it and revokes its tokens; null when the organisation has no such live allocation. */
  deleteAllocation(organisationId: number, allocationId: number, now: number): Promise<Allocation | null>;
  createExecutionToken(input: { allocationId: number; tokenHash: string; expiresAt: number }, now: number): Promise<ExecutionToken>;
  revokeExecutionToken(organisationId: number, tokenId: number): Promise<ExecutionToken | null>;
  /** Tokens that still open a live allocation, with their hashes, for the execution route's cache. */
  liveExecutionTokens(now: number): Promise<(ExecutionToken & { tokenHash: string })[]>;
  /** The token of this hash if it still opens a live allocation: one another process minted, or revoked, is read here. */
  findLiveExecutionToken(tokenHash: string, now: number): Promise<ExecutionToken | null>;
}

export type NewAllocation = Omit<Allocation, 'id' | 'executions' | 'dateCreated'>;


/** Whole-database figures for the operator: metrics and readiness. Cheap enough to run every scrape. */
export interface StatsStore {
  /** Every state, with 0 for those no task is in. */
  tasksByState(): Promise<Record<TaskState, number>>;
  /** Each queue with PENDING tasks. */
  queueDepths(): Promise<QueueDepth[]>;
  /** How many migrations this build ships that the database has not applied; rejects when it cannot be reached. */
  pendingMigrations(): Promise<number>;
}

export interface Storage {
  /** `sqlite` or `postgres`: for logs and health, never for branching outside storage. */
  readonly dialect: 'sqlite' | 'postgres';
  queue: QueueStore;
  records: RecordStore;
  stats: StatsStore;
  aggregates: AggregateStore;
  schedules: ScheduleStore;
  webhookEndpoints: WebhookEndpointStore;
  webhooks: WebhookStore;
  workers: WorkerRegistry;
  /** In-process for SQLite; over LISTEN/NOTIFY for PostgreSQL, so that every process hears every change. */
  events: PubSub;
  /** Resolves when the database takes a write; rejects with StorageUnavailableError saying why not. */
  checkWritable(): Promise<void>;
  close(): Promise<void>;
}
