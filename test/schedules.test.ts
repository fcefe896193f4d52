import { describe, expect, it } from 'vitest';
import { createKey, graphql, query, startServer, type TestServer } from './helpers.js';

// Schedules through the API of a real server, its scheduler firing on the real clock.

const SCHEDULE_FIELDS = `id name cron timezone service action params priority overlap catchUp paused dateCreated dateUpdated`;

const CREATE = `mutation ($input: CreateScheduleInput!) {
  createSchedule(input: $input) {
    __typename
    ... on ScheduleSuccess { schedule { ${SCHEDULE_FIELDS} nextRuns(count: 3) } }
    ... on ValidationError { code field message }
    ... on Error { code message }
  }
}`;

async function createSchedule(server: TestServer, token: string, input: Record<string, unknown>) {
  return (await query(server, token, CREATE, { input })).createSchedule;
}

async function created(server: TestServer, input: Record<string, unknown>) {
  const result = await createSchedule(server, server.adminToken, input);
  expect(result.__typename, JSON.stringify(result)).toBe('ScheduleSuccess');
  return result.schedule;
}

const SCHEDULE_TASKS = `query ($id: ID!, $first: Int, $after: String) {
  schedule(id: $id) {
    lastRun { scheduledFor outcome task { id } }
    tasks(first: $first, after: $after) {
      edges { cursor node { id state scheduledFor schedule { id name } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

/** Polls until `condition` holds; the deadline only bounds a failing test. */
async function eventually<T>(read: () => Promise<T>, condition: (value: T) => boolean, what: string, deadlineMs = 20_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await read();
    if (condition(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('schedules API', () => {
  it('creates, lists, reads, updates, pauses, resumes and deletes a schedule', async () => {
    const server = await startServer();
    const schedule = await created(server, {
      name: 'nightly echo',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      service: 'demo',
      action: 'echo',
      params: { message: 'hi' },
      priority: 5,
    });
    expect(schedule).toMatchObject({
      name: 'nightly echo',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      service: 'demo',
      action: 'echo',
      params: { message: 'hi' },
      priority: 5,
      overlap: 'ALLOW',
      catchUp: 'NONE',
      paused: false,
    });
    expect(schedule.nextRuns).toHaveLength(3);
    // 02:30 in Berlin is 00:30 or 01:30 UTC, one day apart.
    for (const run of schedule.nextRuns) expect(run).toMatch(/T0[01]:30:00\.000Z$/);
    const times = schedule.nextRuns.map((run: string) => Date.parse(run));
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(23 * 3600_000);

    const utc = await created(server, { name: 'every minute', cron: '* * * * *', service: 'demo', action: 'echo', params: { message: 'm' } });
    expect(utc.timezone).toBe('UTC');

    const list = await query(server, server.adminToken, `{ schedules(first: 1) { edges { node { name } } pageInfo { hasNextPage endCursor } } }`);
    expect(list.schedules.edges.map((edge: any) => edge.node.name)).toEqual(['nightly echo']);
    expect(list.schedules.pageInfo.hasNextPage).toBe(true);
    const rest = await query(server, server.adminToken, `query ($after: String) { schedules(after: $after) { edges { node { name } } } }`, {
      after: list.schedules.pageInfo.endCursor,
    });
    expect(rest.schedules.edges.map((edge: any) => edge.node.name)).toEqual(['every minute']);

    const node = await query(server, server.adminToken, `query ($id: ID!) { node(id: $id) { ... on Schedule { name } } }`, { id: schedule.id });
    expect(node.node).toEqual({ name: 'nightly echo' });

    const updated = await query(
      server,
      server.adminToken,
      `mutation ($id: ID!, $input: UpdateScheduleInput!) {
        updateSchedule(id: $id, input: $input) { __typename ... on ScheduleSuccess { schedule { cron overlap params nextRuns(count: 2) } } }
      }`,
      { id: schedule.id, input: { cron: '0 * * * *', overlap: 'SKIP' } },
    );
    expect(updated.updateSchedule.schedule).toMatchObject({ cron: '0 * * * *', overlap: 'SKIP', params: { message: 'hi' } });
    const [first, second] = updated.updateSchedule.schedule.nextRuns.map((run: string) => Date.parse(run));
    expect(second - first).toBe(3600_000);

    const paused = await query(server, server.adminToken, `mutation ($id: ID!) { pauseSchedule(id: $id) { ... on ScheduleSuccess { schedule { paused } } } }`, { id: schedule.id });
    expect(paused.pauseSchedule.schedule.paused).toBe(true);
    const resumed = await query(server, server.adminToken, `mutation ($id: ID!) { resumeSchedule(id: $id) { ... on ScheduleSuccess { schedule { paused } } } }`, { id: schedule.id });
    expect(resumed.resumeSchedule.schedule.paused).toBe(false);

    const deleted = await query(server, server.adminToken, `mutation ($id: ID!) { deleteSchedule(id: $id) { __typename ... on ScheduleSuccess { schedule { name } } } }`, { id: schedule.id });
    expect(deleted.deleteSchedule).toEqual({ __typename: 'ScheduleSuccess', schedule: { name: 'nightly echo' } });
    const again = await query(server, server.adminToken, `mutation ($id: ID!) { deleteSchedule(id: $id) { __typename } }`, { id: schedule.id });
    expect(again.deleteSchedule.__typename).toBe('NotFoundError');
    expect((await query(server, server.adminToken, `query ($id: ID!) { schedule(id: $id) { name } }`, { id: schedule.id })).schedule).toBeNull();

    // The name is free again once its schedule is deleted.
    await created(server, { name: 'nightly echo', cron: '@daily', service: 'demo', action: 'echo', params: { message: 'x' } });
    await server.stop();
  });

  it('refuses bad input with the field at fault, as a submission would', async () => {
    const server = await startServer();
    const base = { name: 's', cron: '* * * * *', service: 'demo', action: 'echo', params: { message: 'm' } };
    const cases: [Record<string, unknown>, string][] = [
      [{ cron: 'every day' }, 'cron'],
      [{ cron: '61 * * * *' }, 'cron'],
      [{ cron: '0 0 31 2 *' }, 'cron'],
      [{ timezone: 'Mars/Olympus' }, 'timezone'],
      [{ name: '  ' }, 'name'],
      [{ service: 'nope' }, 'service'],
      [{ action: 'nope' }, 'action'],
      [{ params: {} }, 'message'],
      [{ params: { message: 'm', extra: 1 } }, 'extra'],
      [{ priority: 10_000_000 }, 'priority'],
    ];
    for (const [change, field] of cases) {
      const result = await createSchedule(server, server.adminToken, { ...base, ...change });
      expect(result, JSON.stringify(change)).toMatchObject({ __typename: 'ValidationError', field });
    }
    await created(server, base);
    const duplicate = await createSchedule(server, server.adminToken, base);
    expect(duplicate).toMatchObject({ __typename: 'ConflictError', code: 'ALREADY_EXISTS' });

    const schedule = (await query(server, server.adminToken, `{ schedules { edges { node { id } } } }`)).schedules.edges[0].node;
    const update = await query(
      server,
      server.adminToken,
      `mutation ($id: ID!, $input: UpdateScheduleInput!) { updateSchedule(id: $id, input: $input) { __typename ... on ValidationError { field } } }`,
      { id: schedule.id, input: { params: { message: 3 } } },
    );
    expect(update.updateSchedule).toEqual({ __typename: 'ValidationError', field: 'message' });
    const badTimezone = await query(
      server,
      server.adminToken,
      `mutation ($id: ID!, $input: UpdateScheduleInput!) { updateSchedule(id: $id, input: $input) { __typename ... on ValidationError { field } } }`,
      { id: schedule.id, input: { timezone: 'Nowhere/Else' } },
    );
    expect(badTimezone.updateSchedule).toEqual({ __typename: 'ValidationError', field: 'timezone' });
    const missing = await query(server, server.adminToken, `mutation { pauseSchedule(id: "nonsense") { __typename } }`);
    expect(missing.pauseSchedule.__typename).toBe('NotFoundError');
    const tooMany = await graphql(server, server.adminToken, `query ($id: ID!) { schedule(id: $id) { nextRuns(count: 101) } }`, { id: schedule.id });
    expect(tooMany.body.errors?.[0]?.extensions?.code).toBe('INVALID');
    await server.stop();
  });

  it('refuses a MEMBER key, and hides schedules from other organisations', async () => {
    const server = await startServer();
    const schedule = await created(server, { name: 's', cron: '@hourly', service: 'demo', action: 'echo', params: { message: 'm' } });
    const member = await createKey(server, 'default', 'MEMBER');
    const refused = await graphql(server, member, CREATE, {
      input: { name: 't', cron: '@hourly', service: 'demo', action: 'echo', params: { message: 'm' } },
    });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const listed = await graphql(server, member, `{ schedules { edges { node { id } } } }`);
    expect(listed.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const asNode = await query(server, member, `query ($id: ID!) { node(id: $id) { id } }`, { id: schedule.id });
    expect(asNode.node).toBeNull();

    const otherAdmin = await createKey(server, 'other', 'ADMIN');
    expect((await query(server, otherAdmin, `query ($id: ID!) { schedule(id: $id) { id } }`, { id: schedule.id })).schedule).toBeNull();
    const trigger = await query(server, otherAdmin, `mutation ($id: ID!) { triggerSchedule(id: $id) { __typename } }`, { id: schedule.id });
    expect(trigger.triggerSchedule.__typename).toBe('NotFoundError');
    await server.stop();
  });

  it('triggers a paused schedule once now: a task that names its schedule and fire time', async () => {
    const server = await startServer();
    const schedule = await created(server, { name: 'manual', cron: '0 0 1 1 *', service: 'demo', action: 'echo', params: { message: 'now' } });
    await query(server, server.adminToken, `mutation ($id: ID!) { pauseSchedule(id: $id) { __typename } }`, { id: schedule.id });
    const before = Date.now();
    const triggered = await query(
      server,
      server.adminToken,
      `mutation ($id: ID!) { triggerSchedule(id: $id) { __typename ... on TriggerScheduleSuccess { task { id params scheduledFor schedule { id name } } } } }`,
      { id: schedule.id },
    );
    const { task } = triggered.triggerSchedule;
    expect(task.params).toEqual({ message: 'now' });
    expect(task.schedule).toEqual({ id: schedule.id, name: 'manual' });
    expect(Date.parse(task.scheduledFor)).toBeGreaterThanOrEqual(before - 1);
    const read = await query(server, server.adminToken, SCHEDULE_TASKS, { id: schedule.id });
    expect(read.schedule.lastRun).toMatchObject({ outcome: 'CREATED', task: { id: task.id }, scheduledFor: task.scheduledFor });
    expect(read.schedule.tasks.edges.map((edge: any) => edge.node.id)).toEqual([task.id]);
    // Other keys' tasks do not show it.
    const member = await createKey(server, 'default', 'MEMBER');
    const asMember = await query(server, member, `query ($id: ID!) { task(id: $id) { scheduledFor schedule { id } } }`, { id: task.id });
    expect(asMember.task).toEqual({ scheduledFor: task.scheduledFor, schedule: null });
    await server.stop();
  });
});

describe('the scheduler', () => {
  it('creates a task per second for a 1-second cron, for consecutive whole seconds, newest first', { timeout: 30_000 }, async () => {
    const server = await startServer();
    const schedule = await created(server, { name: 'tick', cron: '* * * * * *', service: 'demo', action: 'echo', params: { message: 't' } });
    const read = await eventually(
      () => query(server, server.adminToken, SCHEDULE_TASKS, { id: schedule.id, first: 100 }),
      (data) => data.schedule.tasks.edges.length >= 4,
      'four tasks were created',
    );
    await query(server, server.adminToken, `mutation ($id: ID!) { pauseSchedule(id: $id) { __typename } }`, { id: schedule.id });
    const edges = read.schedule.tasks.edges;
    const fireTimes = edges.map((edge: any) => Date.parse(edge.node.scheduledFor));
    for (const time of fireTimes) expect(time % 1000).toBe(0);
    for (let index = 1; index < fireTimes.length; index++) expect(fireTimes[index - 1] - fireTimes[index]).toBe(1000);
    for (const edge of edges) expect(edge.node.schedule).toEqual({ id: schedule.id, name: 'tick' });
    expect(read.schedule.lastRun.outcome).toBe('CREATED');

    // The connection pages by fire time.
    const firstPage = await query(server, server.adminToken, SCHEDULE_TASKS, { id: schedule.id, first: 2 });
    expect(firstPage.schedule.tasks.pageInfo.hasNextPage).toBe(true);
    const secondPage = await query(server, server.adminToken, SCHEDULE_TASKS, {
      id: schedule.id,
      first: 2,
      after: firstPage.schedule.tasks.pageInfo.endCursor,
    });
    const paged = [...firstPage.schedule.tasks.edges, ...secondPage.schedule.tasks.edges].map((edge: any) => edge.node.scheduledFor);
    expect(new Set(paged).size).toBe(4);
    expect(paged).toEqual([...paged].sort().reverse());
    await server.stop();
  });

  it('with overlap SKIP, records the fire times that come while its task still runs', { timeout: 30_000 }, async () => {
    const server = await startServer();
    const schedule = await created(server, {
      name: 'slow',
      cron: '* * * * * *',
      service: 'demo',
      action: 'sleep',
      params: { ms: 60_000, steps: 1 },
      overlap: 'SKIP',
    });
    const read = await eventually(
      () => query(server, server.adminToken, SCHEDULE_TASKS, { id: schedule.id }),
      (data) => data.schedule.lastRun?.outcome === 'SKIPPED_OVERLAP',
      'a fire time was skipped',
    );
    await query(server, server.adminToken, `mutation ($id: ID!) { pauseSchedule(id: $id) { __typename } }`, { id: schedule.id });
    expect(read.schedule.lastRun.task).toBeNull();
    const { edges } = (await query(server, server.adminToken, SCHEDULE_TASKS, { id: schedule.id })).schedule.tasks;
    expect(edges).toHaveLength(1);
    expect(edges[0].node.state).not.toMatch(/SUCCEEDED|FAILED|CANCELLED/);
    await query(server, server.adminToken, `mutation ($id: ID!) { cancelTask(id: $id) { __typename } }`, { id: edges[0].node.id });
    await server.stop();
  });
});
