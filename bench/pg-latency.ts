import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { sqliteDatabase } from './engine.js';
import { formatNumber, heading, line, percentile, postGraphQL, runIfMain, sleep, type SectionResult } from './lib.js';
import { benchPostgres, freshPgDatabase, spawnTaskport, waitForListeners, type BenchDatabase, type TaskportProcess } from './postgres.js';

// (f) Submit-to-start latency of a single task on an idle system: the time from sending submitTask
// over HTTP to the task's dateStarted (stamped by the worker as it claims the task), one task at a
// time, spaced out. On PostgreSQL with the API and the worker in two processes, the worker learns
// of the task from the API's NOTIFY; in one process, from the in-process event; SQLite for reference.

const SAMPLES = 200;
const WARM_UPS = 20;
/** Between a task's start and the next submission, so that each one meets an idle worker. */
const SPACING_MS = 40;

const SUBMIT = `mutation($input: SubmitTaskInput!){ submitTask(input:$input){ __typename ... on SubmitTaskSuccess { task { id } } } }`;
const STARTED = `query($id: ID!){ task(id: $id){ state dateStarted } }`;

interface Layout {
  label: string;
  store: 'sqlite' | 'postgres';
  /** The API and the worker in two processes, or `taskport serve` with both. */
  split: boolean;
}

const LAYOUTS: Layout[] = [
  { label: 'PostgreSQL, API and worker in 2 processes', store: 'postgres', split: true },
  { label: 'PostgreSQL, 1 process (taskport serve)', store: 'postgres', split: false },
  { label: 'SQLite, 1 process (taskport serve)', store: 'sqlite', split: false },
];

interface Latencies {
  /** Submission sent to dateStarted. */
  toStart: number[];
  /** Submission sent to its response. */
  response: number[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForApi(api: TaskportProcess, url: string, token: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (api.exited()) throw new Error(`the API process for ${url} exited before it answered`);
    try {
      await postGraphQL(url, token, '{ __typename }');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the API at ${url} did not answer within ${timeoutMs} ms: ${String(error)}`);
      await sleep(100);
    }
  }
}

async function sample(url: string, token: string): Promise<{ toStart: number; response: number }> {
  const sent = Date.now();
  const { data } = await postGraphQL<{ submitTask: { __typename: string; task?: { id: string } } }>(url, token, SUBMIT, {
    input: { service: 'demo', action: 'echo', params: { message: 'latency' } },
  });
  const response = Date.now() - sent;
  const id = data?.submitTask.task?.id;
  if (!id) throw new Error(`submitTask did not succeed: ${JSON.stringify(data)}`);
  // Read once the task has likely run, so that the reads do not compete with the path measured.
  await sleep(SPACING_MS);
  for (let attempt = 0; ; attempt++) {
    const task = (await postGraphQL<{ task: { state: string; dateStarted: string | null } }>(url, token, STARTED, { id })).data!.task;
    if (task.dateStarted && task.state === 'SUCCEEDED') return { toStart: Date.parse(task.dateStarted) - sent, response };
    if (attempt > 500) throw new Error(`task ${id} did not finish within 10 s: ${JSON.stringify(task)}`);
    await sleep(20);
  }
}

async function measure(layout: Layout): Promise<Latencies> {
  let database: BenchDatabase | null = null;
  let location: string;
  let removeSqlite: (() => Promise<void>) | null = null;
  if (layout.store === 'postgres') {
    database = await freshPgDatabase();
    location = database.url;
  } else {
    const sqlite = await sqliteDatabase();
    location = sqlite.location;
    removeSqlite = sqlite.remove;
  }
  const port = await freePort();
  const token = `tp_bench_${randomBytes(16).toString('hex')}`;
  const url = `http://127.0.0.1:${port}/graphql`;
  const processes: TaskportProcess[] = [];
  try {
    const env = { TASKPORT_DB: location, HOST: '127.0.0.1', PORT: String(port), TASKPORT_BOOTSTRAP_TOKEN: token };
    const api = spawnTaskport(layout.split ? ['serve', '--no-worker'] : ['serve'], env, `api (${layout.label})`);
    processes.push(api);
    await waitForApi(api, url, token);
    if (layout.split) {
      processes.push(spawnTaskport(['worker'], { TASKPORT_DB: location }, `worker (${layout.label})`));
      await waitForListeners(database!, processes);
    }
    const latencies: Latencies = { toStart: [], response: [] };
    for (let index = 0; index < WARM_UPS + SAMPLES; index++) {
      const { toStart, response } = await sample(url, token);
      if (index < WARM_UPS) continue;
      latencies.toStart.push(toStart);
      latencies.response.push(response);
    }
    return latencies;
  } finally {
    await Promise.all(processes.map((child) => child.stop()));
    await database?.drop();
    await removeSqlite?.();
  }
}

export async function pgLatencySection(): Promise<SectionResult> {
  const server = await benchPostgres();
  heading(
    `(f) submit-to-start latency of a single demo.echo on an idle system: submitTask over HTTP sent -> dateStarted, ` +
      `${SAMPLES} samples after ${WARM_UPS} warm-ups, one at a time`,
  );
  line('PostgreSQL', server.describe);
  const results: { layout: Layout; latencies: Latencies }[] = [];
  for (const layout of LAYOUTS) results.push({ layout, latencies: await measure(layout) });

  console.log(
    `  ${''.padEnd(44)}${'start p50'.padStart(10)}${'p99'.padStart(8)}${'max'.padStart(8)}` +
      `${'response p50'.padStart(14)}${'p99'.padStart(8)}${'start-response p50'.padStart(20)}  (ms)`,
  );
  for (const { layout, latencies } of results) {
    const figure = (values: number[], p: number) => formatNumber(percentile(values, p));
    console.log(
      `  ${layout.label.padEnd(44)}${figure(latencies.toStart, 50).padStart(10)}${figure(latencies.toStart, 99).padStart(8)}` +
        `${figure(latencies.toStart, 100).padStart(8)}${figure(latencies.response, 50).padStart(14)}${figure(latencies.response, 99).padStart(8)}` +
        `${figure(latencies.toStart.map((toStart, index) => toStart - latencies.response[index]!), 50).padStart(20)}`,
    );
  }
  line('aim', 'start p50 <= 10 ms (dateStarted has millisecond resolution; a negative start-response: started before the response arrived)');
  const summaryOf = ({ layout, latencies }: (typeof results)[number]) =>
    `${layout.store === 'sqlite' ? 'SQLite' : layout.split ? 'PG 2 processes' : 'PG 1 process'} ` +
    `p50 ${formatNumber(percentile(latencies.toStart, 50))} p99 ${formatNumber(percentile(latencies.toStart, 99))} ms`;
  return { summary: `pg-latency submit-to-start ${results.map(summaryOf).join(' | ')}` };
}

runIfMain(import.meta.url, pgLatencySection);
