import type { TaskLog, TaskState } from './types.js';

export const TASK_EVENT_KINDS = Object.freeze([
  'CREATED',
  'STATE_CHANGED',
  'PROGRESS',
  'LOG',
  'RESULT',
  'QUEUE_POSITION',
] as const);
export type TaskEventKind = (typeof TASK_EVENT_KINDS)[number];

/** One change to one task. Small and id-based, so that a cross-process bus can carry it. */
export interface TaskChange {
  kind: TaskEventKind;
  taskId: number;
  organisationId: number;
  at: Date;
  state?: TaskState;
  progress?: number;
  /** LOG: the line itself in the process that wrote it; elsewhere only `logId`, and the listener reads it. */
  log?: TaskLog;
  logId?: number;
  resultId?: number;
  /**
   * STATE_CHANGED to a terminal state, in the process that ended the task only (a bus between
   * processes does not carry it): what metrics count, without reading the task back.
   */
  ended?: EndedTask;
}

export interface EndedTask {
  service: string;
  action: string;
  /** From its start to its end; null for a task that never started. */
  durationMs: number | null;
}

export interface QueueAdvanced {
  service: string;
  type: string;
}

export interface KeyRevoked {
  keyId: number;
}

export interface CancelRequested {
  taskId: number;
}

/** An allocation, or one of its execution tokens, was created, revoked or deleted. */
export interface ExecutionAccessChanged {
  allocationId: number;
}

/** Webhook messages became due (written, or redelivered): deliverers look for work. */
export interface WebhooksDue {}

/** A schedule was created, changed, paused, resumed or deleted: schedulers re-arm their timer. */
export interface SchedulesChanged {}

/**
 * Every channel, keyed by what a listener names when it subscribes: a task id, an organisation
 * id, a queue (`service/type`), a key id, or EVERYONE. A typo in a channel name does not compile.
 * Events are hints: a listener reads the database for what it needs, so that an event another
 * process sent over the database's bus carries ids, never data.
 */
export interface EventMap {
  task: TaskChange;
  organisation: TaskChange;
  /** Tasks left the queue or joined it: positions in it moved. */
  queue: QueueAdvanced;
  /** Tasks of this queue became due: workers that serve it claim. */
  due: QueueAdvanced;
  keyRevoked: KeyRevoked;
  /** The worker running the task fires its signal. */
  cancelRequested: CancelRequested;
  /** Every process that serves execution URLs forgets what it cached of the allocation. */
  executionAccess: ExecutionAccessChanged;
  /** Keyed EVERYONE. */
  webhooksDue: WebhooksDue;
  /** Keyed EVERYONE. */
  schedulesChanged: SchedulesChanged;
}

/** The key of a queue's channels. */
export function queueKey(service: string, type: string): string {
  return `${service}/${type}`;
}

/** The key of channels everyone listens to as a whole. */
export const EVERYONE = 'all';

export type Listener<T> = (event: T) => void;

/** The one seam events flow through; in-process today, a shared bus once there are several processes. */
export interface PubSub {
  publish<C extends keyof EventMap>(channel: C, key: string | number, event: EventMap[C]): void;
  /** Returns the function that stops listening. */
  listen<C extends keyof EventMap>(channel: C, key: string | number, listener: Listener<EventMap[C]>): () => void;
  listenerCount(): number;
}

export class InProcessPubSub implements PubSub {
  readonly #listeners = new Map<string, Set<Listener<never>>>();

  publish<C extends keyof EventMap>(channel: C, key: string | number, event: EventMap[C]): void {
    const listeners = this.#listeners.get(`${channel}:${key}`);
    if (!listeners) return;
    for (const listener of [...listeners]) (listener as Listener<EventMap[C]>)(event);
  }

  listen<C extends keyof EventMap>(channel: C, key: string | number, listener: Listener<EventMap[C]>): () => void {
    const topic = `${channel}:${key}`;
    let listeners = this.#listeners.get(topic);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(topic, listeners);
    }
    listeners.add(listener as Listener<never>);
    return () => {
      listeners.delete(listener as Listener<never>);
      if (listeners.size === 0) this.#listeners.delete(topic);
    };
  }

  listenerCount(): number {
    let count = 0;
    for (const listeners of this.#listeners.values()) count += listeners.size;
    return count;
  }
}

/**
 * The most events a stream holds for a consumer that has not taken them. The largest burst one
 * request causes is a bulk operation's 10,000 tasks, each announced at once; a consumer that
 * falls further behind than that is not reading. Each buffered event is a reference to the one
 * object every listener was given, so a full buffer costs about 80 KB.
 */
export const MAX_BUFFERED_EVENTS = 10_000;

/** How many waiting consumers one turn of the event loop wakes. */
export const WAKES_PER_TURN = 100;

const wakes: (() => void)[] = [];
let wakesScheduled = false;

/**
 * One event may wake thousands of consumers (5,000 followers of one task), and each then runs
 * until its transport writes: woken at once, in one turn of the event loop, they held it for a
 * second. They are woken WAKES_PER_TURN at a time, and other work runs between the turns.
 */
function wakeSoon(wake: () => void): void {
  wakes.push(wake);
  if (wakesScheduled) return;
  wakesScheduled = true;
  setImmediate(function wakeSome() {
    for (const next of wakes.splice(0, WAKES_PER_TURN)) next();
    if (wakes.length > 0) setImmediate(wakeSome);
    else wakesScheduled = false;
  });
}

/**
 * A push-to-pull bridge: listeners push, a subscription pulls with `for await`. Closing it (or
 * the consumer returning early) runs the cleanup that detaches the listeners. A consumer that
 * leaves `limit` events untaken loses them: the stream then holds only `overflow` and closes,
 * so that the consumer learns why it ended.
 */
export class EventStream<T> implements AsyncIterableIterator<T> {
  readonly #buffer: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void) | null = null;
  #closed = false;
  readonly #cleanups: (() => void)[] = [];
  readonly #limit: number;
  readonly #overflow: T;

  constructor(options: { overflow: T; limit?: number }) {
    this.#overflow = options.overflow;
    this.#limit = options.limit ?? MAX_BUFFERED_EVENTS;
  }

  onClose(cleanup: () => void): void {
    if (this.#closed) cleanup();
    else this.#cleanups.push(cleanup);
  }

  push(value: T): void {
    if (this.#closed) return;
    if (this.#buffer.length < this.#limit) {
      this.#buffer.push(value);
      if (this.#waiting && this.#buffer.length === 1) wakeSoon(() => this.#wake());
    } else {
      this.#buffer.splice(0, this.#buffer.length, this.#overflow);
      this.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#wake();
  }

  /** Hands the consumer waiting in next() what there is: the next value, or the end. */
  #wake(): void {
    if (!this.#waiting) return;
    if (this.#buffer.length === 0 && !this.#closed) return;
    const resolve = this.#waiting;
    this.#waiting = null;
    if (this.#buffer.length > 0) resolve({ value: this.#buffer.shift()!, done: false });
    else resolve({ value: undefined, done: true });
  }

  /** Removes and returns what has been pushed and not yet pulled. */
  takeBuffered(): T[] {
    return this.#buffer.splice(0);
  }

  get closed(): boolean {
    return this.#closed;
  }

  next(): Promise<IteratorResult<T>> {
    const value = this.#buffer.shift();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.#buffer.length = 0;
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
