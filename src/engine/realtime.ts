import { randomBytes } from 'node:crypto';
import type { ActionDefinition, Catalog, HandlerContext, HandlerTask, OutputFailure } from '../catalog/index.js';
import { TaskFailure } from '../catalog/index.js';
import type { ExecutionRecord, QueueStore, RecordStore } from '../storage/index.js';
import { NotFoundError, requireAdmin, ValidationError } from '../domain/errors.js';
import { EVERYONE, type ExecutionAccessChanged, type PubSub } from '../domain/events.js';
import type { EngineLogger } from './logger.js';
import { acceptLog, acceptResult, handlerFailure, type OutputTally } from './output.js';
import { publishChanges } from './publish.js';
import { RunAbort } from './run-abort.js';
import { REMEMBERED_TOKENS, TokenHashes } from './token-hash.js';
import type { Actor, Allocation, ExecutionToken } from '../domain/types.js';
import {
  DEFAULT_EXECUTION_TIMEOUT_MS,
  DEFAULT_TOKEN_TTL_SECONDS,
  MAX_INSTANCES,
  MAX_TOKEN_TTL_SECONDS,
  type AllocationStatus,
  type ExecutionLog,
  type ExecutionOutcome,
  type ExecutionResult,
} from '../domain/realtime.js';
import { RunAborted } from './worker.js';


// What a call's race ends on besides the handler's own value, which may be any string.
const TIMED_OUT = Symbol('timed out');
const REFUSED = Symbol('a result was refused');
const MAX_EXECUTION_TIMEOUT_MS = 15 * 60_000;
const TOKEN_PREFIX = 'tpx_';
/** Task ids reserved at a time for calls, whose answer names a task written after it is sent. */
const RESERVED_IDS_PER_BLOCK = 256;
/** How long a timed-out handler gets to notice its signal, so that what it logs is recorded. */
const ABORT_SETTLE_MS = 1000;
const MAX_NAME_LENGTH = 200;
const FAILED_RECORD_RETRY_MS = 1000;
/** How long an answered call may wait to be written as a task, and how many may wait. */
const RECORD_INTERVAL_MS = 5;
const RECORD_BATCH_SIZE = 200;
/** Live tokens remembered; past it the cache starts again, and calls read their token from the database. */
const LIVE_TOKEN_CACHE_SIZE = 100_000;
/**
 * How long a remembered token is trusted without reading it again: the bound on how long a
 * revocation whose event was lost (the bus was disconnected) goes unnoticed by this process.
 */
const TOKEN_RECHECK_MS = 5000;
const MAX_UNRECORDED = 100_000;

interface Instance {
  prepared: unknown;
  busy: boolean;
}

/** What every call of an allocation tells its handler about whose it is. */
type AllocationOwner = Pick<HandlerTask, 'organisation' | 'keyName'>;

interface KnownToken {
  id: number;
  allocationId: number;
  expiresAt: number;
  /** When the database last said it is live. */
  checkedAt: number;
}

/** The warm instances of one allocation, and the calls waiting for one of them. */
class InstancePool {
  readonly #instances: Instance[];
  readonly #waiting: ((instance: Instance | null) => void)[] = [];
  executionsNotRecorded = 0;

  constructor(
    readonly allocation: Allocation,
    readonly action: ActionDefinition<any>,
    prepared: unknown[],
    /** Values of permissioned parameters calls may use: all the catalog allows. */
    readonly permitted: Record<string, string[]>,
    readonly owner: AllocationOwner,
  ) {
    this.#instances = prepared.map((state) => ({ prepared: state, busy: false }));
  }

  get busy(): number {
    return this.#instances.filter((instance) => instance.busy).length;
  }

  /** A free instance, waiting at most `waitMs` for one; null when none came free in time. */
  acquire(waitMs: number): Promise<Instance | null> | Instance {
    const free = this.#instances.find((instance) => !instance.busy);
    if (free) {
      free.busy = true;
      return free;
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const index = this.#waiting.indexOf(handOver);
        if (index >= 0) this.#waiting.splice(index, 1);
        resolve(null);
      }, waitMs);
      const handOver = (instance: Instance | null) => {
        clearTimeout(timer);
        resolve(instance);
      };
      this.#waiting.push(handOver);
    });
  }

  release(instance: Instance): void {
    const next = this.#waiting.shift();
    if (next) next(instance);
    else instance.busy = false;
  }

  close(): void {
    for (const waiter of this.#waiting.splice(0)) waiter(null);
  }
}

export interface RealtimeOptions {
  queue: QueueStore;
  records: RecordStore;
  catalog: Catalog;
  events: PubSub;
  logger: EngineLogger;
  /** How long a call waits for a busy allocation's instance before it is told to come back. */
  waitMs: number;
}

/**
 * Allocations: warm instances of one action, reserved for calls that cannot wait in a queue. A
 * call runs at once on a free instance and is answered from memory; it is written as a task
 * afterwards, with other calls, in one transaction.
 *
 * Every process that serves execution URLs warms instances of its own for every allocation
 * (capacity is per process), and caches tokens. An allocation or token another process created
 * is read from the database when a call first names it; one another process deleted or revoked
 * is forgotten when its `executionAccess` event arrives.
 */
export class RealtimeRuntime {
  readonly #options: RealtimeOptions;
  readonly #pools = new Map<number, InstancePool>();
  /** Live tokens by hash: checking one on every call must not cost a query. */
  readonly #tokens = new Map<string, KnownToken>();
  /** Hashes the database does not know as live: a token never becomes live after being refused. */
  readonly #refusedTokens = new Set<string>();
  /** Token reads under way, so that concurrent calls with one new token read it once. */
  readonly #tokenReads = new Map<string, Promise<KnownToken | null>>();
  /** Counts executionAccess events: a token read that one overtook is used, not remembered. */
  #accessChanges = 0;
  /** Per allocation, the reconciliation with the database under way: one at a time, in order. */
  readonly #syncs = new Map<number, Promise<InstancePool | null>>();
  /** Allocations this process cannot serve (no such action here, or preparing failed): their calls are refused. */
  readonly #unservable = new Set<number>();
  #stopListening: (() => void) | null = null;
  readonly #tokenHashes = new TokenHashes();
  /** Ids reserved and not yet handed out, the next one last. */
  #reserved: number[] = [];
  #reserving: Promise<void> | null = null;
  #unrecorded: ExecutionRecord[] = [];
  #recordScheduled = false;
  #recording: Promise<void> = Promise.resolve();
  #stopping = false;
  #recordFailing = false;
  /** Calls running now, and timed-out ones still settling: shutdown waits for them to be recorded. */
  readonly #running = new Set<Promise<unknown>>();

  constructor(options: RealtimeOptions) {
    this.#options = options;
  }

  /** Warms every live allocation up again, as after a restart. */
  async start(): Promise<void> {
    const { records, events } = this.#options;
    // Listening first: a change made elsewhere while this process warms up is not missed.
    this.#stopListening = events.listen('executionAccess', EVERYONE, (event) => this.#accessChanged(event));
    for (const allocation of await records.listAllocations(null)) await this.#sync(allocation.id, allocation);
    const now = Date.now();
    for (const token of await records.liveExecutionTokens(now)) this.#remember(token.tokenHash, token, now);
  }

  /** Another process, or this one, changed the allocation or its tokens: what is cached of it is read again. */
  #accessChanged({ allocationId }: ExecutionAccessChanged): void {
    this.#accessChanges += 1;
    this.#forgetTokens((token) => token.allocationId === allocationId);
    void this.#sync(allocationId).catch((error: unknown) => {
      this.#options.logger.error({ err: error, allocation: allocationId }, 'reading a changed allocation failed');
    });
  }

  /**
   * Brings this process's pool of the allocation in line with the database: closed when the
   * allocation is gone, warmed when it is new here. `known` is the allocation as just read.
   */
  #sync(allocationId: number, known?: Allocation): Promise<InstancePool | null> {
    const previous = this.#syncs.get(allocationId) ?? Promise.resolve(null);
    const next = previous.catch(() => null).then(() => this.#syncNow(allocationId, known));
    this.#syncs.set(allocationId, next);
    const forget = () => {
      if (this.#syncs.get(allocationId) === next) this.#syncs.delete(allocationId);
    };
    next.then(forget, forget);
    return next;
  }

  async #syncNow(allocationId: number, known?: Allocation): Promise<InstancePool | null> {
    const allocation =
      known ?? (await this.#options.records.listAllocations(null)).find((live) => live.id === allocationId);
    const pool = this.#pools.get(allocationId);
    if (!allocation) {
      pool?.close();
      this.#pools.delete(allocationId);
      this.#unservable.delete(allocationId);
      return null;
    }
    if (pool) return pool;
    if (this.#stopping || this.#unservable.has(allocationId)) return null;
    const { catalog, logger } = this.#options;
    const action = catalog.action(allocation.service, allocation.action);
    if (!action) {
      this.#unservable.add(allocationId);
      logger.warn({ allocation: allocationId }, 'allocation names an action this server does not have');
      return null;
    }
    try {
      const prepared = await prepareInstances(action, allocation.instances);
      const owner = await this.#ownerOf(allocation.organisationId, allocation.keyId);
      const warmed = this.#pool(allocation, action, prepared, owner);
      if (this.#stopping) return null;
      this.#pools.set(allocationId, warmed);
      return warmed;
    } catch (error) {
      this.#unservable.add(allocationId);
      logger.error({ err: error, allocation: allocationId }, 'preparing an allocation failed; its calls are refused');
      return null;
    }
  }

  #remember(tokenHash: string, token: Pick<ExecutionToken, 'id' | 'allocationId' | 'expiresAt'>, checkedAt: number): KnownToken {
    if (this.#tokens.size >= LIVE_TOKEN_CACHE_SIZE) this.#tokens.clear();
    const known = { id: token.id, allocationId: token.allocationId, expiresAt: token.expiresAt.getTime(), checkedAt };
    this.#tokens.set(tokenHash, known);
    return known;
  }

  #forgetTokens(matching: (token: KnownToken) => boolean): void {
    for (const [hash, token] of this.#tokens) if (matching(token)) this.#tokens.delete(hash);
  }

  /** The live token of this hash, from the cache while it is fresh, else from the database. */
  #liveToken(tokenHash: string): Promise<KnownToken | null> | KnownToken | null {
    const known = this.#tokens.get(tokenHash);
    if (known && Date.now() - known.checkedAt <= TOKEN_RECHECK_MS) return known;
    if (!known && this.#refusedTokens.has(tokenHash)) return null;
    let reading = this.#tokenReads.get(tokenHash);
    if (!reading) {
      reading = this.#readToken(tokenHash);
      this.#tokenReads.set(tokenHash, reading);
      const forget = () => this.#tokenReads.delete(tokenHash);
      reading.then(forget, forget);
    }
    return reading;
  }

  async #readToken(tokenHash: string): Promise<KnownToken | null> {
    const changesBefore = this.#accessChanges;
    const now = Date.now();
    let token: ExecutionToken | null;
    try {
      token = await this.#options.records.findLiveExecutionToken(tokenHash, now);
    } catch (error) {
      // Calls are answered from memory while the database is away: a token known here stays
      // trusted, and is read again a recheck interval later.
      const known = this.#tokens.get(tokenHash);
      if (!known) throw error;
      known.checkedAt = now;
      return known;
    }
    if (!token) {
      this.#tokens.delete(tokenHash);
      if (this.#refusedTokens.size >= REMEMBERED_TOKENS) this.#refusedTokens.clear();
      this.#refusedTokens.add(tokenHash);
      return null;
    }
    const known = { id: token.id, allocationId: token.allocationId, expiresAt: token.expiresAt.getTime(), checkedAt: now };
    // A revocation announced while the read was under way may have come after it: not remembered.
    return changesBefore === this.#accessChanges ? this.#remember(tokenHash, token, now) : known;
  }

  /** Refuses new calls, lets running ones finish within `graceMs`, and records every answered call. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#stopListening?.();
    this.#stopListening = null;
    for (const pool of this.#pools.values()) pool.close();
    if (this.#running.size > 0) {
      await Promise.race([Promise.allSettled(this.#running), new Promise((resolve) => setTimeout(resolve, graceMs))]);
    }
    await this.#recording;
    await this.#record();
  }

  async createAllocation(
    actor: Actor,
    input: { name: string; service: string; action: string; instances: number; timeoutMs?: number | null },
  ): Promise<Allocation> {
    requireAdmin(actor);
    const { catalog, records } = this.#options;
    const name = input.name.trim();
    if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
      throw new ValidationError('INVALID', `name must be 1 to ${MAX_NAME_LENGTH} characters`, 'name');
    }
    if (!catalog.service(input.service) || !catalog.allows(actor.permissions ?? null, input.service)) {
      throw new ValidationError('INVALID_SERVICE', `no service ${input.service} for this key`, 'service');
    }
    const action = catalog.action(input.service, input.action);
    if (!action || !catalog.allows(actor.permissions ?? null, input.service, input.action)) {
      throw new ValidationError('INVALID_ACTION', `service ${input.service} has no action ${input.action}`, 'action');
    }
    if (!action.execution.includes('REALTIME')) {
      throw new ValidationError('INVALID_ACTION', `${input.service}.${input.action} cannot run in real time`, 'action');
    }
    if (!Number.isSafeInteger(input.instances) || input.instances < 1 || input.instances > MAX_INSTANCES) {
      throw new ValidationError('INVALID', `instances must be from 1 to ${MAX_INSTANCES}`, 'instances');
    }
    const timeoutMs = input.timeoutMs ?? DEFAULT_EXECUTION_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_EXECUTION_TIMEOUT_MS) {
      throw new ValidationError('INVALID', `timeoutMs must be from 1 to ${MAX_EXECUTION_TIMEOUT_MS}`, 'timeoutMs');
    }
    let prepared: unknown[];
    try {
      prepared = await prepareInstances(action, input.instances);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ValidationError('INVALID_ACTION', `preparing ${input.service}.${input.action} failed: ${reason}`, 'action');
    }
    const owner = await this.#ownerOf(actor.organisationId, actor.keyId);
    const allocation = await records.createAllocation(
      {
        organisationId: actor.organisationId,
        keyId: actor.keyId,
        name,
        service: input.service,
        action: input.action,
        instances: input.instances,
        timeoutMs,
      },
      Date.now(),
    );
    this.#pools.set(allocation.id, this.#pool(allocation, action, prepared, owner));
    this.#options.events.publish('executionAccess', EVERYONE, { allocationId: allocation.id });
    return allocation;
  }

  #pool(allocation: Allocation, action: ActionDefinition<any>, prepared: unknown[], owner: AllocationOwner): InstancePool {
    const permitted = this.#options.catalog.permissions(allocation.service, action);
    return new InstancePool(allocation, action, prepared, permitted, owner);
  }

  /** Looked up once per allocation: neither names change, and a call must not cost a query. */
  async #ownerOf(organisationId: number, keyId: number): Promise<AllocationOwner> {
    const { records } = this.#options;
    const organisation = await records.getOrganisation(organisationId);
    const [key] = await records.getApiKeys(organisationId, [keyId]);
    // Every call of the allocation shares the organisation: no handler may change it for the next.
    return {
      organisation: Object.freeze({ id: organisationId, name: organisation?.name ?? '' }),
      keyName: key?.name ?? '',
    };
  }

  async listAllocations(actor: Actor): Promise<AllocationStatus[]> {
    requireAdmin(actor);
    const allocations = await this.#options.records.listAllocations(actor.organisationId);
    return allocations.map((allocation) => this.#status(allocation));
  }

  /** Another organisation's or a deleted allocation's id is not found. */
  async getAllocations(actor: Actor, ids: readonly number[]): Promise<(AllocationStatus | null)[]> {
    const live = new Map(
      (await this.#options.records.listAllocations(actor.organisationId)).map((allocation) => [allocation.id, allocation]),
    );
    return ids.map((id) => {
      const allocation = live.get(id);
      return allocation ? this.#status(allocation) : null;
    });
  }

  #status(allocation: Allocation): AllocationStatus {
    const pool = this.#pools.get(allocation.id);
    return {
      ...allocation,
      busy: pool?.busy ?? 0,
      executions: allocation.executions + (pool?.executionsNotRecorded ?? 0),
    };
  }

  async deleteAllocation(actor: Actor, allocationId: number): Promise<Allocation> {
    requireAdmin(actor);
    const allocation = await this.#options.records.deleteAllocation(actor.organisationId, allocationId, Date.now());
    if (!allocation) throw new NotFoundError('no allocation', { typename: 'Allocation', id: allocationId });
    this.#pools.get(allocationId)?.close();
    this.#pools.delete(allocationId);
    this.#forgetTokens((token) => token.allocationId === allocationId);
    this.#options.events.publish('executionAccess', EVERYONE, { allocationId });
    return allocation;
  }

  async generateExecutionToken(
    actor: Actor,
    allocationId: number,
    ttlSeconds: number | null,
  ): Promise<{ token: string; executionToken: ExecutionToken }> {
    requireAdmin(actor);
    const [allocation] = await this.getAllocations(actor, [allocationId]);
    if (!allocation) throw new NotFoundError('no allocation', { typename: 'Allocation', id: allocationId });
    const ttl = ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
      throw new ValidationError('INVALID', `ttlSeconds must be from 1 to ${MAX_TOKEN_TTL_SECONDS} (30 days)`, 'ttlSeconds');
    }
    const token = TOKEN_PREFIX + randomBytes(24).toString('base64url');
    const tokenHash = this.#tokenHashes.of(token);
    const executionToken = await this.#options.records.createExecutionToken(
      { allocationId, tokenHash, expiresAt: Date.now() + ttl * 1000 },
      Date.now(),
    );
    // Announced first: this process's own listener forgets the allocation's tokens, this one included.
    this.#options.events.publish('executionAccess', EVERYONE, { allocationId });
    this.#remember(tokenHash, executionToken, Date.now());
    return { token, executionToken };
  }

  async revokeExecutionToken(actor: Actor, tokenId: number): Promise<ExecutionToken> {
    requireAdmin(actor);
    const revoked = await this.#options.records.revokeExecutionToken(actor.organisationId, tokenId);
    if (!revoked) throw new NotFoundError('no execution token', { typename: 'ExecutionToken', id: tokenId });
    this.#forgetTokens((token) => token.id === tokenId);
    this.#options.events.publish('executionAccess', EVERYONE, { allocationId: revoked.allocationId });
    return revoked;
  }

  /** Runs one call on the allocation `allocationId`, authorised by `token`. */
  async execute(allocationId: number, token: string, params: unknown): Promise<ExecutionOutcome> {
    const tokenHash = this.#tokenHashes.of(token);
    const cached = this.#liveToken(tokenHash);
    const known = cached instanceof Promise ? await cached : cached;
    if (!known || known.allocationId !== allocationId) return { kind: 'unauthorized' };
    if (known.expiresAt <= Date.now()) {
      this.#tokens.delete(tokenHash);
      return { kind: 'unauthorized' };
    }
    if (this.#unservable.has(allocationId)) return { kind: 'unauthorized' };
    // An allocation made by another process is warmed here on its first call, if its event has not done it yet.
    const pool = this.#pools.get(allocationId) ?? (await this.#sync(allocationId));
    if (!pool) return { kind: 'unauthorized' };
    const { allocation, action } = pool;
    const { catalog } = this.#options;
    const checked = catalog.checkParams(action, params, pool.permitted);
    if (!checked.ok) return { kind: 'invalid', ...checked.issue };
    if (this.#stopping) return { kind: 'busy', retryAfterSeconds: 1 };

    // The id first: a call waiting for the database must not hold an instance others wait for.
    const reserved = this.#taskId();
    const taskId = typeof reserved === 'number' ? reserved : await reserved;
    const acquired = pool.acquire(this.#options.waitMs);
    const instance = acquired instanceof Promise ? await acquired : acquired;
    if (!instance) {
      this.#reserved.push(taskId);
      return { kind: 'busy', retryAfterSeconds: 1 };
    }
    let run: ExecutionOutcome | Promise<ExecutionOutcome>;
    try {
      run = this.#run(pool, instance, taskId, checked.params);
    } catch (error) {
      pool.release(instance);
      throw error;
    }
    // A handler that returned at once has finished: nothing is left for shutdown to wait for.
    if (!(run instanceof Promise)) {
      pool.release(instance);
      return run;
    }
    try {
      return await this.#tracked(run);
    } finally {
      pool.release(instance);
    }
  }

  #tracked<T>(work: Promise<T>): Promise<T> {
    this.#running.add(work);
    const forget = () => this.#running.delete(work);
    work.then(forget, forget);
    return work;
  }

  /**
   * Runs the handler on `instance`. A handler that returns a value (not a promise) is answered in
   * the same turn, without a timer: a synchronous handler cannot be interrupted by one anyway, as
   * its value settles before any timer can fire.
   */
  #run(pool: InstancePool, instance: Instance, taskId: number, params: Record<string, unknown>): ExecutionOutcome | Promise<ExecutionOutcome> {
    const call = new Call(this, pool, instance, taskId, params);
    let returned: unknown;
    let then: unknown;
    try {
      returned = pool.action.handler(call.context);
      // What the promise machinery would look up: a getter or a revoked proxy may throw here too.
      then = returned !== null && (typeof returned === 'object' || typeof returned === 'function') ? (returned as { then?: unknown }).then : undefined;
    } catch (failure) {
      return call.finish({ failure });
    }
    if (typeof then !== 'function') return call.finish({ value: returned });
    return call.settle(new Promise((resolve, reject) => (then as (yes: unknown, no: unknown) => void).call(returned, resolve, reject)));
  }

  /** Hands a finished call on to be written as a task. */
  queueRecord(record: ExecutionRecord, pool: InstancePool): void {
    this.#queueRecord(record);
    pool.executionsNotRecorded += 1;
  }

  /** Keeps `work` until it settles: shutdown waits for it. */
  track(work: Promise<unknown>): void {
    void this.#tracked(work);
  }

  /** A reserved id, or the wait for the next block; the block after is fetched while a quarter of this one is left. */
  #taskId(): number | Promise<number> {
    if (this.#reserved.length <= RESERVED_IDS_PER_BLOCK / 4) {
      // A failure here is the next waiting call's to report.
      this.#reserveMore().catch(() => {});
    }
    return this.#reserved.pop() ?? this.#nextTaskId();
  }

  async #nextTaskId(): Promise<number> {
    while (this.#reserved.length === 0) await this.#reserveMore();
    return this.#reserved.pop()!;
  }

  /** Ids are taken from the end: a new block goes before the ids still left, which are lower. */
  #reserveMore(): Promise<void> {
    this.#reserving ??= this.#options.queue.reserveTaskIds(RESERVED_IDS_PER_BLOCK).then(
      (ids) => {
        this.#reserved = [...ids.reverse(), ...this.#reserved];
        this.#reserving = null;
      },
      (error: unknown) => {
        this.#reserving = null;
        throw error;
      },
    );
    return this.#reserving;
  }

  #queueRecord(record: ExecutionRecord): void {
    this.#unrecorded.push(record);
    if (this.#recordFailing) return;
    if (this.#unrecorded.length >= RECORD_BATCH_SIZE) {
      this.#recording = this.#recording.then(() => this.#record());
      return;
    }
    if (this.#recordScheduled) return;
    this.#recordScheduled = true;
    // A commit costs far more than a row: calls answered within a short window share one.
    setTimeout(() => {
      this.#recordScheduled = false;
      this.#recording = this.#recording.then(() => this.#record());
    }, RECORD_INTERVAL_MS);
  }

  async #record(): Promise<void> {
    const batch = this.#unrecorded.splice(0);
    if (batch.length === 0) return;
    try {
      for (const organisationId of new Set(batch.map((record) => record.organisationId))) {
        const organisation = await this.#options.records.getOrganisation(organisationId);
        const protocol = organisation?.retrievalProtocol ?? 'STORE';
        for (const record of batch) if (record.organisationId === organisationId) record.retrievalProtocol = protocol;
      }
      const tasks = await this.#options.queue.recordExecutions(batch);
      this.#forget(batch);
      publishChanges(this.#options.events, tasks, 'CREATED');
      publishChanges(this.#options.events, tasks, 'STATE_CHANGED');
      this.#recordFailing = false;
    } catch (error) {
      this.#unrecorded.unshift(...batch);
      // The answers went out already; what cannot be written is kept, up to a bound, for the retry.
      const dropped = this.#unrecorded.length - MAX_UNRECORDED;
      if (dropped > 0) this.#forget(this.#unrecorded.splice(0, dropped));
      this.#options.logger.error(
        { err: error, waiting: this.#unrecorded.length, dropped: Math.max(0, dropped) },
        'recording real-time calls failed; retrying in a second',
      );
      if (!this.#recordFailing) {
        this.#recordFailing = true;
        setTimeout(() => {
          this.#recordFailing = false;
          this.#recording = this.#recording.then(() => this.#record());
        }, FAILED_RECORD_RETRY_MS).unref();
      }
    }
  }

  #forget(records: readonly ExecutionRecord[]): void {
    for (const record of records) {
      const pool = this.#pools.get(record.allocationId);
      if (pool) pool.executionsNotRecorded -= 1;
    }
  }
}

/** How a call's handler ended: its value, what it threw, or the allocation's time limit. */
type Ending = { value: unknown } | { failure: unknown } | { timedOut: true };

/** One call on an instance: the context its handler sees, what it puts out, and its record. */
class Call {
  readonly startedAt = Date.now();
  readonly started = performance.now();
  readonly logs: ExecutionLog[] = [];
  readonly results: ExecutionResult[] = [];
  readonly resultSizes: number[] = [];
  readonly tally: OutputTally = { resultCount: 0, resultBytes: 0, loggedBytes: 0, logsDropped: false };
  progress: number | null = null;
  open = true;
  readonly abortion = new RunAbort();
  /** A result refused by the limits ends the call, as a queued attempt ends. */
  refusal: OutputFailure | null = null;
  endRace: (() => void) | undefined;
  readonly context: HandlerContext;

  constructor(
    readonly runtime: RealtimeRuntime,
    readonly pool: InstancePool,
    instance: Instance,
    readonly taskId: number,
    readonly params: Record<string, unknown>,
  ) {
    const call = this;
    this.context = {
      task: {
        id: taskId,
        organisation: pool.owner.organisation,
        keyName: pool.owner.keyName,
        poll: null,
        session: null,
        user: null,
        target: null,
        source: null,
        priority: 0,
        attempt: 1,
        maxAttempts: 1,
      },
      taskId,
      attempt: 1,
      params,
      account: null,
      get signal() {
        return call.abortion.signal;
      },
      log: (level, message) => {
        const accepted = acceptLog(call.tally, level, message);
        if (accepted) call.logs.push({ level: accepted.level, message: accepted.message, timestamp: new Date() });
      },
      progress: (fraction) => {
        if (call.open && Number.isFinite(fraction)) call.progress = Math.min(1, Math.max(0, fraction));
      },
      publish: (name, data, contentType = 'application/json') => {
        if (call.open) call.keep(name, data, contentType);
      },
      prepared: instance.prepared,
    };
  }

  keep(name: unknown, data: unknown, contentType: unknown): void {
    const accepted = acceptResult(this.tally, name, data, contentType);
    if (accepted.ok) {
      this.results.push({ name: accepted.name, contentType: accepted.contentType, data: data ?? null });
      this.resultSizes.push(accepted.bytes);
      return;
    }
    this.refusal ??= accepted.failure;
    this.endRace?.();
    this.open = false;
    this.abort(new TaskFailure(accepted.failure.code, accepted.failure.message, false));
  }

  abort(reason: RunAborted | TaskFailure): void {
    this.abortion.abort(reason);
  }

  /** Waits for a handler's promise, the allocation's time limit or a refused result, whichever comes first. */
  async settle(running: Promise<unknown>): Promise<ExecutionOutcome> {
    const { timeoutMs } = this.pool.allocation;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
    });
    const refused = new Promise<typeof REFUSED>((resolve) => (this.endRace = () => resolve(REFUSED)));
    let ending: Ending;
    try {
      const value = await Promise.race([running, timedOut, refused]);
      ending = value === TIMED_OUT ? { timedOut: true } : { value };
    } catch (failure) {
      ending = { failure };
    } finally {
      clearTimeout(timer);
    }
    return this.finish(ending, running);
  }

  finish(ending: Ending, running?: Promise<unknown>): ExecutionOutcome {
    let error: { code: string; message: string } | null = null;
    const didTimeOut = 'timedOut' in ending;
    if (didTimeOut) {
      this.abort(new RunAborted('TIMEOUT'));
      error = { code: 'TIMEOUT', message: `The call ran past the allocation's limit of ${this.pool.allocation.timeoutMs} ms.` };
    } else if ('failure' in ending) {
      const { code, message } = handlerFailure(ending.failure);
      error = { code, message };
    } else if (ending.value !== undefined && ending.value !== REFUSED && this.open) {
      this.keep('result', ending.value, 'application/json');
    }
    if (this.refusal) error = { code: this.refusal.code, message: this.refusal.message };
    this.open = false;
    const durationMs = performance.now() - this.started;
    const state = error ? 'FAILED' : 'SUCCEEDED';
    // What a timed-out handler logs once it sees its signal belongs to the record too.
    if (didTimeOut && running) {
      const settled = Promise.race([running.then(noop, noop), new Promise((resolve) => setTimeout(resolve, ABORT_SETTLE_MS))]);
      this.runtime.track(settled.then(() => this.record(state, error, durationMs)));
    } else {
      this.record(state, error, durationMs);
    }
    const { taskId, results, logs } = this;
    return { kind: 'finished', taskId, state, results, logs: [...logs], error, durationMs, timedOut: didTimeOut };
  }

  record(state: 'SUCCEEDED' | 'FAILED', error: { code: string; message: string } | null, durationMs: number): void {
    const { allocation } = this.pool;
    const { startedAt, results, resultSizes } = this;
    this.runtime.queueRecord(
      {
        taskId: this.taskId,
        organisationId: allocation.organisationId,
        keyId: allocation.keyId,
        allocationId: allocation.id,
        service: allocation.service,
        type: allocation.action,
        params: this.params,
        state,
        error,
        progress: state === 'SUCCEEDED' ? 1 : this.progress,
        timeoutMs: allocation.timeoutMs,
        retrievalProtocol: 'STORE',
        dateCreated: startedAt,
        dateCompleted: startedAt + Math.round(durationMs),
        logs: this.logs.map((log) => ({ ...log, source: 'handler', timestamp: log.timestamp.getTime() })),
        results: results.map((result, index) => ({
          name: result.name,
          contentType: result.contentType,
          size: resultSizes[index]!,
        })),
      },
      this.pool,
    );
  }
}

async function prepareInstances(action: ActionDefinition<any>, instances: number): Promise<unknown[]> {
  const prepared: unknown[] = [];
  for (let index = 0; index < instances; index++) prepared.push(action.prepare ? await action.prepare() : undefined);
  return prepared;
}

function noop(): void {}
