import { afterEach, describe, expect, it } from 'vitest';
import type { NewTask, QueueStore, ServedActions } from '../src/storage/index.js';
import { testStore } from './helpers.js';
import {
  A,
  claimOf,
  closeOpenedStores,
  enqueueMany,
  enqueueOne,
  LEASE_MS,
  newTask,
  NOTHING,
  NOW,
  openStores,
  stateOf,
} from './queue-fixtures.js';

afterEach(closeOpenedStores);


describe(`the queue contract on ${testStore}`, () => {
  it('claims only the served actions, highest priority first, then oldest, and nothing before it is due', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('claims');
    const low = await enqueueOne(first, newTask(org, { priority: 0 }));
    const highOld = await enqueueOne(first, newTask(org, { priority: 5 }));
    const highNew = await enqueueOne(first, newTask(org, { priority: 5 }));
    const other = await enqueueOne(first, newTask(org, { type: 'b', priority: 9 }));
    const later = await enqueueOne(first, newTask(org, { type: 'c', runAt: NOW + 5000 }));

    const claimed = (await first.work(NOTHING, claimOf(A, 10), NOW)).claimed;
    expect(claimed.map((task) => task.id)).toEqual([highOld.id, highNew.id, low.id]);
    expect(claimed.every((task) => task.state === 'PROCESSING' && task.attempts === 1)).toBe(true);

    const bAndC: ServedActions = [
      { service: 'svc', action: 'b' },
      { service: 'svc', action: 'c' },
    ];
    expect(await first.nextDueAt(bAndC)).toBe(NOW);
    expect((await first.work(NOTHING, claimOf(bAndC, 10), NOW)).claimed.map((task) => task.id)).toEqual([other.id]);
    expect(await first.nextDueAt(bAndC)).toBe(NOW + 5000);
    expect((await first.work(NOTHING, claimOf(bAndC, 10), NOW + 4999)).claimed).toEqual([]);
    expect(await first.pendingByAction()).toEqual([{ service: 'svc', action: 'c', pending: 1 }]);
    expect((await first.work(NOTHING, claimOf(bAndC, 10, NOW + 5000), NOW + 5000)).claimed.map((task) => task.id)).toEqual([later.id]);
    expect(await first.nextDueAt(bAndC)).toBeNull();
  });

  it('never hands one task to two concurrent claims', async () => {
    const { first, second, tenant } = await openStores();
    const org = await tenant('concurrent-claims');
    const submitted = await enqueueMany(
      first,
      Array.from({ length: 300 }, (_, index) => newTask(org, { priority: index % 3 })),
    );
    const claimedBy = async (store: QueueStore, owner: string) => {
      const ids: number[] = [];
      for (;;) {
        const { claimed } = await store.work(NOTHING, claimOf(A, 7, NOW, owner), NOW);
        if (claimed.length === 0) return ids;
        ids.push(...claimed.map((task) => task.id));
      }
    };
    const turns = await Promise.all([
      claimedBy(first, 'one'),
      claimedBy(second, 'two'),
      claimedBy(first, 'three'),
      claimedBy(second, 'four'),
    ]);
    const all = turns.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.sort((a, b) => a - b)).toEqual(submitted.map((task) => task.id).sort((a, b) => a - b));
  });

  it('ignores the outcome and progress of a stale attempt', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('stale');
    const task = await enqueueOne(first, newTask(org));
    const [running] = (await first.work(NOTHING, claimOf(A, 1), NOW)).claimed;
    expect(running!.attempts).toBe(1);

    const stale = await first.work(
      {
        logs: [],
        results: [],
        progress: [{ taskId: task.id, attempt: 2, progress: 0.5 }],
        outcomes: [
          { taskId: task.id, attempt: 2, state: 'SUCCEEDED' },
          { taskId: task.id, attempt: 0, state: 'FAILED', error: { code: 'X', message: 'x' } },
          { taskId: task.id, attempt: 2, state: 'RELEASED' },
        ],
      },
      claimOf(A, 0),
      NOW,
    );
    expect(stale.changed).toEqual([]);
    expect(stale.progressed).toEqual([]);
    expect(await stateOf(first, org, task.id)).toBe('PROCESSING');

    const current = await first.work(
      {
        logs: [{ taskId: task.id, level: 'INFO', message: 'hello', source: 'handler', timestamp: NOW }],
        results: [{ taskId: task.id, name: 'out', contentType: 'application/json', data: '{"a":1}', timestamp: NOW }],
        progress: [{ taskId: task.id, attempt: 1, progress: 0.5 }],
        outcomes: [{ taskId: task.id, attempt: 1, state: 'SUCCEEDED' }],
      },
      claimOf(A, 0),
      NOW,
    );
    expect(current.progressed).toEqual([{ taskId: task.id, organisationId: org.organisationId, progress: 0.5 }]);
    expect(current.changed.map((changed) => [changed.id, changed.state])).toEqual([[task.id, 'SUCCEEDED']]);
    expect(current.logs).toMatchObject([{ taskId: task.id, level: 'INFO', message: 'hello' }]);
    expect(current.results).toMatchObject([{ taskId: task.id, name: 'out', size: 7, retrieved: false }]);

    const again = await first.work(
      { ...NOTHING, outcomes: [{ taskId: task.id, attempt: 1, state: 'FAILED', error: { code: 'X', message: 'x' } }] },
      claimOf(A, 0),
      NOW,
    );
    expect(again.changed).toEqual([]);
    expect(await stateOf(first, org, task.id)).toBe('SUCCEEDED');
  });

  it('rolls back alone the submission of a group commit that fails, and commits the others', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('group');
    const dependency = await enqueueOne(first, newTask(org, { type: 'dependency' }));
    const missing = dependency.id + 1_000_000;
    const outcomes = await Promise.allSettled([
      first.enqueue([newTask(org, { params: { n: 1 } })], NOW),
      first.enqueue([newTask(org, { params: { n: 2 } }), newTask(org, { dependsOn: [dependency.id, missing] })], NOW),
      first.enqueue([newTask(org, { params: { n: 3 }, dependsOn: [dependency.id] })], NOW),
      // A key that does not exist: the driver's error fails this submission only.
      first.enqueue([newTask(org, { params: { n: 4 } }), newTask(org, { keyId: org.keyId + 1000 })], NOW),
      first.enqueue([newTask(org, { params: { n: 5 } })], NOW),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const [one, two, three, , five] = outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : null));
    expect(two).toEqual({ ok: false, index: 1, missingDependency: missing });
    expect(one).toMatchObject({ ok: true, tasks: [{ created: true, task: { state: 'PENDING', params: { n: 1 } } }] });
    expect(three).toMatchObject({ ok: true, tasks: [{ created: true, task: { state: 'SUSPENDED', params: { n: 3 } } }] });
    expect(five).toMatchObject({ ok: true, tasks: [{ created: true, task: { state: 'PENDING', params: { n: 5 } } }] });
    const claimed = (await first.work(NOTHING, claimOf(A, 100), NOW)).claimed;
    expect(claimed.map((task) => task.params)).toEqual([{ n: 1 }, { n: 5 }]);
  });

  it('rolls back alone the failing submission of a group that reads nothing, and commits the others', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('plain-group');
    const outcomes = await Promise.allSettled([
      first.enqueue([newTask(org, { params: { n: 1 } }), newTask(org, { params: { n: 2 } })], NOW),
      first.enqueue([newTask(org, { params: { n: 3 } }), newTask(org, { keyId: org.keyId + 1000 })], NOW + 1),
      first.enqueue([newTask(org, { params: { n: 4 } })], NOW + 2),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const [one, , three] = outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : null));
    expect(one).toMatchObject({ ok: true, tasks: [{ task: { params: { n: 1 } } }, { task: { params: { n: 2 } } }] });
    expect(three).toMatchObject({ ok: true, tasks: [{ task: { params: { n: 4 }, dateCreated: new Date(NOW + 2) } }] });
    const claimed = (await first.work(NOTHING, claimOf(A, 100), NOW + 2)).claimed;
    expect(claimed.map((task) => task.params)).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
  });

  it('answers a submission with the tasks as a read gives them, in input order, for every kind of input', async () => {
    const { first, records, tenant } = await openStores();
    const org = await tenant('answers');
    const [dependency, cancelled] = await enqueueMany(first, [newTask(org, { type: 'dependency' }), newTask(org, { type: 'dependency' })]);
    await first.cancel(org.organisationId, cancelled!.id, NOW);
    const kinds: ((index: number) => Partial<NewTask>)[] = [
      () => ({}),
      () => ({ user: 'u', session: 's', poll: 'p', target: 't', priority: -3, maxAttempts: 5, timeoutMs: 7000 }),
      () => ({ params: { nested: { list: [1, 'two', null] }, unicode: 'é✓', big: 2 ** 52 }, runAt: NOW + 60_000 }),
      (index) => ({ idempotencyKey: `answer-${index}` }),
      () => ({ dependsOn: [dependency!.id] }),
      () => ({ dependsOn: [cancelled!.id] }),
      () => ({ webhook: { url: 'https://example.com/hook', events: ['RESULT', 'COMPLETED', 'RESULT'] } }),
      () => ({ retrievalProtocol: 'CHANNEL', scheduledFor: NOW - 1000 }),
    ];
    const varied = (index: number) => kinds[index % kinds.length]!(index);
    // 300 inputs cross the sizes of every multi-row statement and the reads between them.
    const inputs = Array.from({ length: 300 }, (_, index) => newTask(org, { ...varied(index), params: { index, ...varied(index).params } }));
    const answered = await enqueueMany(first, inputs);
    expect(answered.map((task) => task.params.index)).toEqual(inputs.map((input) => input.params.index));
    const read = await records.getTasks(org.organisationId, answered.map((task) => task.id));
    const byId = new Map(read.map((task) => [task.id, task]));
    for (const task of answered) expect(task).toEqual(byId.get(task.id));
    expect(answered.filter((task) => task.state === 'FAILED')).toHaveLength(37);
    expect(new Set(answered.map((task) => task.id)).size).toBe(300);
  });

  it('gives one task for an idempotency key raced from two stores', async () => {
    const { first, second, tenant } = await openStores();
    const org = await tenant('idempotency');
    const other = await tenant('idempotency-other');
    for (let round = 0; round < 20; round++) {
      const key = `key-${round}`;
      const [a, b, c] = await Promise.all([
        first.enqueue([newTask(org, { idempotencyKey: key })], NOW),
        second.enqueue([newTask(org, { idempotencyKey: key }), newTask(org, { idempotencyKey: key })], NOW),
        second.enqueue([newTask(other, { idempotencyKey: key })], NOW),
      ]);
      if (!a.ok || !b.ok || !c.ok) throw new Error('enqueue failed');
      const entries = [...a.tasks, ...b.tasks];
      expect(new Set(entries.map((entry) => entry.task.id)).size).toBe(1);
      expect(entries.filter((entry) => entry.created)).toHaveLength(1);
      expect(c.tasks[0]!.created).toBe(true);
      expect(c.tasks[0]!.task.id).not.toBe(entries[0]!.task.id);
    }
  });

  it('never leaves a task suspended when its dependency finishes while it is submitted', async () => {
    const { first, second, tenant } = await openStores();
    const org = await tenant('dependency-race');
    for (let round = 0; round < 25; round++) {
      const dependency = await enqueueOne(first, newTask(org));
      const [running] = (await first.work(NOTHING, claimOf(A, 1), NOW)).claimed;
      expect(running!.id).toBe(dependency.id);
      const [, submitted] = await Promise.all([
        first.work({ ...NOTHING, outcomes: [{ taskId: dependency.id, attempt: 1, state: 'SUCCEEDED' }] }, claimOf(A, 0), NOW),
        second.enqueue([newTask(org, { type: 'dependent', dependsOn: [dependency.id] })], NOW),
      ]);
      if (!submitted.ok) throw new Error('enqueue failed');
      expect(await stateOf(first, org, submitted.tasks[0]!.task.id)).toBe('PENDING');
    }
  });

  it('releases a task whose two dependencies succeed in two concurrent turns', async () => {
    const { first, second, tenant } = await openStores();
    const org = await tenant('two-dependencies');
    for (let round = 0; round < 15; round++) {
      const left = await enqueueOne(first, newTask(org));
      const right = await enqueueOne(first, newTask(org));
      const claimed = (await first.work(NOTHING, claimOf(A, 2), NOW)).claimed;
      expect(claimed).toHaveLength(2);
      const dependent = await enqueueOne(first, newTask(org, { type: 'dependent', dependsOn: [left.id, right.id] }));
      expect(dependent.state).toBe('SUSPENDED');
      const turns = await Promise.all([
        first.work({ ...NOTHING, outcomes: [{ taskId: left.id, attempt: 1, state: 'SUCCEEDED' }] }, claimOf(A, 0), NOW),
        second.work({ ...NOTHING, outcomes: [{ taskId: right.id, attempt: 1, state: 'SUCCEEDED' }] }, claimOf(A, 0), NOW),
      ]);
      expect(await stateOf(first, org, dependent.id)).toBe('PENDING');
      const releases = turns.flatMap((turn) => turn.changed).filter((task) => task.id === dependent.id);
      expect(releases.map((task) => task.state)).toEqual(['PENDING']);
    }
  });

  it('fails the dependents of a failed task, transitively', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('failing');
    const root = await enqueueOne(first, newTask(org));
    const child = await enqueueOne(first, newTask(org, { type: 'child', dependsOn: [root.id] }));
    const grandchild = await enqueueOne(first, newTask(org, { type: 'child', dependsOn: [child.id] }));
    await first.work(NOTHING, claimOf(A, 1), NOW);
    const { changed } = await first.work(
      { ...NOTHING, outcomes: [{ taskId: root.id, attempt: 1, state: 'FAILED', error: { code: 'BOOM', message: 'boom' } }] },
      claimOf(A, 0),
      NOW,
    );
    expect(changed.map((task) => [task.id, task.state, task.error?.code])).toEqual([
      [root.id, 'FAILED', 'BOOM'],
      [child.id, 'FAILED', 'DEPENDENCY_FAILED'],
      [grandchild.id, 'FAILED', 'DEPENDENCY_FAILED'],
    ]);
    const late = await enqueueOne(first, newTask(org, { type: 'child', dependsOn: [root.id] }));
    expect(late.state).toBe('FAILED');
  });

  it('cancels a waiting task at once and a running one on request', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('cancel');
    const running = await enqueueOne(first, newTask(org));
    await first.work(NOTHING, claimOf(A, 1), NOW);
    const waiting = await enqueueOne(first, newTask(org));
    const dependent = await enqueueOne(first, newTask(org, { type: 'child', dependsOn: [waiting.id] }));
    const cancelled = await first.cancel(org.organisationId, waiting.id, NOW);
    expect(cancelled.outcome === 'cancelled' && cancelled.changed.map((task) => [task.id, task.state])).toEqual([
      [waiting.id, 'CANCELLED'],
      [dependent.id, 'FAILED'],
    ]);
    expect(await first.cancel(org.organisationId, running.id, NOW)).toMatchObject({ outcome: 'requested', task: { cancelRequested: true } });
    expect(await first.cancel(org.organisationId, waiting.id, NOW)).toMatchObject({ outcome: 'terminal' });
    expect(await first.cancel(org.organisationId + 1000, running.id, NOW)).toEqual({ outcome: 'not-found' });
  });

  it('counts queue positions exactly, for a few ids and for many', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('positions');
    const inputs = Array.from({ length: 60 }, (_, index) =>
      newTask(org, { type: index % 3 === 0 ? 'b' : 'a', priority: index % 4 }),
    );
    const tasks = await enqueueMany(first, inputs);
    // One task of queue a leaves the queue: it has no position, and the others move up.
    const [running] = (await first.work(NOTHING, claimOf(A, 1), NOW)).claimed;
    const pending = tasks.filter((task) => task.id !== running!.id);
    const expected = new Map<number, number>();
    for (const type of ['a', 'b']) {
      const queue = pending.filter((task) => task.type === type).sort((x, y) => y.priority - x.priority || x.id - y.id);
      for (const [position, task] of queue.entries()) expected.set(task.id, position);
    }
    const few = [pending[0]!.id, pending[7]!.id, pending[30]!.id, running!.id];
    expect(await first.queuePositions(few)).toEqual(new Map(few.filter((id) => expected.has(id)).map((id) => [id, expected.get(id)!])));
    const many = [...tasks.map((task) => task.id), running!.id + 10_000];
    expect(await first.queuePositions(many)).toEqual(expected);
  });

  it('reads the statuses of 10,000 ids, found, missing and of another organisation', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('statuses');
    const other = await tenant('statuses-other');
    const ours = await enqueueMany(first, Array.from({ length: 6000 }, () => newTask(org)));
    const theirs = await enqueueMany(first, Array.from({ length: 1000 }, () => newTask(other)));
    const highest = Math.max(...theirs.map((task) => task.id));
    const missing = Array.from({ length: 3000 }, (_, index) => highest + 1 + index);
    const ids = [...ours.map((task) => task.id), ...theirs.map((task) => task.id), ...missing];
    expect(ids).toHaveLength(10_000);
    const statuses = await first.statuses(org.organisationId, ids);
    expect(statuses.size).toBe(6000);
    expect(statuses.get(ours[0]!.id)).toEqual({
      id: ours[0]!.id,
      state: 'PENDING',
      resultRetrieved: false,
      retrievalProtocol: 'STORE',
      error: null,
    });
    expect(ours.every((task) => statuses.has(task.id))).toBe(true);
  });

  it('answers statuses read in chunks as each id read alone, whatever the order of the ids', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('statuses-chunks');
    const other = await tenant('statuses-chunks-other');
    const ours = await enqueueMany(first, Array.from({ length: 2400 }, () => newTask(org)));
    const theirs = await enqueueMany(first, Array.from({ length: 300 }, () => newTask(other)));
    const claimed = (await first.work(NOTHING, claimOf(A, 50), NOW)).claimed.map((task) => task.id);
    for (const task of ours.slice(-40)) expect((await first.cancel(org.organisationId, task.id, NOW)).outcome).toBe('cancelled');
    const highest = Math.max(...theirs.map((task) => task.id));
    // Interleaved, so that every chunk holds ours, theirs and missing ids, and some ids twice.
    const ids = ours.flatMap((task, index) => [
      task.id,
      ...(index < theirs.length ? [theirs[index]!.id] : []),
      ...(index % 7 === 0 ? [highest + 1 + index] : []),
      ...(index % 500 === 0 ? [ours[0]!.id] : []),
    ]);
    expect(ids.length).toBeGreaterThan(3000);
    const expected = new Map();
    for (const id of new Set(ids)) {
      const alone = (await first.statuses(org.organisationId, [id])).get(id);
      if (alone) expected.set(id, alone);
    }
    expect(expected.size).toBe(ours.length);
    const states = new Set([...expected.values()].map((status) => status.state));
    expect(states).toEqual(new Set(['PENDING', 'PROCESSING', 'CANCELLED']));
    expect(claimed.length).toBeGreaterThan(0);
    expect(await first.statuses(org.organisationId, ids)).toEqual(expected);
    expect(await first.statuses(org.organisationId, [...ids].reverse())).toEqual(expected);
  });

  it('renews the leases its owner holds, and reclaims expired ones once, however many reclaim', async () => {
    const { first, second, tenant } = await openStores();
    const org = await tenant('leases');
    const retried = await enqueueOne(first, newTask(org, { priority: 3 }));
    const lost = await enqueueOne(first, newTask(org, { priority: 2, maxAttempts: 1 }));
    const cancelled = await enqueueOne(first, newTask(org, { priority: 1 }));
    const dependent = await enqueueOne(first, newTask(org, { type: 'child', dependsOn: [lost.id] }));
    const claimed = (await first.work(NOTHING, claimOf(A, 3, NOW, 'worker-1'), NOW)).claimed;
    expect(claimed.map((task) => task.id)).toEqual([retried.id, lost.id, cancelled.id]);
    await first.cancel(org.organisationId, cancelled.id, NOW);

    const ids = claimed.map((task) => task.id);
    const renewed = await second.renewLeases('worker-1', [...ids, dependent.id], NOW + 2 * LEASE_MS);
    expect(renewed.held.sort((a, b) => a - b)).toEqual(ids.sort((a, b) => a - b));
    expect(renewed.cancelRequested).toEqual([cancelled.id]);
    expect(await first.renewLeases('worker-2', ids, NOW + 2 * LEASE_MS)).toEqual({ held: [], cancelRequested: [] });

    expect(await first.reclaimExpiredLeases(NOW + LEASE_MS)).toEqual([]);
    const expiry = NOW + 2 * LEASE_MS;
    const reclaims = await Promise.all([
      first.reclaimExpiredLeases(expiry),
      second.reclaimExpiredLeases(expiry),
      first.reclaimExpiredLeases(expiry),
      second.reclaimExpiredLeases(expiry),
    ]);
    const changed = reclaims.flat();
    expect(changed.map((task) => task.id).sort((a, b) => a - b)).toEqual([...ids, dependent.id].sort((a, b) => a - b));
    const byId = new Map(changed.map((task) => [task.id, task]));
    expect(byId.get(retried.id)).toMatchObject({ state: 'PENDING', attempts: 1 });
    expect(byId.get(lost.id)).toMatchObject({ state: 'FAILED', error: { code: 'WORKER_LOST' } });
    expect(byId.get(cancelled.id)).toMatchObject({ state: 'CANCELLED', error: { code: 'CANCELLED' } });
    expect(byId.get(dependent.id)).toMatchObject({ state: 'FAILED', error: { code: 'DEPENDENCY_FAILED' } });

    // The lost lease is gone: its former owner cannot renew it, and the next claim gets a new attempt.
    expect((await first.renewLeases('worker-1', ids, expiry + LEASE_MS)).held).toEqual([]);
    const [again] = (await second.work(NOTHING, claimOf(A, 1, expiry, 'worker-2'), expiry)).claimed;
    expect(again).toMatchObject({ id: retried.id, attempts: 2 });
  });

  it('reserves task ids no one else gets, concurrent calls and later tasks included', async () => {
    const { first, second, tenant } = await openStores();
    const org = await tenant('reserve');
    const before = await enqueueOne(first, newTask(org));
    const reservations = await Promise.all(
      Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? first : second).reserveTaskIds(25)),
    );
    const after = await enqueueOne(second, newTask(org));
    const ids = [before.id, ...reservations.flat(), after.id];
    expect(reservations.every((reserved) => reserved.length === 25)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('retries a failed attempt when it is due, unless its cancellation was requested', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('retry');
    const retried = await enqueueOne(first, newTask(org, { priority: 1 }));
    const cancelled = await enqueueOne(first, newTask(org));
    await first.work(NOTHING, claimOf(A, 2), NOW);
    await first.cancel(org.organisationId, cancelled.id, NOW);
    const error = { code: 'FLAKY', message: 'try again' };
    const { changed } = await first.work(
      {
        ...NOTHING,
        outcomes: [
          { taskId: retried.id, attempt: 1, state: 'PENDING', error, retryAt: NOW + 500 },
          { taskId: cancelled.id, attempt: 1, state: 'PENDING', error, retryAt: NOW + 500 },
        ],
      },
      claimOf(A, 10),
      NOW,
    );
    expect(changed.map((task) => [task.id, task.state, task.error])).toEqual([
      [retried.id, 'PENDING', error],
      [cancelled.id, 'CANCELLED', { code: 'CANCELLED', message: 'Cancelled on request.' }],
    ]);
    expect(await first.nextDueAt(A)).toBe(NOW + 500);
    const [again] = (await first.work(NOTHING, claimOf(A, 10, NOW + 500), NOW + 500)).claimed;
    expect(again).toMatchObject({ id: retried.id, attempts: 2, state: 'PROCESSING', progress: null });
  });

  it('hands back a released attempt without spending it', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('release');
    const task = await enqueueOne(first, newTask(org));
    await first.work(NOTHING, claimOf(A, 1), NOW);
    const { changed, claimed } = await first.work(
      { ...NOTHING, outcomes: [{ taskId: task.id, attempt: 1, state: 'RELEASED' }] },
      claimOf(A, 1, NOW + 1),
      NOW + 1,
    );
    expect(changed).toMatchObject([{ id: task.id, state: 'PENDING', attempts: 0 }]);
    expect(claimed).toMatchObject([{ id: task.id, state: 'PROCESSING', attempts: 1 }]);
  });

  it('completes the retrieval of a CHANNEL task whose payloads were delivered before it ended', async () => {
    const { first, records, tenant } = await openStores();
    const org = await tenant('channel');
    const delivered = await enqueueOne(first, newTask(org, { retrievalProtocol: 'CHANNEL', priority: 1 }));
    const undelivered = await enqueueOne(first, newTask(org, { retrievalProtocol: 'CHANNEL' }));
    await first.work(NOTHING, claimOf(A, 2), NOW);
    const result = (taskId: number) => ({ taskId, name: 'out', contentType: 'application/json', data: '1', timestamp: NOW });
    const { results } = await first.work(
      { ...NOTHING, results: [result(delivered.id), result(undelivered.id)] },
      claimOf(A, 0),
      NOW,
    );
    const resultOf = results.find((written) => written.taskId === delivered.id)!;
    expect(await records.claimResultDelivery(resultOf.id, 'subscriber')).not.toBeNull();
    expect(await records.confirmResultDelivery(resultOf.id, 'subscriber', NOW)).toBe(true);
    const { changed } = await first.work(
      {
        ...NOTHING,
        outcomes: [
          { taskId: delivered.id, attempt: 1, state: 'SUCCEEDED' },
          { taskId: undelivered.id, attempt: 1, state: 'SUCCEEDED' },
        ],
      },
      claimOf(A, 0),
      NOW,
    );
    expect(changed.map((task) => [task.id, task.resultRetrieved])).toEqual([
      [delivered.id, true],
      [undelivered.id, false],
    ]);
    expect((await first.statuses(org.organisationId, [delivered.id])).get(delivered.id)?.resultRetrieved).toBe(true);
  });

  it('answers an empty submission in a group with nothing', async () => {
    const { first, tenant } = await openStores();
    const org = await tenant('empty');
    const [empty, one] = await Promise.all([first.enqueue([], NOW), first.enqueue([newTask(org)], NOW)]);
    expect(empty).toEqual({ ok: true, tasks: [] });
    expect(one).toMatchObject({ ok: true, tasks: [{ created: true }] });
  });

  it('records answered real-time calls as finished tasks with their logs and delivered results', async () => {
    const { first, records, tenant } = await openStores();
    const org = await tenant('executions');
    const allocation = await records.createAllocation(
      { organisationId: org.organisationId, keyId: org.keyId, name: 'rt', service: 'svc', action: 'rt', instances: 1, timeoutMs: 1000 },
      NOW,
    );
    const [succeededId, failedId] = await first.reserveTaskIds(2);
    const execution = {
      organisationId: org.organisationId,
      keyId: org.keyId,
      allocationId: allocation.id,
      service: 'svc',
      type: 'rt',
      params: { x: 1 },
      timeoutMs: 1000,
      retrievalProtocol: 'STORE' as const,
      dateCreated: NOW,
      dateCompleted: NOW + 5,
    };
    const recorded = await first.recordExecutions([
      {
        ...execution,
        taskId: succeededId!,
        state: 'SUCCEEDED',
        error: null,
        progress: 1,
        logs: [{ level: 'INFO', message: 'answered', source: 'handler', timestamp: NOW + 1 }],
        results: [{ name: 'out', contentType: 'application/json', size: 3 }],
      },
      { ...execution, taskId: failedId!, state: 'FAILED', error: { code: 'E', message: 'e' }, progress: null, logs: [], results: [] },
    ]);
    const stored = await records.getTasks(org.organisationId, [succeededId!, failedId!]);
    expect(stored.sort((a, b) => a.id - b.id)).toEqual(recorded.sort((a, b) => a.id - b.id));
    expect(await records.taskResults([succeededId!, failedId!])).toMatchObject([
      { taskId: succeededId, name: 'out', size: 3, retrieved: true },
    ]);
    expect((await records.listAllocations(org.organisationId)).map((listed) => listed.executions)).toEqual([2]);
  });
});
