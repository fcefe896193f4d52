import { randomBytes } from 'node:crypto';
import type { Catalog } from '../catalog/index.js';
import { StorageUnavailableError, storageUnavailable, type Storage } from '../storage/index.js';
import {
  MAX_BATCH_SUBMIT,
  MAX_RETRIEVAL_KEY_LENGTH,
  MAX_STATUS_IDS,
  RESULT_RETRY_WINDOW_MS,
  type BulkOutcome,
  type Health,
  type Readiness,
  type ResultDelivery,
  type TaskStats,
  type TaskEngine,
  type Viewer,
} from '../domain/api.js';
import { ConflictError, ForbiddenError, LimitExceededError, NotFoundError, requireAdmin, ValidationError } from '../domain/errors.js';
import type { PubSub } from '../domain/events.js';
import { throughputBuckets, throughputSeries, type QueueStats, type TaskCounts, type ThroughputBucket } from '../domain/aggregates.js';
import {
  checkKeyRateLimits,
  DEFAULT_RATE_LIMITS,
  effectiveRateLimits,
  type EffectiveRateLimits,
  type KeyRateLimits,
  type RateLimitDefaults,
} from '../domain/rate-limits.js';
import { silentLogger, type EngineLogger } from './logger.js';
import { publishChanges } from './publish.js';
import type { ServedActions } from '../storage/index.js';
import { lookupOncePerBatch, prepareSubmission } from './submission.js';
import type {
  Account,
  Actor,
  Allocation,
  ApiKey,
  ExecutionToken,
  KeyPermissions,
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
  TaskStatus,
  TaskWaitingFor,
} from '../domain/types.js';
import type { AllocationStatus, ExecutionOutcome } from '../domain/realtime.js';
import { RealtimeRuntime } from './realtime.js';
import { hashToken, TokenHashes } from './token-hash.js';
import { Worker } from './worker.js';
import { WorkerHeartbeat } from './heartbeat.js';
import { WORKER_ALIVE_MS, type WorkerProcess } from '../domain/workers.js';
import { cancelTasks, retryTask, retryTasks, type BulkDependencies } from './bulk.js';
import { RetentionSweep } from './retention.js';
import { Schedules } from '../schedules/service.js';
import { WebhookDeliverer, type WebhookAttemptReport, type WebhookDeliverySettings } from '../webhooks/delivery.js';
import { Webhooks } from '../webhooks/service.js';

export * from '../domain/api.js';
export * from '../domain/errors.js';
export * from '../domain/events.js';
export { StorageUnavailableError, storageUnavailable } from '../storage/index.js';
export type * from '../domain/types.js';
export type { EngineLogger } from './logger.js';
export type { AllocationStatus, ExecutionOutcome, ExecutionLog, ExecutionResult } from '../domain/realtime.js';

export interface EngineOptions {
  storage: Storage;
  catalog: Catalog;
  events?: PubSub;
  logger?: EngineLogger;
  /** Tasks run at once by this process's worker. */
  concurrency?: number;
  /** First retry delay; doubles with each attempt. */
  retryBaseMs?: number;
  /** How long a real-time call waits for a busy allocation. */
  realtimeWaitMs?: number;
  /** How long retrieved payloads stay for a retry with the same retrievalKey. */
  resultRetryWindowMs?: number;
  /** How long a claimed task stays its worker's without a renewal (default 30 s). */
  leaseMs?: number;
  /** Whether this process runs tasks at all: an API-only process does not (default true). */
  worker?: boolean;
  /** The actions this process's worker claims; every action of the catalog when absent. */
  actions?: ServedActions;
  /** How long terminal tasks are kept after they completed; absent or null keeps them for ever. */
  retentionMs?: number | null;
  /** The rate limits of keys without their own (DEFAULT_RATE_LIMITS when absent). */
  rateLimits?: RateLimitDefaults;
  /** How this process sends webhooks (DEFAULT_WEBHOOK_DELIVERY when absent). */
  webhooks?: WebhookDeliverySettings;
  /** Told of every webhook attempt this process made: for metrics. */
  onWebhookAttempt?: (report: WebhookAttemptReport) => void;
}

const TOKEN_PREFIX = 'tp_';
const HEALTH_CHECK_INTERVAL_MS = 1000;
/** Scrapes and readiness probes of any frequency read the database at most this often. */
const TASK_STATS_CACHE_MS = 5000;
const READINESS_CHECK_INTERVAL_MS = 1000;
const MAX_NAME_LENGTH = 200;
/** How often payloads past their retry window are deleted, and how many tasks' worth per statement. */
const EXPIRED_PAYLOAD_SWEEP_MS = 60_000;
const EXPIRED_PAYLOAD_BATCH = 500;
export const DEFAULT_LEASE_MS = 30_000;

/** A lease runs out at most this long before some process notices. */
function leaseSweepInterval(leaseMs: number): number {
  return Math.min(Math.max(Math.floor(leaseMs / 4), 100), 5000);
}

function checkedKeyName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_NAME_LENGTH) {
    throw new ValidationError('INVALID', `name must be 1 to ${MAX_NAME_LENGTH} characters`, 'name');
  }
  return trimmed;
}

function checkedRateLimits(input: unknown): KeyRateLimits | null {
  const checked = checkKeyRateLimits(input);
  if (!checked.ok) {
    throw new ValidationError('INVALID', `rateLimits.${checked.field}: ${checked.message}`, `rateLimits.${checked.field}`);
  }
  return checked.limits;
}

function newToken(): string {
  return TOKEN_PREFIX + randomBytes(24).toString('base64url');
}

function inOrder<T extends { id: number }>(ids: readonly number[], items: T[]): (T | null)[] {
  const byId = new Map(items.map((item) => [item.id, item]));
  return ids.map((id) => byId.get(id) ?? null);
}

export class Engine implements TaskEngine {
  readonly catalog: Catalog;
  readonly events: PubSub;
  readonly #storage: Storage;
  readonly #logger: EngineLogger;
  readonly #worker: Worker;
  readonly #realtime: RealtimeRuntime;
  readonly #resultRetryWindowMs: number;
  readonly #leaseMs: number;
  readonly #runsWorker: boolean;
  readonly #heartbeat: WorkerHeartbeat;
  readonly #rateLimitDefaults: RateLimitDefaults;
  readonly #retention: RetentionSweep;
  readonly schedules: Schedules;
  readonly webhooks: Webhooks;
  readonly #webhookDelivery: WebhookDeliverer;
  readonly #tokenHashes = new TokenHashes();
  #payloadSweep: NodeJS.Timeout | null = null;
  #leaseSweep: NodeJS.Timeout | null = null;
  /** From the worker's start to the beginning of its drain: a draining process is no longer ready. */
  #workerRunning = false;

  constructor(options: EngineOptions) {
    this.catalog = options.catalog;
    this.events = options.events ?? options.storage.events;
    this.#storage = options.storage;
    this.#logger = options.logger ?? silentLogger;
    this.#resultRetryWindowMs = options.resultRetryWindowMs ?? RESULT_RETRY_WINDOW_MS;
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.#runsWorker = options.worker ?? true;
    this.#rateLimitDefaults = options.rateLimits ?? DEFAULT_RATE_LIMITS;
    const concurrency = options.concurrency ?? 8;
    this.#worker = new Worker({
      queue: options.storage.queue,
      records: options.storage.records,
      catalog: options.catalog,
      events: this.events,
      logger: this.#logger,
      concurrency,
      retryBaseMs: options.retryBaseMs ?? 1000,
      leaseMs: this.#leaseMs,
      ...(options.actions ? { actions: options.actions } : {}),
    });
    this.#heartbeat = new WorkerHeartbeat({
      registry: options.storage.workers,
      logger: this.#logger,
      owner: this.#worker.owner,
      concurrency,
      actions: this.#worker.actions,
      running: () => this.#worker.running,
    });
    this.#retention = new RetentionSweep({
      records: options.storage.records,
      schedules: options.storage.schedules,
      retentionMs: options.retentionMs ?? null,
      logger: this.#logger,
    });
    const services = { storage: options.storage, catalog: options.catalog, events: this.events, logger: this.#logger };
    this.schedules = new Schedules(services);
    this.webhooks = new Webhooks(services);
    this.#webhookDelivery = new WebhookDeliverer({
      ...services,
      ...(options.webhooks ? { settings: options.webhooks } : {}),
      ...(options.onWebhookAttempt ? { onAttempt: options.onWebhookAttempt } : {}),
    });
    this.#realtime = new RealtimeRuntime({
      queue: options.storage.queue,
      records: options.storage.records,
      catalog: options.catalog,
      events: this.events,
      logger: this.#logger,
      waitMs: options.realtimeWaitMs ?? 250,
    });
  }

  get #queue() {
    return this.#storage.queue;
  }

  get #records() {
    return this.#storage.records;
  }

  /** Reclaims tasks whose worker's lease ran out, now and from then on, then starts the worker. */
  async start(): Promise<void> {
    await this.#reclaimExpiredLeases();
    this.#leaseSweep = setInterval(() => void this.#reclaimExpiredLeases(), leaseSweepInterval(this.#leaseMs)).unref();
    await this.#warnOfMissingActions();
    await this.#realtime.start();
    if (this.#runsWorker) {
      this.#worker.start();
      this.#workerRunning = true;
      await this.#heartbeat.start();
    }
    await this.#deleteExpiredPayloads();
    this.#payloadSweep = setInterval(() => void this.#deleteExpiredPayloads(), EXPIRED_PAYLOAD_SWEEP_MS).unref();
    // Every process sweeps, whatever its role; on PostgreSQL a lock lets one of them do the work at a time.
    this.#retention.start();
    // Every process fires schedules and sends webhooks: the database decides which one does each.
    await this.schedules.start();
    this.#webhookDelivery.start();
  }

  /** One retention sweep now, as the timer runs it: the number of tasks it deleted (0 when retention is off). */
  sweepRetention(now = Date.now()): Promise<number> {
    return this.#retention.sweep(now);
  }

  /** Tasks queued for an action a later start no longer has wait, unclaimed: say so once per action. */
  async #warnOfMissingActions(): Promise<void> {
    for (const { service, action, pending } of await this.#queue.pendingByAction()) {
      if (this.catalog.action(service, action)) continue;
      this.#logger.warn({ service, action, pending }, 'tasks wait for an action this server does not have');
    }
  }

  /**
   * Every process sweeps, whatever its role: a dead worker's tasks are requeued as long as any
   * process runs. The statement changes each task once, so processes sweeping together are safe.
   */
  async #reclaimExpiredLeases(): Promise<void> {
    try {
      const reclaimed = await this.#queue.reclaimExpiredLeases(Date.now());
      if (reclaimed.length === 0) return;
      this.#logger.warn({ tasks: reclaimed.length }, 'reclaimed tasks whose worker stopped renewing its lease');
      publishChanges(this.events, reclaimed, 'STATE_CHANGED');
    } catch (error) {
      this.#logger.warn({ err: error }, 'reclaiming tasks of expired leases failed; the next sweep tries again');
    }
  }

  /** Retry windows end whether or not anyone asks again: their payloads are deleted here. */
  async #deleteExpiredPayloads(): Promise<void> {
    try {
      while ((await this.#records.deleteExpiredPayloads(Date.now(), EXPIRED_PAYLOAD_BATCH)) === EXPIRED_PAYLOAD_BATCH) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      // The next sweep tries again; until then the payloads only take room.
      this.#logger.warn({ err: error }, 'deleting payloads past their retry window failed');
    }
  }

  /**
   * Stops claiming; running tasks get `graceMs` to finish, the rest go back to the queue. Real-time
   * calls already answered are recorded.
   */
  async stop(graceMs: number): Promise<void> {
    this.#workerRunning = false;
    if (this.#payloadSweep) clearInterval(this.#payloadSweep);
    if (this.#leaseSweep) clearInterval(this.#leaseSweep);
    await Promise.all([
      this.#worker.stop(graceMs).then(() => (this.#runsWorker ? this.#heartbeat.stop() : undefined)),
      this.#realtime.stop(graceMs),
      this.#retention.stop(),
      this.schedules.stop(),
      this.#webhookDelivery.stop(),
    ]);
  }

  #health: { checkedAt: number; result: Promise<Health> } | null = null;

  // A probe writes to the database: at most one a second, however often a load balancer asks.
  health(): Promise<Health> {
    const now = Date.now();
    if (this.#health && now - this.#health.checkedAt < HEALTH_CHECK_INTERVAL_MS) return this.#health.result;
    const result = this.#storage.checkWritable().then(
      (): Health => ({ status: 'ok' }),
      (error: unknown): Health => {
        if (!(error instanceof StorageUnavailableError)) throw error;
        return { status: 'unavailable', reason: error.message };
      },
    );
    this.#health = { checkedAt: now, result };
    return result;
  }

  #readiness: { checkedAt: number; result: Promise<Readiness> } | null = null;

  readiness(): Promise<Readiness> {
    if (this.#runsWorker && !this.#workerRunning) {
      return Promise.resolve({ status: 'not-ready', reason: 'the worker is not running (starting or draining)' });
    }
    const now = Date.now();
    if (this.#readiness && now - this.#readiness.checkedAt < READINESS_CHECK_INTERVAL_MS) return this.#readiness.result;
    const result = this.#storage.stats.pendingMigrations().then(
      (pending): Readiness =>
        pending === 0
          ? { status: 'ready' }
          : { status: 'not-ready', reason: `${pending} migration(s) not applied: run taskport migrate, or restart` },
      (error: unknown): Readiness => {
        this.#logger.warn({ err: error }, 'readiness: the database did not answer');
        return { status: 'not-ready', reason: storageUnavailable(error)?.message ?? 'the database did not answer' };
      },
    );
    this.#readiness = { checkedAt: now, result };
    return result;
  }

  #taskStats: { checkedAt: number; result: Promise<TaskStats> } | null = null;

  taskStats(): Promise<TaskStats> {
    const now = Date.now();
    if (this.#taskStats && now - this.#taskStats.checkedAt < TASK_STATS_CACHE_MS) return this.#taskStats.result;
    const { stats } = this.#storage;
    const result = Promise.all([stats.tasksByState(), stats.queueDepths()]).then(([byState, queues]) => ({ byState, queues }));
    // A failed read is not kept: the next scrape tries again.
    result.catch(() => {
      if (this.#taskStats?.result === result) this.#taskStats = null;
    });
    this.#taskStats = { checkedAt: now, result };
    return result;
  }

  get runningTasks(): number {
    return this.#worker.running;
  }

  // ------------------------------------------------------------ keys and organisations

  /**
   * Creates a key outside of any request (CLI, first start), creating the organisation if new.
   * `token` lets an operator choose it; otherwise one is generated.
   */
  async provisionApiKey(input: {
    organisation: string;
    role: Role;
    name: string;
    token?: string;
    permissions?: unknown;
    rateLimits?: unknown;
  }): Promise<{ apiKey: ApiKey; token: string; organisation: Organisation }> {
    const permissions = this.#checkedPermissions(input.permissions);
    const rateLimits = checkedRateLimits(input.rateLimits);
    const organisation = await this.#records.findOrCreateOrganisation(input.organisation, Date.now());
    const token = input.token ?? newToken();
    const apiKey = await this.#records.createApiKey(
      { organisationId: organisation.id, name: input.name, role: input.role, tokenHash: hashToken(token), permissions, rateLimits },
      Date.now(),
    );
    return { apiKey, token, organisation };
  }

  /** On a database without keys: an ADMIN key of organisation `default`. Returns its token when it made one. */
  async bootstrap(token: string | undefined): Promise<{ token: string; generated: boolean } | null> {
    if ((await this.#records.countApiKeys()) > 0) return null;
    try {
      const created = await this.provisionApiKey({ organisation: 'default', role: 'ADMIN', name: 'bootstrap', token });
      return { token: created.token, generated: token === undefined };
    } catch (error) {
      // Processes starting together on an empty database race to create the one configured key.
      if (token !== undefined && (await this.#records.findActiveKey(hashToken(token)))) return null;
      throw error;
    }
  }

  async authenticate(token: string): Promise<Viewer | null> {
    if (token.length === 0) return null;
    return this.#records.findActiveKey(this.#tokenHashes.of(token));
  }

  async createApiKey(
    actor: Actor,
    input: { name: string; role: Role; permissions?: unknown; rateLimits?: unknown },
  ): Promise<{ apiKey: ApiKey; token: string }> {
    requireAdmin(actor);
    const name = checkedKeyName(input.name);
    const permissions = this.#permissionsWithinActor(actor, input.permissions);
    const rateLimits = checkedRateLimits(input.rateLimits);
    const token = newToken();
    const apiKey = await this.#records.createApiKey(
      { organisationId: actor.organisationId, name, role: input.role, tokenHash: hashToken(token), permissions, rateLimits },
      Date.now(),
    );
    return { apiKey, token };
  }

  async updateApiKey(actor: Actor, keyId: number, input: { name?: string | null; rateLimits?: unknown }): Promise<ApiKey> {
    requireAdmin(actor);
    const [target] = await this.#records.getApiKeys(actor.organisationId, [keyId]);
    if (!target) throw new NotFoundError('no API key', { typename: 'ApiKey', id: keyId });
    if (this.#mayDoMore(target.permissions, actor.permissions ?? null)) {
      throw new ForbiddenError('This key may not change a key whose permissions go beyond its own.');
    }
    const changes: { name?: string; rateLimits?: KeyRateLimits | null } = {};
    if (input.name !== undefined && input.name !== null) changes.name = checkedKeyName(input.name);
    if (input.rateLimits !== undefined) changes.rateLimits = checkedRateLimits(input.rateLimits);
    if (Object.keys(changes).length === 0) return target;
    const apiKey = await this.#records.updateApiKey(actor.organisationId, keyId, changes);
    if (!apiKey) throw new NotFoundError('no API key', { typename: 'ApiKey', id: keyId });
    return apiKey;
  }

  rateLimitsOf(key: ApiKey): EffectiveRateLimits {
    return effectiveRateLimits(key.rateLimits, this.#rateLimitDefaults);
  }

  /**
   * A key cannot hand out more than it holds, or a narrowed ADMIN could mint an unrestricted one:
   * omitted permissions are the actor's own, and explicit ones must lie within them.
   */
  #permissionsWithinActor(actor: Actor, requested: unknown): KeyPermissions | null {
    const own = actor.permissions ?? null;
    const permissions = this.#checkedPermissions(requested);
    if (permissions === null) return own;
    const beyond = this.catalog.permissionsBeyond(permissions, own);
    if (beyond !== null) {
      throw new ValidationError(
        'PERMISSIONS_EXCEEDED',
        `permissions may not go beyond those of the key creating it; this key may not grant ${beyond}`,
        'permissions',
      );
    }
    return permissions;
  }

  #checkedPermissions(permissions: unknown): KeyPermissions | null {
    if (permissions === null || permissions === undefined) return null;
    const problem = this.catalog.checkKeyPermissions(permissions);
    if (problem) throw new ValidationError('INVALID', problem, 'permissions');
    return permissions as KeyPermissions;
  }

  async revokeApiKey(actor: Actor, keyId: number): Promise<ApiKey> {
    requireAdmin(actor);
    const [target] = await this.#records.getApiKeys(actor.organisationId, [keyId]);
    if (!target) throw new NotFoundError('no API key', { typename: 'ApiKey', id: keyId });
    // As for creating keys: a narrowed ADMIN key must not lock out the keys that may do more than it.
    if (this.#mayDoMore(target.permissions, actor.permissions ?? null)) {
      throw new ForbiddenError('This key may not revoke a key whose permissions go beyond its own.');
    }
    const apiKey = await this.#records.revokeApiKey(actor.organisationId, keyId, Date.now());
    if (!apiKey) throw new NotFoundError('no API key', { typename: 'ApiKey', id: keyId });
    this.events.publish('keyRevoked', apiKey.id, { keyId: apiKey.id });
    return apiKey;
  }

  #mayDoMore(permissions: KeyPermissions | null, than: KeyPermissions | null): boolean {
    if (than === null) return false;
    return permissions === null || this.catalog.permissionsBeyond(permissions, than) !== null;
  }

  async listApiKeys(actor: Actor): Promise<ApiKey[]> {
    requireAdmin(actor);
    return this.#records.listApiKeys(actor.organisationId);
  }

  async getApiKeys(actor: Actor, ids: readonly number[]): Promise<(ApiKey | null)[]> {
    return inOrder(ids, await this.#records.getApiKeys(actor.organisationId, ids));
  }

  async getOrganisation(actor: Actor): Promise<Organisation> {
    const organisation = await this.#records.getOrganisation(actor.organisationId);
    if (!organisation) throw new NotFoundError('the organisation of this key no longer exists');
    return organisation;
  }

  async setRetrievalProtocol(actor: Actor, protocol: RetrievalProtocol): Promise<Organisation> {
    requireAdmin(actor);
    const organisation = await this.#records.setRetrievalProtocol(actor.organisationId, protocol);
    if (!organisation) throw new NotFoundError('the organisation of this key no longer exists');
    return organisation;
  }

  // ------------------------------------------------------------ accounts

  #checkAccountInput(input: { service: string; username: string }): void {
    if (!this.catalog.service(input.service)) {
      throw new ValidationError('INVALID_SERVICE', `no service ${input.service}`, 'service');
    }
    const username = input.username;
    if (username.trim().length === 0 || username.length > MAX_NAME_LENGTH) {
      throw new ValidationError('INVALID', `username must be 1 to ${MAX_NAME_LENGTH} characters`, 'username');
    }
  }

  async registerAccount(actor: Actor, input: { service: string; username: string }): Promise<Account> {
    this.#checkAccountInput(input);
    const account = await this.#records.registerAccount(actor.organisationId, input.service, input.username, Date.now());
    if (!account) {
      throw new ConflictError('ALREADY_EXISTS', `account ${input.username} is already registered for ${input.service}`);
    }
    return account;
  }

  async deregisterAccount(actor: Actor, input: { service: string; username: string }): Promise<Account> {
    this.#checkAccountInput(input);
    const account = await this.#records.deregisterAccount(
      actor.organisationId,
      input.service,
      input.username,
      Date.now(),
    );
    if (!account) throw new NotFoundError(`no account ${input.username} is registered for ${input.service}`);
    return account;
  }

  async listAccounts(actor: Actor, service: string | null, page: PageRequest): Promise<Page<Account>> {
    return this.#records.listAccounts(actor.organisationId, service, page);
  }

  async getAccounts(actor: Actor, ids: readonly number[]): Promise<(Account | null)[]> {
    return inOrder(ids, await this.#records.getAccounts(actor.organisationId, ids));
  }

  // ------------------------------------------------------------ tasks

  async submitTask(actor: Actor, input: SubmitTaskInput): Promise<Task> {
    const organisation = await this.#organisationOf(actor);
    const prepared = await prepareSubmission(this.catalog, this.#records, actor, organisation, input, null);
    const [task] = await this.#enqueue([prepared]);
    return task!;
  }

  async submitTasks(actor: Actor, inputs: readonly SubmitTaskInput[]): Promise<{ tasks: Task[]; poll: string }> {
    if (inputs.length > MAX_BATCH_SUBMIT) {
      throw new LimitExceededError(`at most ${MAX_BATCH_SUBMIT} tasks per batch; got ${inputs.length}`, MAX_BATCH_SUBMIT);
    }
    if (inputs.length === 0) throw new ValidationError('INVALID', 'a batch needs at least one task', 'inputs');
    const polls = new Set(inputs.map((input) => input.poll).filter((poll) => poll !== null && poll !== undefined));
    if (polls.size > 1) throw new ValidationError('INVALID', 'the tasks of a batch share one poll', 'poll');
    const poll = [...polls][0] ?? `poll_${randomBytes(12).toString('base64url')}`;
    const organisation = await this.#organisationOf(actor);
    const accounts = lookupOncePerBatch(this.#records);
    const prepared = [];
    for (const [index, input] of inputs.entries()) {
      prepared.push(await prepareSubmission(this.catalog, accounts, actor, organisation, { ...input, poll }, index));
    }
    return { tasks: await this.#enqueue(prepared), poll };
  }

  async #organisationOf(actor: Actor): Promise<Organisation> {
    return actor.organisation ?? (await this.getOrganisation(actor));
  }

  async #enqueue(prepared: Parameters<Storage['queue']['enqueue']>[0]): Promise<Task[]> {
    const result = await this.#queue.enqueue(prepared, Date.now());
    if (!result.ok) throw new NotFoundError('dependsOn: no task', { typename: 'Task', id: result.missingDependency });
    const created = result.tasks.filter((entry) => entry.created).map((entry) => entry.task);
    publishChanges(this.events, created, 'CREATED');
    return result.tasks.map((entry) => entry.task);
  }

  async cancelTask(actor: Actor, taskId: number): Promise<Task> {
    const result = await this.#queue.cancel(actor.organisationId, taskId, Date.now());
    switch (result.outcome) {
      case 'not-found':
        throw new NotFoundError('no task', { typename: 'Task', id: taskId });
      case 'terminal':
        throw new ConflictError('NOT_CANCELLABLE', `the task has already ended ${result.task.state}`);
      case 'requested':
        this.events.publish('cancelRequested', taskId, { taskId });
        return result.task;
      case 'cancelled':
        publishChanges(this.events, result.changed, 'STATE_CHANGED');
        return result.changed[0]!;
    }
  }

  get #bulk(): BulkDependencies {
    return { queue: this.#queue, records: this.#records, catalog: this.catalog, events: this.events };
  }

  retryTask(actor: Actor, taskId: number): Promise<Task> {
    return retryTask(this.#bulk, actor, taskId);
  }

  cancelTasks(actor: Actor, filter: TaskFilter, limit: number | null): Promise<BulkOutcome> {
    return cancelTasks(this.#bulk, actor, filter, limit);
  }

  retryTasks(actor: Actor, filter: TaskFilter, limit: number | null): Promise<BulkOutcome> {
    return retryTasks(this.#bulk, actor, filter, limit);
  }

  async taskRetries(taskIds: readonly number[]): Promise<Map<number, TaskRetry[]>> {
    const byTask = new Map<number, TaskRetry[]>(taskIds.map((id) => [id, []]));
    for (const run of await this.#records.taskRetries(taskIds)) byTask.get(run.taskId)?.push(run);
    return byTask;
  }

  async getTasks(actor: Actor, ids: readonly number[]): Promise<(Task | null)[]> {
    return inOrder(ids, await this.#records.getTasks(actor.organisationId, ids));
  }

  async listTasks(actor: Actor, filter: TaskFilter, page: PageRequest): Promise<Page<Task>> {
    return this.#records.listTasks(actor.organisationId, filter, page);
  }

  async taskCounts(actor: Actor, filter: TaskFilter): Promise<TaskCounts> {
    return this.#storage.aggregates.taskCounts(actor.organisationId, filter);
  }

  async taskThroughput(actor: Actor, since: Date, bucketSeconds: number): Promise<ThroughputBucket[]> {
    const now = Date.now();
    const series = throughputSeries(since.getTime(), bucketSeconds, now);
    const rows = await this.#storage.aggregates.completedByBucket(actor.organisationId, series.since, now, series.bucketMs);
    return throughputBuckets(series, rows);
  }

  async queueStats(actor: Actor): Promise<QueueStats[]> {
    const queues = await this.#storage.aggregates.queueFigures(actor.organisationId, Date.now());
    return queues.map(({ oldestPendingAt, ...queue }) => ({
      ...queue,
      oldestPendingDate: oldestPendingAt === null ? null : new Date(oldestPendingAt),
    }));
  }

  async taskStatuses(actor: Actor, ids: readonly (number | null)[]): Promise<TaskStatus[]> {
    if (ids.length > MAX_STATUS_IDS) {
      throw new LimitExceededError(`at most ${MAX_STATUS_IDS} ids per request; got ${ids.length}`, MAX_STATUS_IDS);
    }
    const wanted = [...new Set(ids.filter((id): id is number => id !== null))];
    // Positions after the statuses, and only for the tasks those found PENDING, so that no entry
    // pairs a position with another state. On SQLite, whose reads hold the event loop, the statuses
    // are read in chunks (src/storage/sqlite/queue/statuses.ts) and the positions a turn later.
    const rows = await this.#queue.statuses(actor.organisationId, wanted);
    const pending: number[] = [];
    for (const row of rows.values()) if (row.state === 'PENDING') pending.push(row.id);
    await new Promise((resolve) => setImmediate(resolve));
    const positions = pending.length === 0 ? new Map<number, number>() : await this.#queue.queuePositions(pending);
    await new Promise((resolve) => setImmediate(resolve));
    return ids.map((id) => {
      const row = id === null ? undefined : rows.get(id);
      if (!row) {
        return {
          id: id ?? 0,
          found: false,
          state: null,
          queuePosition: null,
          resultRetrieved: null,
          retrievalProtocol: null,
          error: null,
        };
      }
      // The not-found entry's property order: one shape for every entry is cheaper to build and read.
      return {
        id: row.id,
        found: true,
        state: row.state,
        queuePosition: positions.get(row.id) ?? null,
        resultRetrieved: row.resultRetrieved,
        retrievalProtocol: row.retrievalProtocol,
        error: row.error,
      };
    });
  }

  waitingFor(task: Task): TaskWaitingFor | null {
    return task.state === 'PENDING' && !this.catalog.action(task.service, task.type) ? 'NO_WORKER' : null;
  }

  async queuePositions(taskIds: readonly number[]): Promise<Map<number, number>> {
    return this.#queue.queuePositions(taskIds);
  }

  async taskLogs(
    taskIds: readonly number[],
    minLevel: LogLevel | null,
    page: PageRequest,
  ): Promise<Map<number, Page<TaskLog>>> {
    return this.#records.taskLogs(taskIds, minLevel, page);
  }

  async getLogs(ids: readonly number[]): Promise<TaskLog[]> {
    return this.#records.getLogs(ids);
  }

  async taskResults(taskIds: readonly number[]): Promise<Map<number, TaskResult[]>> {
    const byTask = new Map<number, TaskResult[]>(taskIds.map((id) => [id, []]));
    for (const result of await this.#records.taskResults(taskIds)) byTask.get(result.taskId)?.push(result);
    return byTask;
  }

  async getResults(actor: Actor, ids: readonly number[]): Promise<(TaskResult | null)[]> {
    return inOrder(ids, await this.#records.getResults(actor.organisationId, ids));
  }

  async dependencies(taskIds: readonly number[]): Promise<Map<number, number[]>> {
    const byTask = new Map<number, number[]>(taskIds.map((id) => [id, []]));
    for (const edge of await this.#records.dependencies(taskIds)) byTask.get(edge.taskId)?.push(edge.dependsOnId);
    return byTask;
  }

  /** Ids only: the caller reads the tasks through the actor's own view of them. */
  dependents(taskId: number, limit: number): Promise<number[]> {
    return this.#records.dependents(taskId, limit);
  }

  async retrieveResults(actor: Actor, taskId: number, retrievalKey: string | null): Promise<TaskResultPayload[]> {
    if (retrievalKey !== null && (retrievalKey.length === 0 || retrievalKey.length > MAX_RETRIEVAL_KEY_LENGTH)) {
      throw new ValidationError('INVALID', `retrievalKey must be 1 to ${MAX_RETRIEVAL_KEY_LENGTH} characters`, 'retrievalKey');
    }
    const now = Date.now();
    const request = {
      keyHash: retrievalKey === null ? null : hashToken(retrievalKey),
      keepUntil: now + this.#resultRetryWindowMs,
    };
    const retrieved = await this.#records.retrieveResults(actor.organisationId, taskId, request, now);
    switch (retrieved.outcome) {
      case 'not-found':
        throw new NotFoundError('no task', { typename: 'Task', id: taskId });
      case 'already-retrieved':
        throw new ConflictError('ALREADY_RETRIEVED', 'the results of this task have already been retrieved');
      case 'not-completed':
        throw new ConflictError('NOT_COMPLETED', 'the task has not finished yet');
      case 'retrieved':
        return retrieved.payloads;
    }
  }

  async claimResultDelivery(resultId: number): Promise<ResultDelivery | null> {
    const claim = randomBytes(12).toString('base64url');
    const payload = await this.#records.claimResultDelivery(resultId, claim);
    if (!payload) return null;
    return {
      payload,
      confirm: () => this.#records.confirmResultDelivery(resultId, claim, Date.now()),
      release: () => this.#records.releaseResultDelivery(resultId, claim),
    };
  }

  // ------------------------------------------------------------ real-time execution

  createAllocation(
    actor: Actor,
    input: { name: string; service: string; action: string; instances: number; timeoutMs?: number | null },
  ): Promise<Allocation> {
    return this.#realtime.createAllocation(actor, input);
  }

  async workerProcesses(actor: Actor): Promise<WorkerProcess[]> {
    requireAdmin(actor);
    return this.#storage.workers.alive(Date.now() - WORKER_ALIVE_MS);
  }

  listAllocations(actor: Actor): Promise<AllocationStatus[]> {
    return this.#realtime.listAllocations(actor);
  }

  getAllocations(actor: Actor, ids: readonly number[]): Promise<(AllocationStatus | null)[]> {
    return this.#realtime.getAllocations(actor, ids);
  }

  deleteAllocation(actor: Actor, allocationId: number): Promise<Allocation> {
    return this.#realtime.deleteAllocation(actor, allocationId);
  }

  generateExecutionToken(
    actor: Actor,
    allocationId: number,
    ttlSeconds: number | null,
  ): Promise<{ token: string; executionToken: ExecutionToken }> {
    return this.#realtime.generateExecutionToken(actor, allocationId, ttlSeconds);
  }

  revokeExecutionToken(actor: Actor, tokenId: number): Promise<ExecutionToken> {
    return this.#realtime.revokeExecutionToken(actor, tokenId);
  }

  execute(allocationId: number, token: string, params: unknown): Promise<ExecutionOutcome> {
    return this.#realtime.execute(allocationId, token, params);
  }
}

export function createEngine(options: EngineOptions): Engine {
  return new Engine(options);
}
