import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { EXECUTION_MODES, RETRIEVAL_PROTOCOLS, ROLES, TASK_STATES } from '../../domain/types.js';
import { SCHEDULE_CATCH_UPS, SCHEDULE_OVERLAPS, SCHEDULE_RUN_OUTCOMES } from '../../domain/schedules.js';
import { WEBHOOK_ATTEMPT_OUTCOMES, WEBHOOK_DISABLED_REASONS, WEBHOOK_EVENTS, WEBHOOK_MESSAGE_STATUSES } from '../../domain/webhooks.js';

// Timestamps are epoch milliseconds: they sort and compare as integers in every index.

export const organisations = sqliteTable('organisations', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull().unique(),
  retrievalProtocol: text('retrieval_protocol', { enum: RETRIEVAL_PROTOCOLS }).notNull().default('STORE'),
  // Its share of each queue against other organisations with pending tasks there.
  weight: integer('weight').notNull().default(1),
  // The most of its tasks that run at once, over every queue and process; null for no cap.
  maxConcurrency: integer('max_concurrency'),
  // Signs the webhooks its tasks name at submission; created at first use.
  webhookSecret: text('webhook_secret'),
  // The secret before the last rotation, which signs beside the new one until webhook_previous_secret_until.
  webhookPreviousSecret: text('webhook_previous_secret'),
  webhookPreviousSecretUntil: integer('webhook_previous_secret_until'),
  dateCreated: integer('date_created').notNull(),
});

export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => organisations.id),
    name: text('name').notNull(),
    role: text('role', { enum: ROLES }).notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    // JSON of KeyPermissions; null lets the key use the whole catalog.
    permissions: text('permissions'),
    // JSON of RateLimits; null follows the server's defaults.
    rateLimits: text('rate_limits'),
    revoked: integer('revoked', { mode: 'boolean' }).notNull().default(false),
    dateCreated: integer('date_created').notNull(),
    dateRevoked: integer('date_revoked'),
  },
  (table) => [index('api_keys_organisation').on(table.organisationId, table.id)],
);

export const accounts = sqliteTable(
  'accounts',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => organisations.id),
    service: text('service').notNull(),
    username: text('username').notNull(),
    dateCreated: integer('date_created').notNull(),
    // Deregistered accounts are kept so that the tasks that ran against them still name their source.
    dateDeregistered: integer('date_deregistered'),
  },
  (table) => [
    uniqueIndex('accounts_active_unique')
      .on(table.organisationId, table.service, table.username)
      .where(sql`date_deregistered IS NULL`),
    index('accounts_organisation').on(table.organisationId, table.service, table.id),
  ],
);

export const allocations = sqliteTable(
  'allocations',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => organisations.id),
    // The ADMIN key that created it: the calls it serves are recorded as tasks of that key.
    keyId: integer('key_id')
      .notNull()
      .references(() => apiKeys.id),
    name: text('name').notNull(),
    service: text('service').notNull(),
    action: text('action').notNull(),
    instances: integer('instances').notNull(),
    timeoutMs: integer('timeout_ms').notNull(),
    executions: integer('executions').notNull().default(0),
    dateCreated: integer('date_created').notNull(),
    // Deleted allocations are kept: the tasks they served still point at them.
    dateDeleted: integer('date_deleted'),
  },
  (table) => [index('allocations_by_organisation').on(table.organisationId, table.id)],
);

export const executionTokens = sqliteTable('execution_tokens', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  allocationId: integer('allocation_id')
    .notNull()
    .references(() => allocations.id),
  tokenHash: text('token_hash').notNull().unique(),
  expiresAt: integer('expires_at').notNull(),
  revoked: integer('revoked', { mode: 'boolean' }).notNull().default(false),
  dateCreated: integer('date_created').notNull(),
});

export const tasks = sqliteTable(
  'tasks',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => organisations.id),
    keyId: integer('key_id')
      .notNull()
      .references(() => apiKeys.id),
    user: text('user'),
    sourceId: integer('source_id').references(() => accounts.id),
    sourceType: text('source_type'),
    session: text('session'),
    poll: text('poll'),
    service: text('service').notNull(),
    type: text('type').notNull(),
    target: text('target'),
    params: text('params').notNull(),
    state: text('state', { enum: TASK_STATES }).notNull(),
    priority: integer('priority').notNull().default(0),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    timeoutMs: integer('timeout_ms').notNull(),
    progress: real('progress'),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    retrievalProtocol: text('retrieval_protocol', { enum: RETRIEVAL_PROTOCOLS }).notNull(),
    resultRetrieved: integer('result_retrieved', { mode: 'boolean' }).notNull().default(false),
    // SHA-256 of the retrievalKey of the first retrieveResults: a retry that repeats it gets the payloads again.
    retrievalKeyHash: text('retrieval_key_hash'),
    // Until when retrieved payloads are kept for such a retry; null once they have been deleted.
    resultsKeptUntil: integer('results_kept_until'),
    cancelRequested: integer('cancel_requested', { mode: 'boolean' }).notNull().default(false),
    execution: text('execution', { enum: EXECUTION_MODES }).notNull().default('ASYNCHRONOUS'),
    allocationId: integer('allocation_id').references(() => allocations.id),
    idempotencyKey: text('idempotency_key'),
    runAt: integer('run_at'),
    // When the claim may take it: runAt, or later after a failed attempt's backoff.
    availableAt: integer('available_at').notNull(),
    dateCreated: integer('date_created').notNull(),
    dateStarted: integer('date_started'),
    dateCompleted: integer('date_completed'),
    // PROCESSING only: the worker running it, which renews the lease until the attempt ends.
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: integer('lease_expires_at'),
    // Times retryTask or retryTasks put it back after it ended (also as a dependent coming back with them).
    retries: integer('retries').notNull().default(0),
    // The attempts each run may make, kept at the first retry: a retry sets max_attempts to the attempts
    // made so far plus this, so attempts only grow and a stale attempt's outcome can never match again.
    attemptBudget: integer('attempt_budget'),
    // Its own webhook from the submission: the URL, and the events (a WEBHOOK_EVENTS bit set) it is told of.
    webhookUrl: text('webhook_url'),
    webhookEvents: integer('webhook_events'),
    // The schedule that created it, and the fire time it was created for.
    scheduleId: integer('schedule_id'),
    scheduledFor: integer('scheduled_for'),
  },
  (table) => [
    // A queue is the PENDING tasks of one action, in the order each organisation's are claimed: fair
    // share skips through it one organisation at a time and takes each one's best in turn, and
    // available_at spares the claim a row read for each task not yet due.
    index('tasks_queue_by_organisation')
      .on(table.service, table.type, table.organisationId, sql`${table.priority} DESC`, table.id, table.availableAt)
      .where(sql`state = 'PENDING'`),
    index('tasks_due')
      .on(table.service, table.type, table.availableAt)
      .where(sql`state = 'PENDING'`),
    index('tasks_lease_expiry').on(table.leaseExpiresAt).where(sql`state = 'PROCESSING'`),
    uniqueIndex('tasks_idempotency')
      .on(table.organisationId, table.idempotencyKey)
      .where(sql`idempotency_key IS NOT NULL`),
    index('tasks_results_kept').on(table.resultsKeptUntil).where(sql`results_kept_until IS NOT NULL`),
    index('tasks_by_organisation').on(table.organisationId, table.id),
    index('tasks_by_key').on(table.organisationId, table.keyId, table.id),
    index('tasks_by_user').on(table.organisationId, table.user, table.id).where(sql`user IS NOT NULL`),
    index('tasks_by_source').on(table.organisationId, table.sourceId, table.id).where(sql`source_id IS NOT NULL`),
    index('tasks_by_source_type')
      .on(table.organisationId, table.sourceType, table.id)
      .where(sql`source_type IS NOT NULL`),
    index('tasks_by_session').on(table.organisationId, table.session, table.id).where(sql`session IS NOT NULL`),
    index('tasks_by_poll').on(table.organisationId, table.poll, table.id).where(sql`poll IS NOT NULL`),
    index('tasks_by_service_type').on(table.organisationId, table.service, table.type, table.id),
    index('tasks_by_type').on(table.organisationId, table.type, table.id),
    index('tasks_by_state').on(table.organisationId, table.state, table.id),
    index('tasks_by_date_started')
      .on(table.organisationId, table.dateStarted)
      .where(sql`date_started IS NOT NULL`),
    // Retention: terminal tasks of every organisation, oldest completion first.
    index('tasks_retention').on(table.dateCompleted, table.id).where(sql`date_completed IS NOT NULL`),
    // Aggregates (storage/aggregate-store.ts), read from the index alone: an organisation's active
    // tasks by state and queue, with the oldest's date; its completions in time order, by state and
    // queue; and the counts by state of a queue's tasks, and of those created in a time range.
    index('tasks_active_by_queue')
      .on(table.organisationId, table.state, table.service, table.type, table.dateCreated)
      .where(sql`state IN ('PENDING', 'SUSPENDED', 'PROCESSING')`),
    index('tasks_completed_by_queue')
      .on(table.organisationId, table.dateCompleted, table.state, table.service, table.type)
      .where(sql`date_completed IS NOT NULL`),
    index('tasks_counts_by_queue').on(table.organisationId, table.service, table.type, table.state),
    index('tasks_counts_by_date_created').on(table.organisationId, table.dateCreated, table.state),
  ],
);

export const taskDependencies = sqliteTable(
  'task_dependencies',
  {
    taskId: integer('task_id')
      .notNull()
      .references(() => tasks.id),
    dependsOnId: integer('depends_on_id')
      .notNull()
      .references(() => tasks.id),
  },
  (table) => [
    primaryKey({ columns: [table.taskId, table.dependsOnId] }),
    index('task_dependencies_reverse').on(table.dependsOnId),
  ],
);

export const taskLogs = sqliteTable(
  'task_logs',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    taskId: integer('task_id')
      .notNull()
      .references(() => tasks.id),
    // 0 DEBUG, 1 INFO, 2 WARN, 3 ERROR: numeric so that minLevel is a range condition.
    level: integer('level').notNull(),
    message: text('message').notNull(),
    source: text('source').notNull(),
    timestamp: integer('timestamp').notNull(),
  },
  (table) => [index('task_logs_by_task').on(table.taskId, table.level, table.id)],
);

export const taskResults = sqliteTable(
  'task_results',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    taskId: integer('task_id')
      .notNull()
      .references(() => tasks.id),
    name: text('name').notNull(),
    contentType: text('content_type').notNull(),
    size: integer('size').notNull(),
    // JSON text; null once the payload has been delivered, or retrieved and past its retry window.
    data: text('data'),
    retrieved: integer('retrieved', { mode: 'boolean' }).notNull().default(false),
    // CHANNEL: the subscription writing this payload now. It keeps a second subscriber from sending it
    // too; the payload counts as delivered only when the write is confirmed.
    deliveryClaim: text('delivery_claim'),
    dateCreated: integer('date_created').notNull(),
    dateRetrieved: integer('date_retrieved'),
  },
  (table) => [index('task_results_by_task').on(table.taskId, table.id)],
);

/** How each run of a task ended before a retry put it back: the runs a retried task had stay visible. */
export const taskRetries = sqliteTable(
  'task_retries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    taskId: integer('task_id')
      .notNull()
      .references(() => tasks.id),
    // The key that asked for the retry; a dependent that came back with it names the same key.
    keyId: integer('key_id')
      .notNull()
      .references(() => apiKeys.id),
    state: text('state', { enum: TASK_STATES }).notNull(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    attempts: integer('attempts').notNull(),
    dateStarted: integer('date_started'),
    dateCompleted: integer('date_completed').notNull(),
    dateRetried: integer('date_retried').notNull(),
  },
  (table) => [index('task_retries_by_task').on(table.taskId, table.id)],
);

/**
 * Fair share: how much of each queue every organisation has been served, in units of 1/weight
 * per task started. The claim serves the organisations with pending tasks lowest first.
 */
export const queueShares = sqliteTable(
  'queue_shares',
  {
    service: text('service').notNull(),
    type: text('type').notNull(),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => organisations.id),
    served: real('served').notNull().default(0),
  },
  (table) => [primaryKey({ columns: [table.service, table.type, table.organisationId] })],
);

export const webhookEndpoints = sqliteTable(
  'webhook_endpoints',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => organisations.id),
    url: text('url').notNull(),
    description: text('description'),
    // A WEBHOOK_EVENTS bit set.
    events: integer('events').notNull(),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousSecretUntil: integer('previous_secret_until'),
    enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
    disabledReason: text('disabled_reason', { enum: WEBHOOK_DISABLED_REASONS }),
    failingSince: integer('failing_since'),
    dateCreated: integer('date_created').notNull(),
    // Deleted endpoints are kept: their deliveries still name them.
    dateDeleted: integer('date_deleted'),
  },
  (table) => [index('webhook_endpoints_by_organisation').on(table.organisationId, table.id)],
);

/**
 * The outbox: one row per message to one receiver, written in the transaction that changed the
 * task, so that a crash can neither lose a message nor send one for a change that did not happen.
 */
export const webhookMessages = sqliteTable(
  'webhook_messages',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id').notNull(),
    // No foreign key: retention deletes a task's messages with it.
    taskId: integer('task_id').notNull(),
    // Null for the task's own webhook, signed with the organisation's secret.
    endpointId: integer('endpoint_id').references(() => webhookEndpoints.id),
    url: text('url').notNull(),
    event: text('event', { enum: WEBHOOK_EVENTS }).notNull(),
    // JSON of the task as the change left it.
    task: text('task').notNull(),
    // The exact bytes sent, fixed at the first attempt so that every attempt and redelivery carries the same message.
    body: text('body'),
    status: text('status', { enum: WEBHOOK_MESSAGE_STATUSES }).notNull().default('PENDING'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at').notNull(),
    // The process sending it now: no two send one message at once.
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: integer('lease_expires_at'),
    dateCreated: integer('date_created').notNull(),
  },
  (table) => [
    index('webhook_messages_due').on(table.nextAttemptAt).where(sql`status = 'PENDING'`),
    // A task's messages reach one receiver in order: a message waits while an older one to the same receiver is pending.
    index('webhook_messages_in_order')
      .on(table.taskId, table.url, table.id)
      .where(sql`status = 'PENDING'`),
    index('webhook_messages_by_task').on(table.taskId),
  ],
);

/** One row per attempt to deliver a message. */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    messageId: integer('message_id')
      .notNull()
      .references(() => webhookMessages.id),
    organisationId: integer('organisation_id').notNull(),
    taskId: integer('task_id').notNull(),
    endpointId: integer('endpoint_id').references(() => webhookEndpoints.id),
    attempt: integer('attempt').notNull(),
    outcome: text('outcome', { enum: WEBHOOK_ATTEMPT_OUTCOMES }).notNull(),
    httpStatus: integer('http_status'),
    durationMs: integer('duration_ms').notNull(),
    error: text('error'),
    nextAttemptAt: integer('next_attempt_at'),
    dateCreated: integer('date_created').notNull(),
  },
  (table) => [
    index('webhook_deliveries_by_task').on(table.taskId, table.id),
    index('webhook_deliveries_by_endpoint').on(table.endpointId, table.id).where(sql`endpoint_id IS NOT NULL`),
    index('webhook_deliveries_by_message').on(table.messageId),
  ],
);

export const schedules = sqliteTable(
  'schedules',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => organisations.id),
    // The key that created it: its tasks are that key's, within its permissions.
    keyId: integer('key_id')
      .notNull()
      .references(() => apiKeys.id),
    name: text('name').notNull(),
    cron: text('cron').notNull(),
    timezone: text('timezone').notNull(),
    service: text('service').notNull(),
    action: text('action').notNull(),
    params: text('params').notNull(),
    priority: integer('priority').notNull().default(0),
    overlap: text('overlap', { enum: SCHEDULE_OVERLAPS }).notNull(),
    catchUp: text('catch_up', { enum: SCHEDULE_CATCH_UPS }).notNull(),
    paused: integer('paused', { mode: 'boolean' }).notNull().default(false),
    // The fire time it waits for; null while paused or deleted.
    nextRunAt: integer('next_run_at'),
    dateCreated: integer('date_created').notNull(),
    dateUpdated: integer('date_updated').notNull(),
    // Deleted schedules are kept: their tasks still name them.
    dateDeleted: integer('date_deleted'),
  },
  (table) => [
    uniqueIndex('schedules_name').on(table.organisationId, table.name).where(sql`date_deleted IS NULL`),
    index('schedules_by_organisation').on(table.organisationId, table.id),
    // One timer for every schedule: it waits for the earliest of these.
    index('schedules_due').on(table.nextRunAt).where(sql`next_run_at IS NOT NULL`),
  ],
);

/** Exactly one row per schedule and fire time, whichever process fires it: the unique key decides. */
export const scheduleRuns = sqliteTable(
  'schedule_runs',
  {
    scheduleId: integer('schedule_id')
      .notNull()
      .references(() => schedules.id),
    scheduledFor: integer('scheduled_for').notNull(),
    outcome: text('outcome', { enum: SCHEDULE_RUN_OUTCOMES }).notNull(),
    // No foreign key: retention deletes tasks, and the run stays to say the fire time was served.
    taskId: integer('task_id'),
    dateCreated: integer('date_created').notNull(),
  },
  (table) => [primaryKey({ columns: [table.scheduleId, table.scheduledFor] })],
);

/** One row per process that runs a worker, kept by its heartbeat; deleted when it stops. */
export const workerProcesses = sqliteTable(
  'worker_processes',
  {
    // The worker's lease owner: the name its claims carry.
    owner: text('owner').primaryKey(),
    hostname: text('hostname').notNull(),
    pid: integer('pid').notNull(),
    concurrency: integer('concurrency').notNull(),
    // JSON list of "service.action".
    actions: text('actions').notNull(),
    running: integer('running').notNull(),
    startedAt: integer('started_at').notNull(),
    heartbeatAt: integer('heartbeat_at').notNull(),
  },
  (table) => [index('worker_processes_heartbeat').on(table.heartbeatAt)],
);
