import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventMap, TaskChange } from '../src/domain/events.js';
import { PgPubSub } from '../src/storage/pg/events.js';
import { createPostgresDatabase } from './helpers.js';

// Two buses on one database stand for two processes: each is what one process's storage brings.

let url: string;
const opened: (PgPubSub | pg.Client)[] = [];

beforeEach(async () => {
  url = await createPostgresDatabase();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((closable) => (closable instanceof PgPubSub ? closable.close() : closable.end())));
});

async function startBus(warnings: string[] = []): Promise<PgPubSub> {
  const bus = new PgPubSub({ url, warn: (message) => warnings.push(message) });
  opened.push(bus);
  await bus.start();
  return bus;
}

interface Wiretap {
  payloads: string[];
  /** Resolves once the tap has heard the marker `roundTrip` sends: all sent before it has been heard too. */
  heardMarker(marker: number): Promise<void>;
}

/** A client of the test's own that hears every notification the buses send, as they are on the wire. */
async function wiretap(): Promise<Wiretap> {
  const client = new pg.Client({ connectionString: url });
  opened.push(client);
  await client.connect();
  const payloads: string[] = [];
  const markers = new Map<number, () => void>();
  const heard = new Set<number>();
  client.on('notification', (message) => {
    const payload = message.payload ?? '';
    payloads.push(payload);
    for (const event of JSON.parse(payload).e as { c: string; k: number }[]) {
      if (event.c !== 'cancelRequested') continue;
      heard.add(event.k);
      markers.get(event.k)?.();
    }
  });
  await client.query('LISTEN taskport');
  return {
    payloads,
    heardMarker: (marker) =>
      heard.has(marker) ? Promise.resolve() : new Promise((resolve) => markers.set(marker, resolve)),
  };
}

function nextEvent<C extends keyof EventMap>(
  bus: PgPubSub,
  channel: C,
  key: string | number,
  wanted: (event: EventMap[C]) => boolean = () => true,
): Promise<EventMap[C]> {
  return new Promise((resolve) => {
    const stop = bus.listen(channel, key, (event) => {
      if (!wanted(event)) return;
      stop();
      resolve(event);
    });
  });
}

function change(taskId: number, organisationId = 1, extra: Partial<TaskChange> = {}): TaskChange {
  return { kind: 'STATE_CHANGED', taskId, organisationId, at: new Date(1_700_000_000_000 + taskId), state: 'PENDING', ...extra };
}

/** Publishes on both channels, as the engine publishes every task change. */
function publishChange(bus: PgPubSub, taskChange: TaskChange): void {
  bus.publish('task', taskChange.taskId, taskChange);
  bus.publish('organisation', taskChange.organisationId, taskChange);
}

/** Waits for the round trip of a marker from `from` to `to`: what `from` sent before it has been heard by then. */
async function roundTrip(from: PgPubSub, to: PgPubSub, marker: number): Promise<void> {
  const heard = nextEvent(to, 'cancelRequested', marker);
  from.publish('cancelRequested', marker, { taskId: marker });
  await heard;
}

describe('PgPubSub', () => {
  it('delivers an event to the other process, with its time as a Date, and to its own listeners once', async () => {
    const [a, b] = [await startBus(), await startBus()];
    const ownDeliveries: TaskChange[] = [];
    a.listen('task', 7, (event) => ownDeliveries.push(event));
    const heardByB = nextEvent(b, 'task', 7);
    const sent = change(7, 3, { kind: 'PROGRESS', progress: 0.5 });
    publishChange(a, sent);
    expect(ownDeliveries).toEqual([sent]);

    const received = await heardByB;
    expect(received).toEqual(sent);
    expect(received.at).toBeInstanceOf(Date);

    // B's answer travels after A's own notification: once A hears it, A has seen its own one go by.
    await roundTrip(b, a, 1);
    expect(ownDeliveries).toHaveLength(1);
    expect(a.listenerCount()).toBe(1);
  });

  it('delivers a task change sent once to both its channels', async () => {
    const [a, b] = [await startBus(), await startBus()];
    const tap = await wiretap();
    const onTask = nextEvent(b, 'task', 11);
    const onOrganisation = nextEvent(b, 'organisation', 4);
    publishChange(a, change(11, 4));
    expect(await onTask).toEqual(change(11, 4));
    expect(await onOrganisation).toEqual(change(11, 4));
    await Promise.all([roundTrip(a, b, 2), tap.heardMarker(2)]);
    const sentEvents = tap.payloads.flatMap((payload) => JSON.parse(payload).e as unknown[]);
    // The task change and the marker.
    expect(sentEvents).toHaveLength(2);
  });

  it('sends a LOG change with its line id and without the line, which only local listeners get', async () => {
    const [a, b] = [await startBus(), await startBus()];
    const line = { id: 42, taskId: 9, level: 'INFO' as const, message: 'hello', source: 'handler', timestamp: new Date() };
    let local: TaskChange | undefined;
    a.listen('organisation', 1, (event) => (local = event));
    const remote = nextEvent(b, 'organisation', 1);
    publishChange(a, change(9, 1, { kind: 'LOG', log: line }));
    expect(local?.log).toEqual(line);
    const received = await remote;
    expect(received.kind).toBe('LOG');
    expect(received.logId).toBe(42);
    expect(received).not.toHaveProperty('log');
  });

  it('carries a burst of 10,000 changes in few notifications, each under 8,000 bytes', async () => {
    const [a, b] = [await startBus(), await startBus()];
    const tap = await wiretap();
    const count = 10_000;
    const received = new Set<number>();
    let onTaskChannel = 0;
    const allArrived = new Promise<void>((resolve) => {
      b.listen('organisation', 5, (event) => {
        received.add(event.taskId);
        if (received.size === count) resolve();
      });
    });
    b.listen('task', 1, () => (onTaskChannel += 1));
    b.listen('task', count, () => (onTaskChannel += 1));
    for (let taskId = 1; taskId <= count; taskId++) publishChange(a, change(taskId, 5));
    await allArrived;
    await Promise.all([roundTrip(a, b, 3), tap.heardMarker(3)]);

    expect(onTaskChannel).toBe(2);
    const sizes = tap.payloads.map((payload) => Buffer.byteLength(payload));
    expect(Math.max(...sizes)).toBeLessThan(8000);
    // Tens of changes share a notification: a NOTIFY per change would be 10,000 of them.
    expect(tap.payloads.length).toBeLessThan(count / 20);
  });

  it('reconnects after the database ends its listening connections, and events flow again', async () => {
    const warnings: string[] = [];
    const [a, b] = [await startBus(warnings), await startBus(warnings)];
    await roundTrip(a, b, 4);

    const admin = new pg.Client({ connectionString: url });
    opened.push(admin);
    await admin.connect();
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
    );
    expect(rows).toHaveLength(2);

    // Published while disconnected, a hint is lost: keep publishing until one gets through.
    const heard = nextEvent(b, 'keyRevoked', 99);
    const republish = setInterval(() => a.publish('keyRevoked', 99, { keyId: 99 }), 50);
    try {
      expect(await heard).toEqual({ keyId: 99 });
    } finally {
      clearInterval(republish);
    }
    await roundTrip(b, a, 5);
    expect(warnings.some((warning) => warning.includes('lost its connection'))).toBe(true);
    expect(warnings.some((warning) => warning.includes('reconnected'))).toBe(true);
  });
});
