import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, defineAction, defineService } from '../src/catalog/index.js';
import type { QueueStore, ServedActions } from '../src/storage/index.js';
import { createKey, globalId, query, startServer, submit, testStore, waitForTask } from './helpers.js';
import { claimOf, closeOpenedStores, enqueueMany, newTask, NOTHING, NOW, openStores, type Tenant } from './queue-fixtures.js';

afterEach(closeOpenedStores);

const A: ServedActions = [{ service: 'svc', action: 'a' }];

/** Claims one task at a time until the queue is empty: the order the claim serves them in. */
async function claimOrder(store: QueueStore, actions: ServedActions = A): Promise<number[]> {
  const order: number[] = [];
  for (;;) {
    const { claimed } = await store.work(NOTHING, claimOf(actions, 1), NOW);
    if (claimed.length === 0) return order;
    order.push(claimed[0]!.id);
  }
}

describe(`fair share between organisations on ${testStore}`, () => {
  it('takes turns between the organisations waiting in a queue, whoever submitted first', async () => {
    const { first, tenant } = await openStores();
    const busy = await tenant('busy');
    const lone = await tenant('lone');
    const backlog = await enqueueMany(first, Array.from({ length: 50 }, () => newTask(busy)));
    const [single] = await enqueueMany(first, [newTask(lone)]);
    const order = await claimOrder(first);
    expect(order).toHaveLength(51);
    // Equal shares tie, and the lower organisation id goes first: the lone task is second, not 51st.
    expect(order.indexOf(single!.id)).toBe(1);
    expect(order.filter((id) => id !== single!.id)).toEqual(backlog.map((task) => task.id));
  });

  it('keeps priority and first in, first out within an organisation', async () => {
    const { first, tenant } = await openStores();
    const one = await tenant('one');
    const two = await tenant('two');
    const tasks = await enqueueMany(first, [
      newTask(one, { priority: 0 }),
      newTask(two, { priority: 0 }),
      newTask(one, { priority: 9 }),
      newTask(two, { priority: 0 }),
      newTask(one, { priority: 0 }),
    ]);
    const [oneLow, twoFirst, oneHigh, twoSecond, oneLater] = tasks.map((task) => task.id);
    expect(await claimOrder(first)).toEqual([oneHigh, twoFirst, oneLow, twoSecond, oneLater]);
  });

  it('gives each organisation turns in proportion to its weight', async () => {
    const { first, records, tenant } = await openStores();
    const light = await tenant('light');
    const heavy = await tenant('heavy');
    await records.setOrganisationShare('heavy', { weight: 3 });
    await enqueueMany(first, Array.from({ length: 40 }, () => newTask(light)));
    await enqueueMany(first, Array.from({ length: 40 }, () => newTask(heavy)));
    const { claimed } = await first.work(NOTHING, claimOf(A, 20), NOW);
    const heavyCount = claimed.filter((task) => task.organisationId === heavy.organisationId).length;
    expect(heavyCount).toBe(15);
    expect(claimed.length - heavyCount).toBe(5);
  });

  it('lets an organisation that was away come back without taking every turn', async () => {
    const { first, tenant } = await openStores();
    const steady = await tenant('steady');
    const returning = await tenant('returning');
    await enqueueMany(first, Array.from({ length: 30 }, () => newTask(steady)));
    await enqueueMany(first, Array.from({ length: 2 }, () => newTask(returning)));
    // 'returning' is served its 2 tasks and goes away while 'steady' is served on.
    expect(await first.work(NOTHING, claimOf(A, 4), NOW)).toMatchObject({ claimed: { length: 4 } });
    await first.work(NOTHING, claimOf(A, 20), NOW);
    const back = await enqueueMany(first, Array.from({ length: 10 }, () => newTask(returning)));
    await enqueueMany(first, Array.from({ length: 10 }, () => newTask(steady)));
    const { claimed } = await first.work(NOTHING, claimOf(A, 6), NOW);
    const returned = claimed.filter((task) => task.organisationId === returning.organisationId);
    // At most one turn of credit: about half of the next claims, not all of them.
    expect(returned.length).toBeGreaterThanOrEqual(3);
    expect(returned.length).toBeLessThanOrEqual(4);
    expect(returned.map((task) => task.id)).toEqual(back.slice(0, returned.length).map((task) => task.id));
  });

  it('says in queuePosition the place the claim serves each task in', async () => {
    const { first, records, tenant } = await openStores();
    const tenants: Tenant[] = [await tenant('p1'), await tenant('p2'), await tenant('p3')];
    await records.setOrganisationShare('p2', { weight: 2 });
    // Shares that differ before the positions are read: p1 and p2 have been served some already.
    await enqueueMany(first, Array.from({ length: 6 }, (_, index) => newTask(tenants[index % 2]!)));
    await enqueueMany(first, [newTask(tenants[2]!)]);
    await first.work(NOTHING, claimOf(A, 3), NOW);
    const inputs = Array.from({ length: 45 }, (_, index) =>
      newTask(tenants[(index * 7) % 3]!, { priority: index % 5 === 0 ? 2 : 0, type: index % 9 === 0 ? 'b' : 'a' }),
    );
    const tasks = await enqueueMany(first, inputs);
    const ids = tasks.map((task) => task.id);
    const many = await first.queuePositions(ids);
    const few = await first.queuePositions(ids.slice(0, 16));
    for (const [id, position] of few) expect(many.get(id), `task ${id}`).toBe(position);
    const order = await claimOrder(first);
    const bOrder = await claimOrder(first, [{ service: 'svc', action: 'b' }]);
    for (const [id, position] of many) {
      const place = order.indexOf(id);
      expect(place === -1 ? bOrder.indexOf(id) : place, `task ${id}`).toBe(position);
    }
    expect(many.size).toBe(ids.length);
  });

  it('runs at most `concurrency` tasks of an action at once, across claims of every store', async () => {
    const { first, second, tenant } = await openStores();
    const org = await tenant('capped');
    await enqueueMany(first, Array.from({ length: 10 }, () => newTask(org)));
    const capped: ServedActions = [{ service: 'svc', action: 'a', concurrency: 3 }];
    const [one, two] = await Promise.all([
      first.work(NOTHING, claimOf(capped, 10, NOW, 'worker-1'), NOW),
      second.work(NOTHING, claimOf(capped, 10, NOW, 'worker-2'), NOW),
    ]);
    expect(one.claimed.length + two.claimed.length).toBe(3);
    const done = [...one.claimed, ...two.claimed][0]!;
    const after = await first.work(
      { ...NOTHING, outcomes: [{ taskId: done.id, attempt: 1, state: 'SUCCEEDED' }] },
      claimOf(capped, 10),
      NOW,
    );
    expect(after.claimed).toHaveLength(1);
  });

  it("caps an organisation's running tasks over every queue, and serves the others meanwhile", async () => {
    const { first, second, records, tenant } = await openStores();
    const small = await tenant('small');
    const other = await tenant('other');
    await records.setOrganisationShare('small', { maxConcurrency: 2 });
    const both: ServedActions = [
      { service: 'svc', action: 'a' },
      { service: 'svc', action: 'b' },
    ];
    await enqueueMany(first, [
      ...Array.from({ length: 5 }, () => newTask(small)),
      ...Array.from({ length: 5 }, () => newTask(small, { type: 'b' })),
      ...Array.from({ length: 5 }, () => newTask(other)),
    ]);
    const [one, two] = await Promise.all([
      first.work(NOTHING, claimOf(both, 6, NOW, 'worker-1'), NOW),
      second.work(NOTHING, claimOf(both, 6, NOW, 'worker-2'), NOW),
    ]);
    const claimed = [...one.claimed, ...two.claimed];
    expect(claimed.filter((task) => task.organisationId === small.organisationId)).toHaveLength(2);
    expect(claimed.filter((task) => task.organisationId === other.organisationId)).toHaveLength(5);
  });
});

describe(`fair share through the server on ${testStore}`, () => {
  let running = 0;
  let mostAtOnce = 0;
  let release: () => void = () => {};
  let gate = new Promise<void>((resolve) => (release = resolve));
  const startOrder: string[] = [];
  const fairService = defineService({
    slug: 'fair',
    name: 'Fair share',
    actions: [
      defineAction({
        slug: 'gated',
        name: 'Gated',
        execution: ['ASYNCHRONOUS'],
        parameters: [],
        concurrency: 2,
        handler: async () => {
          running += 1;
          mostAtOnce = Math.max(mostAtOnce, running);
          await gate;
          running -= 1;
        },
      }),
      defineAction({
        slug: 'quick',
        name: 'Quick',
        execution: ['ASYNCHRONOUS'],
        parameters: [],
        // The first holds the only worker slot until the test has submitted everything.
        handler: async ({ task }) => {
          startOrder.push(globalId('Task', task.id));
          if (startOrder.length === 1) await gate;
        },
      }),
    ],
  });
  const SUBMIT_MANY = `mutation ($inputs: [SubmitTaskInput!]!) {
    submitTasks(inputs: $inputs) { __typename ... on SubmitTasksSuccess { tasks { id } } }
  }`;
  const STARTED = `query ($ids: [ID!]!) { taskStatuses(ids: $ids) { id state } }`;

  it('never runs more of an action than its concurrency, with more worker slots free', async () => {
    const server = await startServer({ concurrency: 8 }, { catalog: new Catalog([fairService]) });
    const token = server.adminToken;
    const submitted = await query(server, token, SUBMIT_MANY, { inputs: Array.from({ length: 6 }, () => ({ service: 'fair', action: 'gated' })) });
    const ids = submitted.submitTasks.tasks.map((task: { id: string }) => task.id);
    await expect.poll(async () => (await query(server, token, STARTED, { ids })).taskStatuses.filter((task: { state: string }) => task.state === 'PROCESSING').length).toBe(2);
    release();
    await expect.poll(async () => (await query(server, token, STARTED, { ids })).taskStatuses.every((task: { state: string }) => task.state === 'SUCCEEDED'), { timeout: 10_000 }).toBe(true);
    expect(mostAtOnce).toBe(2);
    gate = new Promise<void>((resolve) => (release = resolve));
    startOrder.length = 0;
    await server.stop();
  });

  it("starts another organisation's lone task next, behind a backlog of 300", async () => {
    const server = await startServer({ concurrency: 1 }, { catalog: new Catalog([fairService]) });
    const busyToken = server.adminToken;
    const loneToken = await createKey(server, 'lone');
    const backlog = await query(server, busyToken, SUBMIT_MANY, {
      inputs: Array.from({ length: 300 }, () => ({ service: 'fair', action: 'quick' })),
    });
    expect(backlog.submitTasks.__typename).toBe('SubmitTasksSuccess');
    const lone = await submit(server, loneToken, { service: 'fair', action: 'quick' }, 'id queuePosition');
    // Its own organisation has nothing ahead; the other's turns before it: one at most.
    expect(lone.task.queuePosition).toBeLessThanOrEqual(1);
    release();
    const done = await waitForTask(server, loneToken, lone.task.id);
    expect(done.state).toBe('SUCCEEDED');
    // Started after at most the busy task already running and the busy turn that ties before it.
    expect(startOrder.indexOf(lone.task.id)).toBeGreaterThanOrEqual(0);
    expect(startOrder.indexOf(lone.task.id)).toBeLessThanOrEqual(2);
    await server.stop();
  });
});
