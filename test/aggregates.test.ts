import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGGREGATE_LIMITS, throughputBuckets, throughputSeries } from '../src/domain/aggregates.js';
import { openStorage } from '../src/storage/index.js';
import { createKey, graphql, query, startServer, submit, waitForTask, type TestServer } from './helpers.js';

const COUNTS = `query ($filter: TaskFilter) { taskCounts(filter: $filter) { pending suspended processing succeeded failed cancelled total } }`;

const THROUGHPUT = `query ($since: DateTime!, $bucketSeconds: Int!) {
  taskThroughput(since: $since, bucketSeconds: $bucketSeconds) {
    __typename
    ... on TaskThroughputSuccess { buckets { start succeeded failed cancelled } }
    ... on ValidationError { code field message }
  }
}`;

const FINISHED = 'succeeded failed cancelled total';
const QUEUES = `query { queueStats { service action pending processing suspended oldestPendingDate
  finishedLastMinute { ${FINISHED} } finishedLast5Minutes { ${FINISHED} } finishedLast15Minutes { ${FINISHED} }
  finishedPerMinute { ${FINISHED} } } }`;

const counts = (partial: Partial<Record<'pending' | 'suspended' | 'processing' | 'succeeded' | 'failed' | 'cancelled', number>>) => {
  const all = { pending: 0, suspended: 0, processing: 0, succeeded: 0, failed: 0, cancelled: 0, ...partial };
  return { ...all, total: Object.values(all).reduce((sum, count) => sum + count, 0) };
};

async function finished(server: TestServer, token: string, input: Record<string, unknown>): Promise<string> {
  const submitted = await submit(server, token, input);
  expect(submitted.__typename).toBe('SubmitTaskSuccess');
  await waitForTask(server, token, submitted.task.id);
  return submitted.task.id;
}

async function stateOf(server: TestServer, token: string, id: string): Promise<string> {
  return (await query(server, token, `query ($id: ID!) { task(id: $id) { state } }`, { id })).task.state;
}

describe('aggregates over an organisation’s tasks', () => {
  let server: TestServer;
  let admin: string;
  let member: string;
  let other: string;
  let otherKeyId: string;
  let firstPendingCreated: string;

  // Of the organisation: 3 echoes SUCCEEDED (poll "echoes"), 2 fails FAILED, a sleep PROCESSING on the
  // only slot, 2 sleeps PENDING behind it, 1 sleep CANCELLED, 1 echo SUSPENDED on the running sleep.
  // Of another organisation: 2 echoes SUCCEEDED.
  beforeAll(async () => {
    server = await startServer({ concurrency: 1 });
    admin = server.adminToken;
    member = await createKey(server, 'default', 'MEMBER');
    other = await createKey(server, 'elsewhere', 'ADMIN');
    otherKeyId = (await query(server, other, '{ viewer { key { id } } }')).viewer.key.id;
    for (let index = 0; index < 3; index++) {
      await finished(server, admin, { service: 'demo', action: 'echo', params: { message: `m${index}` }, poll: 'echoes' });
    }
    for (let index = 0; index < 2; index++) await finished(server, admin, { service: 'demo', action: 'fail', params: {} });
    for (let index = 0; index < 2; index++) await finished(server, other, { service: 'demo', action: 'echo', params: { message: 'x' } });

    const blocker = await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 600_000, steps: 1 } });
    while ((await stateOf(server, admin, blocker.task.id)) !== 'PROCESSING') await new Promise((resolve) => setTimeout(resolve, 10));
    const pending = [];
    for (let index = 0; index < 3; index++) {
      pending.push(await submit(server, admin, { service: 'demo', action: 'sleep', params: { ms: 10, steps: 1 } }, 'id state dateCreated'));
    }
    firstPendingCreated = pending[0]!.task.dateCreated;
    const cancelled = await query(server, admin, 'mutation ($id: ID!) { cancelTask(id: $id) { __typename } }', { id: pending[2]!.task.id });
    expect(cancelled.cancelTask.__typename).toBe('CancelTaskSuccess');
    const dependent = await submit(server, admin, {
      service: 'demo',
      action: 'echo',
      params: { message: 'later' },
      dependsOn: [blocker.task.id],
    });
    expect(dependent.task.state).toBe('SUSPENDED');
  });

  afterAll(async () => {
    // The sleeps would hold the server's drain.
    await query(server, admin, `mutation { cancelTasks(filter: { state: [PENDING, SUSPENDED, PROCESSING] }) { __typename } }`);
    await server.stop();
  });

  it('counts the organisation’s tasks by state, for any key of it, and never another organisation’s', async () => {
    const expected = counts({ pending: 2, suspended: 1, processing: 1, succeeded: 3, failed: 2, cancelled: 1 });
    expect((await query(server, admin, COUNTS)).taskCounts).toEqual(expected);
    expect((await query(server, member, COUNTS)).taskCounts).toEqual(expected);
    expect((await query(server, other, COUNTS)).taskCounts).toEqual(counts({ succeeded: 2 }));
  });

  it('counts the tasks of the filter of `tasks`', async () => {
    const of = async (filter: Record<string, unknown>) => (await query(server, admin, COUNTS, { filter })).taskCounts;
    expect(await of({ service: 'demo', type: 'echo' })).toEqual(counts({ succeeded: 3, suspended: 1 }));
    expect(await of({ type: 'sleep' })).toEqual(counts({ pending: 2, processing: 1, cancelled: 1 }));
    expect(await of({ poll: 'echoes' })).toEqual(counts({ succeeded: 3 }));
    expect(await of({ state: ['PENDING', 'PROCESSING'] })).toEqual(counts({ pending: 2, processing: 1 }));
    expect(await of({ dateCompleted: { gte: new Date(Date.now() - 3_600_000).toISOString() } })).toEqual(
      counts({ succeeded: 3, failed: 2, cancelled: 1 }),
    );
    expect(await of({ service: 'nothing' })).toEqual(counts({}));
    // Another organisation's key, and an id that is no key: nothing matches.
    expect(await of({ key: otherKeyId })).toEqual(counts({}));
    expect(await of({ key: 'not-an-id' })).toEqual(counts({}));
    // The same filter lists the same tasks.
    const listed = await query(server, admin, `{ tasks(filter: { type: "sleep" }) { edges { node { id } } } }`);
    expect(listed.tasks.edges).toHaveLength((await of({ type: 'sleep' })).total);
  });

  it('gives every bucket of a throughput series, whose sums are the tasks that ended', async () => {
    const since = new Date(Date.now() - 3_600_000);
    const { taskThroughput } = await query(server, admin, THROUGHPUT, { since: since.toISOString(), bucketSeconds: 60 });
    expect(taskThroughput.__typename).toBe('TaskThroughputSuccess');
    const buckets = taskThroughput.buckets as { start: string; succeeded: number; failed: number; cancelled: number }[];
    expect(buckets.length).toBeGreaterThanOrEqual(60);
    buckets.forEach((bucket, index) => expect(Date.parse(bucket.start)).toBe(since.getTime() + index * 60_000));
    const sum = (state: 'succeeded' | 'failed' | 'cancelled') => buckets.reduce((total, bucket) => total + bucket[state], 0);
    expect({ succeeded: sum('succeeded'), failed: sum('failed'), cancelled: sum('cancelled') }).toEqual({ succeeded: 3, failed: 2, cancelled: 1 });

    const elsewhere = (await query(server, other, THROUGHPUT, { since: since.toISOString(), bucketSeconds: 3600 })).taskThroughput;
    expect(elsewhere.buckets.map((bucket: { succeeded: number }) => bucket.succeeded).reduce((a: number, b: number) => a + b, 0)).toBe(2);
    expect(elsewhere.buckets.every((bucket: { failed: number; cancelled: number }) => bucket.failed === 0 && bucket.cancelled === 0)).toBe(true);
  });

  it('refuses a throughput series beyond its bounds with a ValidationError naming the argument', async () => {
    const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString();
    const refusals: [string, number, string][] = [
      [hoursAgo(1), AGGREGATE_LIMITS.bucketSecondsMin - 1, 'bucketSeconds'],
      [hoursAgo(1), AGGREGATE_LIMITS.bucketSecondsMax + 1, 'bucketSeconds'],
      [hoursAgo(25), 3600, 'since'],
      [hoursAgo(-1), 60, 'since'],
      // 23 hours of 10-second buckets: over the most buckets a series has.
      [hoursAgo(23), 10, 'bucketSeconds'],
    ];
    for (const [since, bucketSeconds, field] of refusals) {
      const { taskThroughput } = await query(server, admin, THROUGHPUT, { since, bucketSeconds });
      expect(taskThroughput, JSON.stringify({ since, bucketSeconds })).toMatchObject({ __typename: 'ValidationError', code: 'INVALID', field });
    }
    const malformed = await graphql(server, admin, THROUGHPUT, { since: 'yesterday', bucketSeconds: 60 });
    expect(malformed.body.errors?.[0]?.message).toMatch(/DateTime/);
  });

  it('gives each queue its pending, running and suspended tasks, the oldest pending one, and what ended lately', async () => {
    const { queueStats } = await query(server, admin, QUEUES);
    expect(queueStats.map((queue: { action: string }) => queue.action)).toEqual(['echo', 'fail', 'sleep']);
    const [echo, fail, sleep] = queueStats;
    expect(sleep).toMatchObject({ service: 'demo', pending: 2, processing: 1, suspended: 0, oldestPendingDate: firstPendingCreated });
    expect(sleep.finishedLast15Minutes).toEqual({ succeeded: 0, failed: 0, cancelled: 1, total: 1 });
    expect(echo).toMatchObject({ pending: 0, processing: 0, suspended: 1, oldestPendingDate: null });
    expect(echo.finishedLast15Minutes).toEqual({ succeeded: 3, failed: 0, cancelled: 0, total: 3 });
    expect(fail).toMatchObject({ pending: 0, processing: 0, suspended: 0 });
    expect(fail.finishedLast15Minutes).toEqual({ succeeded: 0, failed: 2, cancelled: 0, total: 2 });
    // Each window holds the shorter ones; the minutes add up to the longest, the last one to the last minute.
    for (const queue of queueStats) {
      expect(queue.finishedLastMinute.total).toBeLessThanOrEqual(queue.finishedLast5Minutes.total);
      expect(queue.finishedLast5Minutes.total).toBeLessThanOrEqual(queue.finishedLast15Minutes.total);
      expect(queue.finishedPerMinute).toHaveLength(15);
      expect(queue.finishedPerMinute.reduce((sum: number, minute: { total: number }) => sum + minute.total, 0)).toBe(queue.finishedLast15Minutes.total);
      expect(queue.finishedPerMinute.at(-1)).toEqual(queue.finishedLastMinute);
    }

    // Read later, the same ends fall in earlier minutes, and leave the windows they are no longer in.
    const storage = await openStorage(server.database);
    try {
      const organisationId = (await server.taskport.engine.authenticate(admin))!.organisation.id;
      const ended = (await query(server, admin, `{ tasks(filter: { type: "echo", state: [SUCCEEDED] }) { edges { node { dateCompleted } } } }`)).tasks.edges.map(
        (edge: { node: { dateCompleted: string } }) => Date.parse(edge.node.dateCompleted),
      );
      const latest = Math.max(...ended);
      const later = await storage.aggregates.queueFigures(organisationId, latest + 4.5 * 60_000);
      const laterEcho = later.find((queue) => queue.action === 'echo')!;
      expect(laterEcho.finished[1].SUCCEEDED).toBe(0);
      expect(laterEcho.finished[5].SUCCEEDED + laterEcho.finished[15].SUCCEEDED).toBe(6);
      expect(laterEcho.finishedPerMinute.findLastIndex((minute) => minute.SUCCEEDED > 0)).toBe(10);
      const gone = await storage.aggregates.queueFigures(organisationId, latest + 16 * 60_000);
      expect(gone.find((queue) => queue.action === 'echo')?.finished[15].SUCCEEDED ?? 0).toBe(0);
    } finally {
      await storage.close();
    }

    const elsewhere = (await query(server, other, QUEUES)).queueStats;
    expect(elsewhere).toHaveLength(1);
    expect(elsewhere[0]).toMatchObject({ service: 'demo', action: 'echo', pending: 0, processing: 0, suspended: 0 });
    expect(elsewhere[0].finishedLast15Minutes).toEqual({ succeeded: 2, failed: 0, cancelled: 0, total: 2 });
  });
});

describe('a throughput series', () => {
  const now = Date.UTC(2026, 11, 1, 12);

  it('has as many buckets as reach now: a day of minutes is the most, 1,440', () => {
    expect(throughputSeries(now - AGGREGATE_LIMITS.throughputWindowMs, 60, now).buckets).toBe(AGGREGATE_LIMITS.throughputBucketsMax);
    expect(throughputSeries(now - 61_000, 60, now).buckets).toBe(2);
    expect(throughputSeries(now, 60, now).buckets).toBe(1);
  });

  it('counts a task that ended at now, where a bucket ends, in the last bucket', () => {
    const series = throughputSeries(now - 120_000, 60, now);
    const buckets = throughputBuckets(series, [
      { bucket: 0, state: 'FAILED', count: 1 },
      { bucket: 2, state: 'SUCCEEDED', count: 3 },
    ]);
    expect(buckets.map((bucket) => [bucket.start.getTime() - series.since, bucket.completed])).toEqual([
      [0, { SUCCEEDED: 0, FAILED: 1, CANCELLED: 0 }],
      [60_000, { SUCCEEDED: 3, FAILED: 0, CANCELLED: 0 }],
    ]);
  });
});
