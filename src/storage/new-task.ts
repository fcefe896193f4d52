import type { Task, TaskError, TaskState } from '../domain/types.js';
import { webhookEventMask, webhookEventsOf } from '../domain/webhooks.js';
import type { NewTask } from './contract.js';

// A submission's row, written by either dialect, and the task it is: a store that knows the ids
// it inserted builds the tasks from what it wrote instead of reading every row back.

/** The columns a submission writes, in the order of `insertedValues`; the others take their defaults. */
export const INSERTED_COLUMNS = `organisation_id, key_id, "user", source_id, source_type, session, poll, service, type,
  target, params, state, priority, max_attempts, timeout_ms, error_code, error_message,
  retrieval_protocol, idempotency_key, run_at, available_at, date_created, date_completed,
  webhook_url, webhook_events, schedule_id, scheduled_for`;

export const INSERTED_COLUMN_COUNT = 27;

/** What a new task starts as: PENDING, or SUSPENDED behind its dependencies, or FAILED by one of them. */
export interface Birth {
  state: TaskState;
  error: TaskError | null;
}

export const BORN_PENDING: Birth = { state: 'PENDING', error: null };

/** The values of the row, pushed onto `into` (a multi-row statement's values), which it returns. */
export function insertedValues(input: NewTask, birth: Birth, now: number, paramsJson: string, into: unknown[] = []): unknown[] {
  into.push(
    input.organisationId,
    input.keyId,
    input.user,
    input.sourceId,
    input.sourceType,
    input.session,
    input.poll,
    input.service,
    input.type,
    input.target,
    paramsJson,
    birth.state,
    input.priority,
    input.maxAttempts,
    input.timeoutMs,
    birth.error?.code ?? null,
    birth.error?.message ?? null,
    input.retrievalProtocol,
    input.idempotencyKey,
    input.runAt,
    Math.max(input.runAt ?? now, now),
    now,
    birth.state === 'FAILED' ? now : null,
    input.webhook?.url ?? null,
    input.webhook ? webhookEventMask(input.webhook.events) : null,
    input.scheduleId ?? null,
    input.scheduledFor ?? null,
  );
  return into;
}

/**
 * The task of the row `insertedValues` wrote under `id`, as a read of it would give it: params
 * parsed from the JSON that was written, webhook events in their declared order, the columns this
 * insert leaves out at their defaults.
 */
export function insertedTask(input: NewTask, id: number, birth: Birth, now: number, paramsJson: string): Task {
  return {
    id,
    organisationId: input.organisationId,
    keyId: input.keyId,
    user: input.user,
    sourceId: input.sourceId,
    sourceType: input.sourceType,
    session: input.session,
    poll: input.poll,
    service: input.service,
    type: input.type,
    target: input.target,
    params: JSON.parse(paramsJson) as Record<string, unknown>,
    state: birth.state,
    priority: input.priority,
    attempts: 0,
    maxAttempts: input.maxAttempts,
    timeoutMs: input.timeoutMs,
    progress: null,
    error: birth.error,
    retrievalProtocol: input.retrievalProtocol,
    resultRetrieved: false,
    cancelRequested: false,
    execution: 'ASYNCHRONOUS',
    allocationId: null,
    idempotencyKey: input.idempotencyKey,
    runAt: input.runAt === null ? null : new Date(input.runAt),
    dateCreated: new Date(now),
    dateStarted: null,
    dateCompleted: birth.state === 'FAILED' ? new Date(now) : null,
    retries: 0,
    webhook: input.webhook ? { url: input.webhook.url, events: webhookEventsOf(webhookEventMask(input.webhook.events)) } : null,
    scheduleId: input.scheduleId ?? null,
    scheduledFor: input.scheduledFor === null || input.scheduledFor === undefined ? null : new Date(input.scheduledFor),
  };
}
