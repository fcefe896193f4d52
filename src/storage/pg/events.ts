import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { InProcessPubSub, type EventMap, type Listener, type PubSub, type TaskChange } from '../../domain/events.js';

/** The one channel every Taskport process on the database LISTENs to; the events name their own channels. */
const NOTIFY_CHANNEL = 'taskport';
/** PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; the rest is headroom. */
const MAX_PAYLOAD_BYTES = 7900;
/** Events waiting for the next flush; beyond it they are dropped, as they are while disconnected. */
const MAX_QUEUED_EVENTS = 50_000;
const FIRST_RECONNECT_DELAY_MS = 100;
const MAX_RECONNECT_DELAY_MS = 5000;

export type BusWarning = (message: string, error?: unknown) => void;

export interface PgPubSubOptions {
  url: string;
  /** Where NOTIFYs are sent from; without one the bus opens a pool of one connection of its own. */
  pool?: pg.Pool;
  warn?: BusWarning;
}

type Channel = keyof EventMap;

/**
 * One event on the wire: its channel, key and data. `b` marks a TaskChange published on both
 * 'task' (key taskId) and 'organisation' (key organisationId), as the engine publishes each one:
 * sent once, delivered on both.
 */
interface WireEvent {
  c: Channel;
  k: string | number;
  d: unknown;
  b?: 1;
}

/** A TaskChange as it travels: ids, never the log line, and its time as epoch milliseconds. */
type WireTaskChange = Omit<TaskChange, 'log' | 'at'> & { at: number };

interface Queued {
  channel: Channel;
  key: string | number;
  event: unknown;
  both: boolean;
}

/**
 * The event bus of processes that share a PostgreSQL database, over LISTEN/NOTIFY. Listeners of
 * this process hear its events at once and in full; other processes hear them as ids (a LOG
 * change names its line by `logId`), batched into as few NOTIFYs as fit, once per event-loop turn.
 * Notifications are hints: a process that misses some (its connection dropped) still finds the
 * truth in the database, as workers poll and subscriptions re-read their tasks.
 */
export class PgPubSub implements PubSub {
  readonly #local = new InProcessPubSub();
  /** Names this process's payloads, which its own LISTEN hears again and ignores. */
  readonly #origin = randomBytes(8).toString('hex');
  readonly #ownPayloadStart = `{"o":"${this.#origin}"`;
  readonly #url: string;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #warn: BusWarning;

  #listener: pg.Client | null = null;
  #listening = false;
  #closed = false;
  #reconnectDelayMs = FIRST_RECONNECT_DELAY_MS;
  #reconnectTimer: NodeJS.Timeout | null = null;

  #queued: Queued[] = [];
  /** The queued entry of each event object, so that its second channel joins it rather than queueing again. */
  #queuedByEvent = new Map<unknown, Queued>();
  #flushScheduled = false;
  #flushing: Promise<void> | null = null;
  #droppedEvents = 0;

  constructor(options: PgPubSubOptions) {
    this.#url = options.url;
    this.#warn = options.warn ?? (() => {});
    this.#ownsPool = !options.pool;
    this.#pool = options.pool ?? new pg.Pool({ connectionString: options.url, max: 1, application_name: 'taskport-notify' });
    // An idle client whose server went away emits here; unheard, it would end the process.
    if (this.#ownsPool) this.#pool.on('error', () => {});
  }

  /** Connects the listening client; rejects when the database cannot be reached at all. */
  async start(): Promise<void> {
    this.#listener = await this.#connectListener();
    this.#listening = true;
  }

  /** Sends what is queued, stops listening and closes its connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#flushing;
    await this.#flush();
    this.#listening = false;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const listener = this.#listener;
    this.#listener = null;
    await listener?.end().catch(() => {});
    if (this.#ownsPool) await this.#pool.end().catch(() => {});
  }

  publish<C extends Channel>(channel: C, key: string | number, event: EventMap[C]): void {
    this.#local.publish(channel, key, event);
    if (this.#closed || !this.#listening) return;
    const pairedWith = this.#queuedByEvent.get(event);
    if (pairedWith && !pairedWith.both && isOrganisationHalf(pairedWith, channel, key)) {
      pairedWith.both = true;
      return;
    }
    if (this.#queued.length >= MAX_QUEUED_EVENTS) {
      this.#droppedEvents += 1;
      return;
    }
    const queued: Queued = { channel, key, event, both: false };
    this.#queued.push(queued);
    if (channel === 'task') this.#queuedByEvent.set(event, queued);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        void this.#startFlush();
      });
    }
  }

  listen<C extends Channel>(channel: C, key: string | number, listener: Listener<EventMap[C]>): () => void {
    return this.#local.listen(channel, key, listener);
  }

  listenerCount(): number {
    return this.#local.listenerCount();
  }

  /** One flush at a time: what is published meanwhile waits for the next, and goes with it. */
  async #startFlush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = this.#flush();
    try {
      await this.#flushing;
    } finally {
      this.#flushing = null;
    }
    if (this.#queued.length > 0 && !this.#flushScheduled && !this.#closed) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        void this.#startFlush();
      });
    }
  }

  async #flush(): Promise<void> {
    const batch = this.#queued;
    this.#queued = [];
    this.#queuedByEvent = new Map();
    if (this.#droppedEvents > 0) {
      this.#warn(`event bus: ${this.#droppedEvents} events were not sent to other processes (too many at once)`);
      this.#droppedEvents = 0;
    }
    if (batch.length === 0 || !this.#listening) return;
    const payloads = this.#payloads(batch);
    try {
      // One statement for the whole batch: PostgreSQL commits one notifying transaction at a time.
      await this.#pool.query(`SELECT pg_notify('${NOTIFY_CHANNEL}', payload) FROM unnest($1::text[]) AS payload`, [payloads]);
    } catch (error) {
      this.#warn(`event bus: ${batch.length} events were not sent to other processes`, error);
    }
  }

  /** The batch in as few payloads as fit under PostgreSQL's limit. */
  #payloads(batch: readonly Queued[]): string[] {
    const prefix = `${this.#ownPayloadStart},"e":[`;
    const suffix = ']}';
    const frame = Buffer.byteLength(prefix) + suffix.length;
    const payloads: string[] = [];
    let entries: string[] = [];
    let bytes = frame;
    for (const queued of batch) {
      const entry = JSON.stringify(toWire(queued));
      const entryBytes = Buffer.byteLength(entry);
      if (frame + entryBytes > MAX_PAYLOAD_BYTES) {
        this.#warn(`event bus: a ${queued.channel} event of ${entryBytes} bytes is too large to send to other processes`);
        continue;
      }
      const separator = entries.length > 0 ? 1 : 0;
      if (bytes + separator + entryBytes > MAX_PAYLOAD_BYTES) {
        payloads.push(prefix + entries.join(',') + suffix);
        entries = [];
        bytes = frame;
      }
      bytes += (entries.length > 0 ? 1 : 0) + entryBytes;
      entries.push(entry);
    }
    if (entries.length > 0) payloads.push(prefix + entries.join(',') + suffix);
    return payloads;
  }

  #receive(payload: string | undefined): void {
    if (payload === undefined || payload.startsWith(this.#ownPayloadStart)) return;
    let events: WireEvent[];
    try {
      events = (JSON.parse(payload) as { e: WireEvent[] }).e;
      if (!Array.isArray(events)) throw new TypeError('no event list');
    } catch (error) {
      this.#warn('event bus: ignored a notification that is not a list of events', error);
      return;
    }
    for (const wire of events) {
      try {
        this.#deliver(wire);
      } catch (error) {
        // A listener's failure must not cost the others their events, nor the connection its handler.
        this.#warn(`event bus: a listener of ${String(wire?.c)} failed`, error);
      }
    }
  }

  #deliver({ c: channel, k: key, d: data, b: both }: WireEvent): void {
    if (channel === 'task' || channel === 'organisation') {
      const wire = data as WireTaskChange;
      const change: TaskChange = { ...wire, at: new Date(wire.at) };
      this.#local.publish(channel, key, change);
      if (both) this.#local.publish('organisation', change.organisationId, change);
      return;
    }
    this.#local.publish(channel, key, data as never);
  }

  async #connectListener(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.#url, application_name: 'taskport-events' });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client));
    client.on('notification', (message) => {
      if (message.channel === NOTIFY_CHANNEL) this.#receive(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (error) {
      client.removeAllListeners('end');
      client.on('error', () => {});
      await client.end().catch(() => {});
      throw error;
    }
    return client;
  }

  /** The listening connection is gone (the database restarted, or ended it): the process carries on and reconnects. */
  #lost(client: pg.Client, error?: unknown): void {
    if (this.#closed || this.#listener !== client) return;
    this.#listener = null;
    this.#listening = false;
    // A second 'error' of a client given up must not reach the process.
    client.on('error', () => {});
    void client.end().catch(() => {});
    this.#warn('event bus: lost its connection to the database; reconnecting, and until then events reach this process only', error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delay * 2, MAX_RECONNECT_DELAY_MS);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      void this.#reconnect();
    }, delay);
    this.#reconnectTimer.unref();
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    let client: pg.Client;
    try {
      client = await this.#connectListener();
    } catch {
      this.#scheduleReconnect();
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#listener = client;
    this.#listening = true;
    this.#reconnectDelayMs = FIRST_RECONNECT_DELAY_MS;
    this.#warn('event bus: reconnected to the database; events reach other processes again');
  }
}

/** Whether publishing on `channel`, `key` is the organisation half of the task change `queued`, as the receiver rebuilds it. */
function isOrganisationHalf(queued: Queued, channel: Channel, key: string | number): boolean {
  const change = queued.event as TaskChange;
  return channel === 'organisation' && String(queued.key) === String(change.taskId) && String(key) === String(change.organisationId);
}

function toWire(queued: Queued): WireEvent {
  let data = queued.event;
  if (queued.channel === 'task' || queued.channel === 'organisation') {
    const { log, at, ended: _ended, ...change } = queued.event as TaskChange;
    const wire: WireTaskChange = { ...change, at: at.getTime() };
    if (log) wire.logId = log.id;
    data = wire;
  }
  return queued.both ? { c: queued.channel, k: queued.key, d: data, b: 1 } : { c: queued.channel, k: queued.key, d: data };
}
