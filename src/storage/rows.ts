import type {
  Account,
  Allocation,
  ApiKey,
  ExecutionToken,
  LogLevel,
  Organisation,
  Task,
  TaskLog,
  TaskResult,
  TaskRetry,
} from '../domain/types.js';
import { LOG_LEVELS } from '../domain/types.js';
import { webhookEventsOf } from '../domain/webhooks.js';
import type { ApiKeyChanges, ExecutionRecord } from './contract.js';
import type * as schema from './sqlite/schema.js';

/** The row shapes of the SQLite schema; the PostgreSQL schema declares the same columns with the same types. */
type TaskRecord = typeof schema.tasks.$inferSelect;

/**
 * The task columns under the names drizzle gives them, for hand-written statements of either
 * dialect: quoted, because PostgreSQL folds unquoted names to lower case, and `user` is reserved there.
 */
export const TASK_COLUMNS = `id, organisation_id AS "organisationId", key_id AS "keyId", "user", source_id AS "sourceId",
  source_type AS "sourceType", session, poll, service, type, target, params, state, priority, attempts,
  max_attempts AS "maxAttempts", timeout_ms AS "timeoutMs", progress, error_code AS "errorCode",
  error_message AS "errorMessage", retrieval_protocol AS "retrievalProtocol", result_retrieved AS "resultRetrieved",
  cancel_requested AS "cancelRequested", execution, allocation_id AS "allocationId",
  idempotency_key AS "idempotencyKey", run_at AS "runAt",
  available_at AS "availableAt", date_created AS "dateCreated", date_started AS "dateStarted",
  date_completed AS "dateCompleted", retries, webhook_url AS "webhookUrl", webhook_events AS "webhookEvents",
  schedule_id AS "scheduleId", scheduled_for AS "scheduledFor"`;

const dateOrNull = (value: number | null): Date | null => (value === null ? null : new Date(value));

export function toTask(record: TaskRecord): Task {
  return {
    id: record.id,
    organisationId: record.organisationId,
    keyId: record.keyId,
    user: record.user,
    sourceId: record.sourceId,
    sourceType: record.sourceType,
    session: record.session,
    poll: record.poll,
    service: record.service,
    type: record.type,
    target: record.target,
    params: JSON.parse(record.params) as Record<string, unknown>,
    state: record.state,
    priority: record.priority,
    attempts: record.attempts,
    maxAttempts: record.maxAttempts,
    timeoutMs: record.timeoutMs,
    progress: record.progress,
    error: record.errorCode === null ? null : { code: record.errorCode, message: record.errorMessage ?? '' },
    retrievalProtocol: record.retrievalProtocol,
    resultRetrieved: Boolean(record.resultRetrieved),
    cancelRequested: Boolean(record.cancelRequested),
    execution: record.execution,
    allocationId: record.allocationId,
    idempotencyKey: record.idempotencyKey,
    runAt: dateOrNull(record.runAt),
    dateCreated: new Date(record.dateCreated),
    dateStarted: dateOrNull(record.dateStarted),
    dateCompleted: dateOrNull(record.dateCompleted),
    retries: record.retries,
    webhook: record.webhookUrl === null ? null : { url: record.webhookUrl, events: webhookEventsOf(record.webhookEvents ?? 0) },
    scheduleId: record.scheduleId,
    scheduledFor: dateOrNull(record.scheduledFor),
  };
}

export function toTaskRetry(record: typeof schema.taskRetries.$inferSelect): TaskRetry {
  return {
    id: record.id,
    taskId: record.taskId,
    keyId: record.keyId,
    state: record.state as TaskRetry['state'],
    error: record.errorCode === null ? null : { code: record.errorCode, message: record.errorMessage ?? '' },
    attempts: record.attempts,
    dateStarted: dateOrNull(record.dateStarted),
    dateCompleted: new Date(record.dateCompleted),
    dateRetried: new Date(record.dateRetried),
  };
}

export const levelNumber = (level: LogLevel): number => LOG_LEVELS.indexOf(level);

export function toTaskLog(record: typeof schema.taskLogs.$inferSelect): TaskLog {
  return {
    id: record.id,
    taskId: record.taskId,
    level: LOG_LEVELS[record.level] ?? 'INFO',
    message: record.message,
    source: record.source,
    timestamp: new Date(record.timestamp),
  };
}

export function toTaskResult(record: Omit<typeof schema.taskResults.$inferSelect, 'data' | 'deliveryClaim'>): TaskResult {
  return {
    id: record.id,
    taskId: record.taskId,
    name: record.name,
    contentType: record.contentType,
    size: record.size,
    retrieved: Boolean(record.retrieved),
    dateCreated: new Date(record.dateCreated),
  };
}

export function toOrganisation(record: typeof schema.organisations.$inferSelect): Organisation {
  return { ...record, dateCreated: new Date(record.dateCreated) };
}

export function toApiKey(record: typeof schema.apiKeys.$inferSelect): ApiKey {
  return {
    id: record.id,
    organisationId: record.organisationId,
    name: record.name,
    role: record.role,
    permissions: record.permissions === null ? null : (JSON.parse(record.permissions) as ApiKey['permissions']),
    rateLimits: record.rateLimits === null ? null : (JSON.parse(record.rateLimits) as ApiKey['rateLimits']),
    revoked: Boolean(record.revoked),
    dateCreated: new Date(record.dateCreated),
  };
}

/** The columns an ApiKeyChanges sets; the engine sends no update without one. */
export function apiKeyColumns(changes: ApiKeyChanges): { name?: string; rateLimits?: string | null } {
  const columns: { name?: string; rateLimits?: string | null } = {};
  if (changes.name !== undefined) columns.name = changes.name;
  if (changes.rateLimits !== undefined) columns.rateLimits = changes.rateLimits ? JSON.stringify(changes.rateLimits) : null;
  return columns;
}

export function toAccount(record: typeof schema.accounts.$inferSelect): Account {
  return { ...record, dateCreated: new Date(record.dateCreated), dateDeregistered: dateOrNull(record.dateDeregistered) };
}

export function toAllocation(record: typeof schema.allocations.$inferSelect): Allocation {
  return {
    id: record.id,
    organisationId: record.organisationId,
    keyId: record.keyId,
    name: record.name,
    service: record.service,
    action: record.action,
    instances: record.instances,
    timeoutMs: record.timeoutMs,
    executions: record.executions,
    dateCreated: new Date(record.dateCreated),
  };
}

export function toExecutionToken(record: typeof schema.executionTokens.$inferSelect): ExecutionToken {
  return {
    id: record.id,
    allocationId: record.allocationId,
    expiresAt: new Date(record.expiresAt),
    revoked: Boolean(record.revoked),
  };
}

/** The row insertExecution writes, as the engine sees it: read back, it would only cost time. */
export function taskOfExecution(record: ExecutionRecord): Task {
  return {
    id: record.taskId,
    organisationId: record.organisationId,
    keyId: record.keyId,
    user: null,
    sourceId: null,
    sourceType: null,
    session: null,
    poll: null,
    service: record.service,
    type: record.type,
    target: null,
    params: record.params,
    state: record.state,
    priority: 0,
    attempts: 1,
    maxAttempts: 1,
    timeoutMs: record.timeoutMs,
    progress: record.progress,
    error: record.error,
    retrievalProtocol: record.retrievalProtocol,
    resultRetrieved: record.results.length > 0,
    cancelRequested: false,
    execution: 'REALTIME',
    allocationId: record.allocationId,
    idempotencyKey: null,
    runAt: null,
    dateCreated: new Date(record.dateCreated),
    dateStarted: new Date(record.dateCreated),
    dateCompleted: new Date(record.dateCompleted),
    retries: 0,
    webhook: null,
    scheduleId: null,
    scheduledFor: null,
  };
}
