import { EXECUTION_MODES, LOG_LEVELS, type Execution, type HandlerLogLevel, type KeyPermissions } from '../catalog/types.js';
import type { KeyRateLimits } from './rate-limits.js';

export { EXECUTION_MODES, LOG_LEVELS };
import type { TaskWebhook, TaskWebhookInput } from './webhooks.js';
export type { Execution, KeyPermissions };

export const TASK_STATES = Object.freeze([
  'PENDING',
  'SUSPENDED',
  'PROCESSING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
] as const);
export type TaskState = (typeof TASK_STATES)[number];

export const TERMINAL_STATES = Object.freeze(['SUCCEEDED', 'FAILED', 'CANCELLED'] as const satisfies readonly TaskState[]);
export type TerminalState = (typeof TERMINAL_STATES)[number];
export const isTerminal = (state: TaskState): boolean => (TERMINAL_STATES as readonly TaskState[]).includes(state);
/** The states cancelTask and cancelTasks act on, and those retryTask and retryTasks put back in the queue. */
export const CANCELLABLE_STATES = Object.freeze(['PENDING', 'SUSPENDED', 'PROCESSING'] as const satisfies readonly TaskState[]);
export const RETRYABLE_STATES = Object.freeze(['FAILED', 'CANCELLED'] as const satisfies readonly TaskState[]);
export type RetryableState = (typeof RETRYABLE_STATES)[number];

/** What a PENDING task waits for besides its turn. NO_WORKER: no worker has its action. */
export const TASK_WAITING_FOR = Object.freeze(['NO_WORKER'] as const);
export type TaskWaitingFor = (typeof TASK_WAITING_FOR)[number];

export const QUEUE_STATUSES = Object.freeze(['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED'] as const);
export type QueueStatus = (typeof QUEUE_STATUSES)[number];
export function queueStatusOf(state: TaskState): QueueStatus {
  if (state === 'PENDING' || state === 'SUSPENDED') return 'IN_QUEUE';
  if (state === 'PROCESSING') return 'IN_PROGRESS';
  return 'COMPLETED';
}

export const RETRIEVAL_PROTOCOLS = Object.freeze(['STORE', 'CHANNEL'] as const);
export type RetrievalProtocol = (typeof RETRIEVAL_PROTOCOLS)[number];
export const ROLES = Object.freeze(['ADMIN', 'MEMBER'] as const);
export type Role = (typeof ROLES)[number];

/** The levels a handler logs at are those of the task's log. */
export type LogLevel = HandlerLogLevel;

/** Who is asking: every engine call that reads or writes tenant data takes one. */
export interface Actor {
  organisationId: number;
  keyId: number;
  role: Role;
  /** The key's permissions; absent or null for a key that may use the whole catalog. */
  permissions?: KeyPermissions | null;
  /**
   * The organisation as read with the key when the operation began. A submission takes its
   * retrieval protocol from it instead of reading it again (a round trip on PostgreSQL); without
   * it, the engine reads the organisation.
   */
  organisation?: Organisation;
}

export interface Organisation {
  id: number;
  name: string;
  retrievalProtocol: RetrievalProtocol;
  /** Its share of each queue against the other organisations waiting there (fair share). */
  weight: number;
  /** The most of its tasks that run at once, over every queue and process; null for no cap. */
  maxConcurrency: number | null;
  dateCreated: Date;
}

/** What an operator may set of an organisation's share; the ranges of FAIR_SHARE_BOUNDS. */
export interface OrganisationShareChanges {
  weight?: number;
  maxConcurrency?: number | null;
}

export const FAIR_SHARE_BOUNDS = Object.freeze({
  weight: { min: 1, max: 1000 },
  maxConcurrency: { min: 1, max: 100_000 },
});

export interface ApiKey {
  id: number;
  organisationId: number;
  name: string;
  role: Role;
  permissions: KeyPermissions | null;
  /** The key's own rate limits; null: the server's defaults. */
  rateLimits: KeyRateLimits | null;
  revoked: boolean;
  dateCreated: Date;
}

export interface Account {
  id: number;
  organisationId: number;
  service: string;
  username: string;
  dateCreated: Date;
  dateDeregistered: Date | null;
}

export interface TaskError {
  code: string;
  message: string;
}

export interface Task {
  id: number;
  organisationId: number;
  keyId: number;
  user: string | null;
  sourceId: number | null;
  sourceType: string | null;
  session: string | null;
  poll: string | null;
  service: string;
  type: string;
  target: string | null;
  params: Record<string, unknown>;
  state: TaskState;
  priority: number;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number;
  progress: number | null;
  error: TaskError | null;
  retrievalProtocol: RetrievalProtocol;
  resultRetrieved: boolean;
  cancelRequested: boolean;
  /** REALTIME: a call to an execution URL, recorded once it was answered. */
  execution: Execution;
  allocationId: number | null;
  idempotencyKey: string | null;
  runAt: Date | null;
  dateCreated: Date;
  dateStarted: Date | null;
  dateCompleted: Date | null;
  /** Times it was put back in the queue after it ended; `attempts` and `maxAttempts` count over every run. */
  retries: number;
  /** Its own webhook, named at submission. */
  webhook: TaskWebhook | null;
  /** The schedule that created it, and the fire time it was created for. */
  scheduleId: number | null;
  scheduledFor: Date | null;
}

/** How one run of a task ended, kept when a retry put the task back in the queue. */
export interface TaskRetry {
  id: number;
  taskId: number;
  /** The key that asked for the retry. */
  keyId: number;
  state: RetryableState;
  error: TaskError | null;
  /** Attempts made when the run ended, counted from the task's first. */
  attempts: number;
  dateStarted: Date | null;
  dateCompleted: Date;
  dateRetried: Date;
}

/** Capacity reserved for one action, served through execution URLs. */
export interface Allocation {
  id: number;
  organisationId: number;
  keyId: number;
  name: string;
  service: string;
  action: string;
  instances: number;
  timeoutMs: number;
  executions: number;
  dateCreated: Date;
}

export interface ExecutionToken {
  id: number;
  allocationId: number;
  expiresAt: Date;
  revoked: boolean;
}

export interface TaskLog {
  id: number;
  taskId: number;
  level: LogLevel;
  message: string;
  source: string;
  timestamp: Date;
}

export interface TaskResult {
  id: number;
  taskId: number;
  name: string;
  contentType: string;
  size: number;
  retrieved: boolean;
  dateCreated: Date;
}

export interface TaskResultPayload {
  result: TaskResult;
  data: unknown;
}

export interface TaskStatus {
  id: number;
  found: boolean;
  state: TaskState | null;
  queuePosition: number | null;
  resultRetrieved: boolean | null;
  retrievalProtocol: RetrievalProtocol | null;
  error: TaskError | null;
}

export interface DateRange {
  gt?: Date | null;
  gte?: Date | null;
  lt?: Date | null;
  lte?: Date | null;
}

export interface TaskFilter {
  /** Any of these tasks. */
  id?: readonly number[] | null;
  keyId?: number | null;
  user?: string | null;
  sourceId?: number | null;
  session?: string | null;
  poll?: string | null;
  idempotencyKey?: string | null;
  sourceType?: string | null;
  service?: string | null;
  type?: string | null;
  state?: TaskState[] | null;
  dateCreated?: DateRange | null;
  dateStarted?: DateRange | null;
  dateCompleted?: DateRange | null;
}

/** Keyset page over ids, which grow with time: "newest first" is "id descending". */
export interface PageRequest {
  first: number;
  /** Return the items that come after this id in the listing's order. */
  afterId?: number | null;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
}

export interface SubmitTaskInput {
  service: string;
  action: string;
  account?: string | null;
  params?: unknown;
  priority?: number | null;
  runAt?: Date | null;
  /** Task ids the new task waits for. */
  dependsOn?: number[] | null;
  idempotencyKey?: string | null;
  maxAttempts?: number | null;
  timeoutSeconds?: number | null;
  user?: string | null;
  session?: string | null;
  poll?: string | null;
  target?: string | null;
  /** A URL told of the task's events, signed with the organisation's webhook secret. */
  webhook?: TaskWebhookInput | null;
}
