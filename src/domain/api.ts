import type { WorkerProcess } from './workers.js';
import type { Catalog } from '../catalog/index.js';
import type { QueueStats, TaskCounts, ThroughputBucket } from './aggregates.js';
import type { PubSub } from './events.js';
import type { ScheduleApi } from './schedules.js';
import type { WebhookApi } from './webhooks.js';
import type { EffectiveRateLimits } from './rate-limits.js';
import type { AllocationStatus, ExecutionOutcome } from './realtime.js';
import type {
  Account,
  Actor,
  Allocation,
  ApiKey,
  ExecutionToken,
  LogLevel,
  Organisation,
  Page,
  PageRequest,
  RetrievalProtocol,
  Role,
  SubmitTaskInput,
  Task,
  TaskFilter,
  TaskLog,
  TaskResult,
  TaskResultPayload,
  TaskRetry,
  TaskState,
  TaskStatus,
  TaskWaitingFor,
} from './types.js';

export const MAX_BATCH_SUBMIT = 1000;
export const MAX_STATUS_IDS = 10_000;
export const MAX_DEPENDENCIES = 100;
/** The most dependents one read of Task.dependents lists. */
export const MAX_DEPENDENTS_LISTED = 100;
/** The most ids TaskFilter.ids takes. */
export const MAX_FILTER_IDS = 1000;
/** The most tasks one cancelTasks or retryTasks changes; also its default limit. */
export const MAX_BULK_TASKS = 10_000;
/** A task's run history stays bounded: past this many retries, retryTask answers NOT_RETRYABLE. */
export const MAX_RETRIES_PER_TASK = 100;
/**
 * How long retrieved payloads stay for a retry that repeats the retrievalKey: long enough for a
 * client to notice a dropped connection and ask again, short enough not to keep results for ever.
 */
export const RESULT_RETRY_WINDOW_MS = 5 * 60_000;
export const MAX_RETRIEVAL_KEY_LENGTH = 128;

/** A CHANNEL payload reserved for one subscriber while its transport writes it. */
export interface ResultDelivery {
  payload: TaskResultPayload;
  /** Written to the connection: it counts as delivered. False when retrieveResults took it meanwhile. */
  confirm(): Promise<boolean>;
  /** Not written: the payload stays for retrieveResults. */
  release(): Promise<void>;
}

/** What a bulk operation did. */
export interface BulkOutcome {
  /** Tasks of the filter that it cancelled (or asked to stop) or retried. */
  count: number;
  /** Other tasks that changed with them: dependents failed with DEPENDENCY_FAILED, or brought back. */
  dependents: number;
}

export type Health = { status: 'ok' } | { status: 'unavailable'; reason: string };

/** Whether a load balancer should send this process traffic: `reason` says what is missing. */
export type Readiness = { status: 'ready' } | { status: 'not-ready'; reason: string };

/** The PENDING tasks of one queue (an action of a service). */
export interface QueueDepth {
  service: string;
  action: string;
  pending: number;
  /** Epoch milliseconds at which its earliest PENDING task is or was due. */
  earliestDueAt: number;
}

/** What the database holds, for the operator's metrics: of every organisation, read in one go. */
export interface TaskStats {
  byState: Record<TaskState, number>;
  queues: QueueDepth[];
}

export interface Viewer {
  key: ApiKey;
  organisation: Organisation;
}

/**
 * What the API layers (GraphQL, HTTP) may ask of the engine. Expected failures are thrown as the
 * classes of `errors.ts`; anything else is a bug.
 */
export interface TaskEngine {
  readonly catalog: Catalog;
  readonly schedules: ScheduleApi;
  readonly webhooks: WebhookApi;
  readonly events: PubSub;

  /** The key's viewer, or null for an unknown or revoked token. */
  authenticate(token: string): Promise<Viewer | null>;
  /** Whether this process can serve: its database takes writes. */
  health(): Promise<Health>;
  /** Whether it should get traffic: database reachable, migrations applied, its worker (if it has one) running. */
  readiness(): Promise<Readiness>;
  /** Tasks by state and queue depths of the whole database, for metrics; cached briefly. */
  taskStats(): Promise<TaskStats>;
  /**
   * `permissions` (KeyPermissions) narrows what the new key may run, within the actor's own (its
   * own when omitted); ValidationError when it names what the catalog lacks or goes beyond the actor's.
   */
  createApiKey(
    actor: Actor,
    input: { name: string; role: Role; permissions?: unknown; rateLimits?: unknown },
  ): Promise<{ apiKey: ApiKey; token: string }>;
  /**
   * Renames the key and sets its own rate limits (null: back to the server's defaults); an absent
   * field stays. ValidationError for bad limits; NotFoundError for another organisation's key.
   */
  updateApiKey(actor: Actor, keyId: number, input: { name?: string | null; rateLimits?: unknown }): Promise<ApiKey>;
  /** The limits that hold for the key: its own, else the server's defaults. */
  rateLimitsOf(key: ApiKey): EffectiveRateLimits;
  revokeApiKey(actor: Actor, keyId: number): Promise<ApiKey>;
  listApiKeys(actor: Actor): Promise<ApiKey[]>;
  getApiKeys(actor: Actor, ids: readonly number[]): Promise<(ApiKey | null)[]>;
  getOrganisation(actor: Actor): Promise<Organisation>;
  setRetrievalProtocol(actor: Actor, protocol: RetrievalProtocol): Promise<Organisation>;

  registerAccount(actor: Actor, input: { service: string; username: string }): Promise<Account>;
  deregisterAccount(actor: Actor, input: { service: string; username: string }): Promise<Account>;
  listAccounts(actor: Actor, service: string | null, page: PageRequest): Promise<Page<Account>>;
  /** Deregistered accounts too: tasks keep naming the account they ran against. */
  getAccounts(actor: Actor, ids: readonly number[]): Promise<(Account | null)[]>;

  submitTask(actor: Actor, input: SubmitTaskInput): Promise<Task>;
  /** All or nothing, in one transaction; every task gets the same poll. */
  submitTasks(actor: Actor, inputs: readonly SubmitTaskInput[]): Promise<{ tasks: Task[]; poll: string }>;
  /** PENDING/SUSPENDED end at once; PROCESSING gets its AbortSignal fired and ends CANCELLED. */
  cancelTask(actor: Actor, taskId: number): Promise<Task>;
  /**
   * Puts a FAILED or CANCELLED task back in the queue, in place (same id), with a new attempt budget;
   * its DEPENDENCY_FAILED dependents come back SUSPENDED with it. NotFoundError for another
   * organisation's task; ConflictError NOT_RETRYABLE for a task in another state, one a dependency
   * of which ended FAILED or CANCELLED, or one retried MAX_RETRIES_PER_TASK times.
   */
  retryTask(actor: Actor, taskId: number): Promise<Task>;
  /** cancelTask for up to `limit` (at most MAX_BULK_TASKS) tasks of the filter, newest first, in batches. ADMIN. */
  cancelTasks(actor: Actor, filter: TaskFilter, limit: number | null): Promise<BulkOutcome>;
  /** retryTask for up to `limit` (at most MAX_BULK_TASKS) tasks of the filter, newest first, in batches. ADMIN. */
  retryTasks(actor: Actor, filter: TaskFilter, limit: number | null): Promise<BulkOutcome>;
  /** The runs each task had before its retries, oldest first. The caller has authorised the tasks. */
  taskRetries(taskIds: readonly number[]): Promise<Map<number, TaskRetry[]>>;
  /** In the order asked; null for unknown ids and other organisations' ids. */
  getTasks(actor: Actor, ids: readonly number[]): Promise<(Task | null)[]>;
  /** Newest first. */
  listTasks(actor: Actor, filter: TaskFilter, page: PageRequest): Promise<Page<Task>>;
  /** How many of the organisation's tasks the filter (of listTasks) selects, by state. */
  taskCounts(actor: Actor, filter: TaskFilter): Promise<TaskCounts>;
  /**
   * The organisation's tasks completed per bucket from `since` to now, every bucket present;
   * ValidationError naming the argument beyond AGGREGATE_LIMITS.
   */
  taskThroughput(actor: Actor, since: Date, bucketSeconds: number): Promise<ThroughputBucket[]>;
  /** Each queue the organisation has active tasks in, or tasks finished in the last 15 minutes. */
  queueStats(actor: Actor): Promise<QueueStats[]>;
  /** One entry per id, in order; null ids (malformed) come back not found. */
  taskStatuses(actor: Actor, ids: readonly (number | null)[]): Promise<TaskStatus[]>;
  /**
   * NO_WORKER for a PENDING task whose action this server's catalog does not have (its module was
   * removed): no worker here claims it until a start that has the action. Null otherwise.
   */
  waitingFor(task: Task): TaskWaitingFor | null;
  /** 0-based positions of the PENDING tasks among the ids; others are absent. */
  queuePositions(taskIds: readonly number[]): Promise<Map<number, number>>;
  /** A page of each task's logs, oldest first, read at once. The tasks must already have been authorised by the caller. */
  taskLogs(taskIds: readonly number[], minLevel: LogLevel | null, page: PageRequest): Promise<Map<number, Page<TaskLog>>>;
  /** Log lines by id, for a LOG event from another process, which names its line. The caller has authorised their tasks. */
  getLogs(ids: readonly number[]): Promise<TaskLog[]>;
  taskResults(taskIds: readonly number[]): Promise<Map<number, TaskResult[]>>;
  getResults(actor: Actor, ids: readonly number[]): Promise<(TaskResult | null)[]>;
  /** Ids of the tasks each task depends on. */
  dependencies(taskIds: readonly number[]): Promise<Map<number, number[]>>;
  /** The ids of the tasks that name the task in dependsOn, oldest first, at most `limit`. */
  dependents(taskId: number, limit: number): Promise<number[]>;
  /**
   * One-time: the payloads. With a retrievalKey they stay for the retry window, and only a retry
   * with that key gets them again; without one they are dropped at once.
   */
  retrieveResults(actor: Actor, taskId: number, retrievalKey: string | null): Promise<TaskResultPayload[]>;
  /** CHANNEL: reserves the payload for one subscriber; null when it is gone or another subscriber has it. */
  claimResultDelivery(resultId: number): Promise<ResultDelivery | null>;

  /** Reserves warm instances of a REALTIME action; ValidationError when its prepare() fails. */
  createAllocation(
    actor: Actor,
    input: { name: string; service: string; action: string; instances: number; timeoutMs?: number | null },
  ): Promise<Allocation>;
  listAllocations(actor: Actor): Promise<AllocationStatus[]>;
  /** The processes running a worker on this database now. ADMIN only. */
  workerProcesses(actor: Actor): Promise<WorkerProcess[]>;
  getAllocations(actor: Actor, ids: readonly number[]): Promise<(AllocationStatus | null)[]>;
  /** Its execution URLs stop working at once. */
  deleteAllocation(actor: Actor, allocationId: number): Promise<Allocation>;
  /** The token is returned once; only its hash is kept. */
  generateExecutionToken(
    actor: Actor,
    allocationId: number,
    ttlSeconds: number | null,
  ): Promise<{ token: string; executionToken: ExecutionToken }>;
  revokeExecutionToken(actor: Actor, tokenId: number): Promise<ExecutionToken>;
  /** One call to an execution URL. */
  execute(allocationId: number, token: string, params: unknown): Promise<ExecutionOutcome>;
}
