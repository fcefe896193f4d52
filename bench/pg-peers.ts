import pg from 'pg';
import { BATCH, dispose, freshEngine, IN_FLIGHT, processAll, submitInBatches, submitOneByOne, TASKS, type EngineDatabase } from './engine.js';
import { formatNumber, heading, line, median, now, perSecond, runIfMain, sleep, withTimeout, type SectionResult } from './lib.js';
import { importPeer, installPeers, range, ratio, ROUNDS } from './peers.js';
import { BENCH_QUERY_MARK, benchPostgres, connectBench, freshPgDatabase, type BenchDatabase } from './postgres.js';

// (pe) Taskport on PostgreSQL beside the queues a user of PostgreSQL would pick instead, on the
// server of the PostgreSQL bench, in interleaved rounds: graphile-worker with its documented
// batching (a local queue, batched completion) and pg-boss with batch fetching, each through its
// own documented API; Taskport's tasks are the bench service's no-op, which stores no result, as
// the peers' empty jobs. Each run of each gets a database of its own; their schemas are installed
// before the clock starts. Processing is timed from starting the worker until the database holds
// the last completion: a peer that completes in batches has run the handler well before that.
// Every run processes what it submitted: after a batched submission the peers process with their
// batching, after one-by-one submission as Taskport always does, claiming no more than the 8 they
// can run at once (graphile-worker's default; pg-boss fetching batches of 8), which shows what
// claiming ahead is worth to each.

/** A graphile-worker pool's local queue, as its performance page configures one; it is fetched (and locked) in one query. */
const LOCAL_QUEUE_SIZE = 500;
/**
 * Jobs a pg-boss worker fetches, and then completes, in one statement each; its handler takes them
 * as one array. As many as graphile-worker's local queue: pg-boss documents no size, and on this
 * machine 500 drained the backlog nearly twice as fast as 100.
 */
const PG_BOSS_BATCH = 500;
const CONCURRENCY = 8;

// Only what this section calls of each peer.

interface GraphileLogger {
  readonly _brand?: 'graphile-logger';
}

interface GraphileOptions {
  pgPool: pg.Pool;
  logger: GraphileLogger;
}

interface GraphileWorker {
  Logger: new (factory: (scope: unknown) => (level: string, message: string) => void) => GraphileLogger;
  runMigrations(options: GraphileOptions): Promise<void>;
  makeWorkerUtils(options: GraphileOptions): Promise<{
    addJob(identifier: string, payload: unknown): Promise<unknown>;
    addJobs(specs: readonly { identifier: string; payload: unknown }[]): Promise<readonly unknown[]>;
    release(): Promise<void>;
  }>;
  run(
    options: GraphileOptions & {
      noHandleSignals: boolean;
      taskList: Record<string, (payload: unknown) => Promise<void>>;
      preset: {
        worker: {
          concurrentJobs: number;
          localQueue?: { size: number };
          completeJobBatchDelay?: number;
          failJobBatchDelay?: number;
        };
      };
    },
  ): Promise<{ stop(): Promise<void> }>;
}

interface PgBoss {
  on(event: 'error', listener: (error: Error) => void): unknown;
  start(): Promise<unknown>;
  stop(options?: { graceful?: boolean; close?: boolean; timeout?: number }): Promise<void>;
  createQueue(name: string): Promise<void>;
  send(name: string, data: object): Promise<string | null>;
  insert(name: string, jobs: readonly { data: object }[]): Promise<unknown>;
  work(
    name: string,
    options: { batchSize: number; localConcurrency: number; pollingIntervalSeconds: number; burstWhenBatchFull: boolean },
    handler: (jobs: readonly unknown[]) => Promise<void>,
  ): Promise<string>;
}

interface Peers {
  graphile: GraphileWorker;
  PgBoss: new (options: { connectionString: string }) => PgBoss;
}

async function loadPeers(): Promise<Peers> {
  installPeers();
  const graphile = (await importPeer('graphile-worker')) as GraphileWorker;
  const { PgBoss } = (await importPeer('pg-boss')) as { PgBoss: Peers['PgBoss'] };
  return { graphile, PgBoss };
}

/** The params of Taskport's bench.noop tasks in bench/engine.ts, as each peer's job data. */
const payload = (index: number) => ({ message: `bench ${index}` });

interface Run {
  submit: number;
  process: number;
}

/** `submit(index)` for every task, `IN_FLIGHT` at a time, as submitOneByOne of bench/engine.ts. */
async function oneByOne(submit: (index: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < TASKS) await submit(next++);
    }),
  );
  return now() - started;
}

async function inBatches(submit: (indexes: number[]) => Promise<unknown>): Promise<number> {
  const started = now();
  for (let first = 0; first < TASKS; first += BATCH) {
    await submit(Array.from({ length: Math.min(BATCH, TASKS - first) }, (_, offset) => first + offset));
  }
  return now() - started;
}

/** Counts the handler's calls; resolves once it has seen every task. */
function handledCounter(): { add(count: number): void; all: Promise<void>; count(): number } {
  let handled = 0;
  let resolve = () => {};
  const all = new Promise<void>((done) => (resolve = done));
  return {
    add: (count) => {
      handled += count;
      if (handled >= TASKS) resolve();
    },
    all,
    count: () => handled,
  };
}

/** Polls until `sql` counts no job left, for the completions a peer writes after its handler ran; polled only then, so the run pays nothing for it. */
async function untilNoneLeft(database: BenchDatabase, sql: string): Promise<void> {
  const client = await connectBench(database);
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await client.query<{ left: number }>(`${BENCH_QUERY_MARK} ${sql}`);
      if (rows[0]!.left === 0) return;
      if (Date.now() > deadline) throw new Error(`${rows[0]!.left} jobs not completed 60 s after the last handler ran`);
      await sleep(5);
    }
  } finally {
    await client.end();
  }
}

async function pgDatabase(): Promise<EngineDatabase> {
  const database = await freshPgDatabase();
  return { location: database.url, remove: database.drop };
}

async function taskportRun(batched: boolean): Promise<Run> {
  const fixture = await freshEngine(CONCURRENCY, pgDatabase, 'noop');
  try {
    const submit = perSecond(TASKS, batched ? await submitInBatches(fixture) : await submitOneByOne(fixture));
    return { submit, process: perSecond(TASKS, await processAll(fixture)) };
  } finally {
    await dispose(fixture);
  }
}

async function graphileRun({ graphile }: Peers, batched: boolean): Promise<Run> {
  const database = await freshPgDatabase();
  const errors: string[] = [];
  const logger = new graphile.Logger(() => (level, message) => {
    if (level === 'error') errors.push(message);
  });
  // The bench's pool rather than one graphile-worker makes from a connection string: it ends
  // that one without waiting, and dropping the database under its connections would kill them.
  const pool = new pg.Pool({ connectionString: database.url, max: 10 });
  // As graphile-worker asks of a pool it is given: an error on an idle connection is recorded, not thrown.
  pool.on('error', (error) => errors.push(error.message));
  pool.on('connect', (client) => client.on('error', (error) => errors.push(error.message)));
  const options = { pgPool: pool, logger };
  try {
    await graphile.runMigrations(options);
    const utils = await graphile.makeWorkerUtils(options);
    let submit: number;
    try {
      submit = perSecond(
        TASKS,
        batched
          ? await inBatches((indexes) => utils.addJobs(indexes.map((index) => ({ identifier: 'echo', payload: payload(index) }))))
          : await oneByOne((index) => utils.addJob('echo', payload(index))),
      );
    } finally {
      await utils.release();
    }

    const handled = handledCounter();
    const started = now();
    const runner = await graphile.run({
      ...options,
      noHandleSignals: true,
      taskList: { echo: async () => handled.add(1) },
      // "Batching" on https://worker.graphile.org/docs/performance: the pool fetches and locks a
      // local queue of jobs at once, and completions are written together. Without it, each of
      // the concurrent jobs is fetched and completed in statements of its own.
      preset: {
        worker: batched
          ? { concurrentJobs: CONCURRENCY, localQueue: { size: LOCAL_QUEUE_SIZE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
          : { concurrentJobs: CONCURRENCY },
      },
    });
    try {
      await withTimeout(120_000, `graphile-worker processing (${handled.count()} handled)`, handled.all);
      await untilNoneLeft(database, 'SELECT count(*)::int AS left FROM graphile_worker._private_jobs');
      const process = perSecond(TASKS, now() - started);
      if (errors.length > 0) throw new Error(`graphile-worker logged errors: ${errors.slice(0, 3).join('; ')}`);
      return { submit, process };
    } finally {
      await runner.stop();
    }
  } finally {
    await pool.end();
    await database.drop();
  }
}

async function pgBossRun({ PgBoss }: Peers, batched: boolean): Promise<Run> {
  const database = await freshPgDatabase();
  const errors: Error[] = [];
  const boss = new PgBoss({ connectionString: database.url });
  boss.on('error', (error) => errors.push(error));
  try {
    await boss.start();
    await boss.createQueue('echo');
    const submit = perSecond(
      TASKS,
      batched
        ? await inBatches((indexes) => boss.insert('echo', indexes.map((index) => ({ data: payload(index) }))))
        : await oneByOne((index) => boss.send('echo', payload(index))),
    );

    const handled = handledCounter();
    const started = now();
    // A full batch sends the worker straight back for the next one rather than waiting out its
    // polling interval: the backlog is drained as fast as the fetches go. Its nearest to claiming
    // only what it can run is a batch of its concurrency: with batches of 1, every fetch waits out
    // the polling interval (16 jobs/s here).
    await boss.work(
      'echo',
      { batchSize: batched ? PG_BOSS_BATCH : CONCURRENCY, localConcurrency: CONCURRENCY, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true },
      async (jobs) => handled.add(jobs.length),
    );
    await withTimeout(120_000, `pg-boss processing (${handled.count()} handled)`, handled.all);
    await untilNoneLeft(database, `SELECT count(*)::int AS left FROM pgboss.job WHERE name = 'echo' AND state <> 'completed'`);
    const process = perSecond(TASKS, now() - started);
    if (errors.length > 0) throw new Error(`pg-boss emitted errors: ${errors.slice(0, 3).map((error) => error.message).join('; ')}`);
    return { submit, process };
  } finally {
    await boss.stop({ graceful: true, close: true, timeout: 10_000 });
    await database.drop();
  }
}

type Figure = 'batch' | 'single' | 'process' | 'processPlain';
const SYSTEMS = ['Taskport', 'graphile-worker', 'pg-boss'] as const;
type System = (typeof SYSTEMS)[number];

export async function pgPeersSection(): Promise<SectionResult> {
  const server = await benchPostgres();
  heading(
    `(pe) Taskport beside graphile-worker and pg-boss on PostgreSQL: ${TASKS.toLocaleString('en')} no-op tasks a run, ` +
      `${ROUNDS} interleaved rounds, a fresh database each run`,
  );
  line('PostgreSQL', server.describe);
  const peers = await loadPeers();
  const runs: Record<System, (batched: boolean) => Promise<Run>> = {
    Taskport: taskportRun,
    'graphile-worker': (batched) => graphileRun(peers, batched),
    'pg-boss': (batched) => pgBossRun(peers, batched),
  };
  // Warm each up, so that no measured run pays for the JIT.
  for (const system of SYSTEMS) await runs[system](true);

  const figures = {} as Record<System, Record<Figure, number[]>>;
  for (const system of SYSTEMS) figures[system] = { batch: [], single: [], process: [], processPlain: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const batched of [true, false]) {
      for (const system of SYSTEMS) {
        const run = await runs[system](batched);
        figures[system][batched ? 'batch' : 'single'].push(run.submit);
        figures[system][batched ? 'process' : 'processPlain'].push(run.process);
      }
    }
  }

  const rows: [Figure, string, Record<Exclude<System, 'Taskport'>, string>][] = [
    ['batch', `submitTasks of ${BATCH.toLocaleString('en')}`, { 'graphile-worker': 'addJobs', 'pg-boss': 'insert' }],
    ['single', `submitTask, ${IN_FLIGHT} in flight`, { 'graphile-worker': 'addJob', 'pg-boss': 'send' }],
    [
      'process',
      `processing, concurrency ${CONCURRENCY}`,
      {
        'graphile-worker': `local queue of ${LOCAL_QUEUE_SIZE}, batched completion`,
        'pg-boss': `work, batches of ${PG_BOSS_BATCH}`,
      },
    ],
    [
      'processPlain',
      `processing, c${CONCURRENCY}, claiming what can run`,
      { 'graphile-worker': 'no local queue, each job completed alone', 'pg-boss': `work, batches of ${CONCURRENCY}` },
    ],
  ];
  const summary: string[] = [];
  for (const [key, name, peerCalls] of rows) {
    const ours = figures.Taskport[key];
    line(name, `Taskport ${range(ours)} tasks/s`);
    const ratios: string[] = [];
    for (const peer of ['graphile-worker', 'pg-boss'] as const) {
      const theirs = figures[peer][key];
      line(`  ${peer}`, `${range(theirs)} jobs/s (${peerCalls[peer]}): Taskport ${ratio(ours, theirs)}`);
      ratios.push(`${peer} ${ratio(ours, theirs)}`);
    }
    summary.push(`${key} ${ratios.join(' ')}`);
  }

  const processRatio = median(figures.Taskport.process) / median(figures['graphile-worker'].process);
  const batchRate = median(figures.Taskport.batch);
  line(
    'aims',
    `processing >= 1.2× graphile-worker batched: ${formatNumber(processRatio, 2)}× (${processRatio >= 1.2 ? 'met' : 'not met'}); ` +
      `batch submission >= 40,000 tasks/s: ${formatNumber(batchRate)} (${batchRate >= 40_000 ? 'met' : 'not met'})`,
  );
  return {
    summary:
      `pg-peers PostgreSQL, Taskport / peer (medians of ${ROUNDS} rounds): ${summary.join(', ')}` +
      ` | Taskport batch ${formatNumber(batchRate)} tasks/s, process ${formatNumber(median(figures.Taskport.process))} tasks/s`,
  };
}

runIfMain(import.meta.url, pgPeersSection);
