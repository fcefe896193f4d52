import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { projectRoot, spawnTaskport, temporaryFolder, type SpawnedProcess } from './children.js';
import {
  createPostgresDatabase,
  graphql,
  query,
  subscribeOverSse,
  subscribeOverWebSocket,
  wsClient,
  type TestServer,
} from './helpers.js';

// Several real Taskport processes on one PostgreSQL database, as an operator runs them: API-only
// processes behind a load balancer and worker processes. Only the postgres project runs this file.

const SERVICES = join(projectRoot, 'test/fixtures/cluster-services.ts');

interface Cluster {
  token: string;
  runLog: string;
  environment: Record<string, string>;
}

function cluster(database: string): Cluster {
  const token = `tp_cluster_${randomBytes(12).toString('hex')}`;
  const runLog = join(temporaryFolder('taskport-cluster-'), 'runs.jsonl');
  return {
    token,
    runLog,
    environment: {
      TASKPORT_DB: database,
      TASKPORT_BOOTSTRAP_TOKEN: token,
      TASKPORT_LEASE_SECONDS: '2',
      TASKPORT_RETRY_BASE_MS: '20',
      TASKPORT_DB_POOL_SIZE: '4',
      CLUSTER_RUN_LOG: runLog,
    },
  };
}

interface Member {
  spawned: SpawnedProcess;
  pid: number;
  /** The API's server, for the processes that serve one. */
  server: TestServer;
}

/** Resolves with the first log line `matches` accepts; rejects if the process exits first. */
function logLine(spawned: SpawnedProcess, matches: (entry: Record<string, any>) => boolean): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const look = () => {
      for (const line of spawned.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as Record<string, any>;
        if (matches(entry)) return resolve(entry), true;
      }
      return false;
    };
    if (look()) return;
    spawned.process.stdout!.on('data', look);
    void spawned.exited.then(({ code, signal }) =>
      reject(new Error(`taskport exited (${code ?? signal}) before it was ready:\n${spawned.stdout()}\n${spawned.stderr()}`)),
    );
  });
}

async function start(setup: Cluster, args: string[]): Promise<Member> {
  const spawned = spawnTaskport([...args, '--services', SERVICES], setup.environment);
  const ready = await logLine(spawned, (entry) => entry.msg === 'Taskport is ready');
  const url = typeof ready.url === 'string' ? ready.url : '';
  const server = { url, wsUrl: url.replace(/^http/, 'ws'), adminToken: setup.token } as TestServer;
  return { spawned, pid: spawned.process.pid!, server };
}

const api = (setup: Cluster) => start(setup, ['serve', '--no-worker']);
const worker = (setup: Cluster, concurrency = 4) => start(setup, ['worker', '--concurrency', String(concurrency)]);

interface Run {
  pid: number;
  at: number;
  event: 'start' | 'end' | 'aborted';
  taskId: number;
  attempt: number;
  reason?: string;
}

function runs(setup: Cluster): Run[] {
  if (!existsSync(setup.runLog)) return [];
  return readFileSync(setup.runLog, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Run);
}

const numericId = (globalId: string) => Number(Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]);

async function submitWork(member: Member, token: string, ms: number): Promise<string> {
  const data = await query(
    member.server,
    token,
    `mutation ($input: SubmitTaskInput!) {
      submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id } } ... on Error { code message } }
    }`,
    { input: { service: 'cluster', action: 'work', params: { ms } } },
  );
  expect(data.submitTask.__typename, JSON.stringify(data)).toBe('SubmitTaskSuccess');
  return data.submitTask.task.id as string;
}

async function stateOf(member: Member, token: string, id: string): Promise<string> {
  return (await query(member.server, token, `query ($id: ID!) { task(id: $id) { state } }`, { id })).task.state;
}

/** Polls until `condition` holds; the deadline only bounds a failing test. */
async function eventually(condition: () => Promise<boolean> | boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('several processes on one PostgreSQL database', () => {
  it('runs a task submitted on one API process by a worker process, watched over graphql-ws and SSE on another', { timeout: 60_000 }, async () => {
    const setup = cluster(await createPostgresDatabase());
    const first = await api(setup);
    const [second, workerA, workerB] = await Promise.all([api(setup), worker(setup), worker(setup)]);

    const id = await submitWork(first, setup.token, 200);
    const overWebSocket = subscribeOverWebSocket(
      wsClient(second.server, setup.token),
      `subscription ($id: ID!) { taskUpdated(id: $id) { id state } }`,
      { id },
    );
    const overSse = subscribeOverSse(
      second.server,
      setup.token,
      `subscription ($id: ID!) { taskUpdated(id: $id) { id state } }`,
      { id },
    );
    const [wsUpdates, sseUpdates] = await Promise.all([overWebSocket, overSse]);
    for (const updates of [wsUpdates, sseUpdates]) {
      expect(updates.at(-1)?.data).toEqual({ taskUpdated: { id, state: 'SUCCEEDED' } });
    }
    const [run] = runs(setup).filter((entry) => entry.taskId === numericId(id) && entry.event === 'start');
    expect([workerA.pid, workerB.pid]).toContain(run!.pid);
  });

  it('stops a running handler when its task is cancelled through a process that does not run it', { timeout: 60_000 }, async () => {
    const setup = cluster(await createPostgresDatabase());
    const first = await api(setup);
    const [second, running] = await Promise.all([api(setup), worker(setup)]);

    const id = await submitWork(first, setup.token, 60_000);
    await eventually(async () => (await stateOf(second, setup.token, id)) === 'PROCESSING', 'the task runs');
    const cancelled = await query(
      second.server,
      setup.token,
      `mutation ($id: ID!) { cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { id } } } }`,
      { id },
    );
    expect(cancelled.cancelTask.__typename).toBe('CancelTaskSuccess');
    await eventually(async () => (await stateOf(first, setup.token, id)) === 'CANCELLED', 'the task is cancelled');
    const aborted = runs(setup).find((entry) => entry.taskId === numericId(id) && entry.event === 'aborted');
    expect(aborted).toMatchObject({ pid: running.pid, attempt: 1 });
    expect(aborted!.reason).toContain('CANCELLED');
  });

  it('ends the streams of a revoked key on every process', { timeout: 60_000 }, async () => {
    const setup = cluster(await createPostgresDatabase());
    const first = await api(setup);
    const second = await api(setup);
    const created = await query(
      first.server,
      setup.token,
      `mutation { createApiKey(input: { name: "doomed", role: MEMBER }) { __typename ... on CreateApiKeySuccess { token apiKey { id } } } }`,
    );
    const { token: doomed, apiKey } = created.createApiKey;
    const events = `subscription { taskEvents { kind } }`;
    // Both streams are open once an event of a task the key submits reaches each of them.
    const heard = { ws: false, sse: false };
    const onSecondWs = subscribeOverWebSocket(wsClient(second.server, doomed), events, {}, () => (heard.ws = true)).catch(
      (error: Error) => error,
    );
    const onSecondSse = subscribeOverSse(second.server, doomed, events, {}, () => (heard.sse = true));
    await eventually(async () => {
      if (!heard.ws || !heard.sse) await submitWork(first, doomed, 1);
      return heard.ws && heard.sse;
    }, 'both streams hear the task events');

    const revoked = await query(
      first.server,
      setup.token,
      `mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }`,
      { id: apiKey.id },
    );
    expect(revoked.revokeApiKey.__typename).toBe('RevokeApiKeySuccess');

    const sse = await onSecondSse;
    expect(sse.at(-1)?.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
    const ws = await onSecondWs;
    const last = Array.isArray(ws) ? ws.at(-1)?.errors?.[0]?.extensions?.code : String(ws);
    expect(String(last)).toMatch(/UNAUTHENTICATED|4403|revoked/i);
    expect((await graphql(second.server, doomed, '{ viewer { key { id } } }')).body.errors?.[0]?.extensions?.code).toBe(
      'UNAUTHENTICATED',
    );
  });

  it('serves an execution URL minted on one process from another, until its allocation is deleted', { timeout: 60_000 }, async () => {
    const setup = cluster(await createPostgresDatabase());
    const first = await api(setup);
    const second = await api(setup);
    const allocation = (
      await query(
        first.server,
        setup.token,
        `mutation { createAllocation(input: { name: "scoring", service: "demo", action: "fraud-score", instances: 2 }) {
          __typename ... on CreateAllocationSuccess { allocation { id } } ... on Error { code message } } }`,
      )
    ).createAllocation.allocation;
    const minted = (
      await query(
        first.server,
        setup.token,
        `mutation ($id: ID!) { generateExecutionUrl(allocationId: $id) {
          __typename ... on GenerateExecutionUrlSuccess { executionUrl { url token } } } }`,
        { id: allocation.id },
      )
    ).generateExecutionUrl.executionUrl;
    const onSecond = new URL(new URL(minted.url).pathname, second.server.url).toString();
    const call = (url: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${minted.token}` },
        body: JSON.stringify({ amount: 50, currency: 'EUR', country: 'FR', cardAgeDays: 400 }),
      });
    expect((await call(onSecond)).status).toBe(200);
    expect((await call(minted.url)).status).toBe(200);

    const deleted = await query(first.server, setup.token, `mutation ($id: ID!) { deleteAllocation(id: $id) { __typename } }`, {
      id: allocation.id,
    });
    expect(deleted.deleteAllocation.__typename).toBe('DeleteAllocationSuccess');
    await eventually(async () => (await call(onSecond)).status === 401, 'the other process refuses the URL');
    expect((await call(minted.url)).status).toBe(401);
  });

  it('finishes every task exactly once when a worker of three is killed in the middle of 200', { timeout: 120_000 }, async () => {
    const setup = cluster(await createPostgresDatabase());
    const submitter = await api(setup);
    const workers = await Promise.all([worker(setup, 8), worker(setup, 8), worker(setup, 8)]);
    // Long enough that the victim is still running some when it is killed, on a loaded machine too.
    const inputs = Array.from({ length: 200 }, () => ({ service: 'cluster', action: 'work', params: { ms: 500 } }));
    const batch = await query(
      submitter.server,
      setup.token,
      `mutation ($inputs: [SubmitTaskInput!]!) { submitTasks(inputs: $inputs) { __typename ... on SubmitTasksSuccess { tasks { id } } } }`,
      { inputs },
    );
    const ids: string[] = batch.submitTasks.tasks.map((task: { id: string }) => task.id);
    expect(ids).toHaveLength(200);

    const victim = workers[0]!;
    // Killed in the middle: it has finished some tasks and is running others.
    await eventually(() => {
      const own = runs(setup).filter((run) => run.pid === victim.pid);
      const ended = own.filter((run) => run.event === 'end').length;
      return ended >= 5 && own.filter((run) => run.event === 'start').length > ended;
    }, 'the victim runs tasks');
    victim.spawned.process.kill('SIGKILL');
    await victim.spawned.exited;
    const killedAt = Date.now();

    await eventually(
      async () => {
        const statuses = await query(submitter.server, setup.token, `query ($ids: [ID!]!) { taskStatuses(ids: $ids) { state } }`, { ids });
        return statuses.taskStatuses.every((status: { state: string }) => status.state === 'SUCCEEDED');
      },
      'every task succeeded',
      60_000,
    );

    const byTask = new Map<number, Run[]>();
    for (const run of runs(setup)) {
      if (run.event !== 'start') continue;
      byTask.set(run.taskId, [...(byTask.get(run.taskId) ?? []), run]);
    }
    expect(byTask.size).toBe(200);
    const ends = runs(setup).filter((run) => run.event === 'end');
    for (const [taskId, starts] of byTask) {
      // Attempts count runs: no attempt of a task ran twice, on one process or on two.
      const attempts = starts.map((run) => run.attempt);
      expect(new Set(attempts).size, `task ${taskId} attempts ${attempts}`).toBe(attempts.length);
      // A task ran again only because the victim's run of it was lost (its outcome unwritten, or
      // claimed and killed before the handler began), and only once the victim was dead: never two
      // runs at once.
      for (const rerun of starts.filter((run) => run.attempt > 1)) {
        const lost = starts.find((run) => run.attempt === rerun.attempt - 1);
        if (lost) expect(lost.pid).toBe(victim.pid);
        expect(rerun.at).toBeGreaterThanOrEqual(killedAt - 50);
      }
      expect(ends.filter((end) => end.taskId === taskId && end.pid !== victim.pid).length).toBeLessThanOrEqual(1);
    }
    const rerunIds = [...byTask].filter(([, starts]) => starts.length > 1).map(([taskId]) => taskId);
    expect(rerunIds.length).toBeGreaterThan(0);
  });

  it('starts three processes at once on an empty database: the migrations run once, every process serves', { timeout: 60_000 }, async () => {
    const setup = cluster(await createPostgresDatabase());
    const members = await Promise.all([api(setup), api(setup), start(setup, ['serve'])]);
    for (const member of members) {
      expect((await query(member.server, setup.token, '{ viewer { organisation } }')).viewer.organisation).toBe('default');
    }
    const id = await submitWork(members[0]!, setup.token, 1);
    await eventually(async () => (await stateOf(members[1]!, setup.token, id)) === 'SUCCEEDED', 'the task ran');
  });
});

describe('when PostgreSQL drops every connection (as a restart does)', () => {
  it('the processes live on, reconnect, and tasks and events flow again', { timeout: 60_000 }, async () => {
    const database = await createPostgresDatabase();
    const setup = cluster(database);
    const first = await api(setup);
    const running = await worker(setup);
    expect(await waitForSuccess(first, setup.token, await submitWork(first, setup.token, 1))).toBe('SUCCEEDED');

    const admin = new pg.Client({ connectionString: database });
    await admin.connect();
    try {
      const { rowCount } = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      expect(rowCount).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }

    // The next requests may meet the dropped connections; the processes reconnect, and a task
    // submitted then is run by the worker and announced over the bus again.
    await eventually(async () => (await fetch(new URL('/healthz', first.server.url))).status === 200, 'the API is healthy again');
    let id: string | null = null;
    await eventually(async () => {
      const response = await graphql(first.server, setup.token, `mutation { submitTask(input: { service: "cluster", action: "work", params: { ms: 1 } }) { ... on SubmitTaskSuccess { task { id } } } }`);
      id = response.body.data?.submitTask?.task?.id ?? null;
      return id !== null;
    }, 'a submission is accepted again');
    expect(await waitForSuccess(first, setup.token, id!)).toBe('SUCCEEDED');
    expect(running.spawned.process.exitCode).toBeNull();
    expect(first.spawned.process.exitCode).toBeNull();
  });
});

/** The state a task ends in, as its taskUpdated subscription tells: over the bus, when another process runs it. */
async function waitForSuccess(member: Member, token: string, id: string): Promise<string> {
  const updates = await subscribeOverWebSocket(wsClient(member.server, token), `subscription ($id: ID!) { taskUpdated(id: $id) { state } }`, { id });
  return updates.at(-1)?.data?.taskUpdated?.state;
}
