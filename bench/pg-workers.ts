import { cpus } from 'node:os';
import { builtInCatalog } from '../src/catalog/services.js';
import { createEngine } from '../src/engine/index.js';
import { migrateDatabase, openStorage } from '../src/storage/index.js';
import { BATCH, echo } from './engine.js';
import { formatNumber, heading, line, now, perSecond, runIfMain, sleep, type SectionResult } from './lib.js';
import {
  BENCH_QUERY_MARK,
  benchPostgres,
  connectBench,
  describeStatement,
  freshPgDatabase,
  meterDatabase,
  processCpuMs,
  spawnTaskport,
  waitForListeners,
  type BenchDatabase,
  type DatabaseUse,
  type TaskportProcess,
} from './postgres.js';

// (e) Processing throughput of 1, 2 and 4 `taskport worker` processes on one PostgreSQL database.
// The workers start first, on an empty database; the tasks are then submitted from this process
// with one runAt a little ahead, so that they become due at once for workers that are all up (a
// worker starting late would otherwise make more workers look slower). The figure is the tasks
// over the window from the first start to the last completion, as the database recorded them.

const TASKS = 40_000;
const WORKER_COUNTS = [1, 2, 4] as const;
const CONCURRENCY = 32;
/** How far ahead of the submissions' start the tasks become due, before the first run has timed them. */
const FIRST_DUE_MARGIN_MS = 15_000;
const POLL_MS = 100;
const DRAIN_TIMEOUT_MS = 120_000;
/**
 * TASKPORT_BENCH_ANALYZE=1: ANALYZE the tasks once they are in, as autovacuum would after a while.
 * A database this young has no statistics yet, and the planner's plans for the claim differ with them.
 */
const ANALYZE_AFTER_SUBMITTING = process.env.TASKPORT_BENCH_ANALYZE === '1';

interface Run {
  workers: number;
  tasksPerSecond: number;
  /** First date_started to last date_completed. */
  windowMs: number;
  /** From the due time to the poll that saw every task SUCCEEDED. */
  wallFromDueMs: number;
  submitMs: number;
  workersCpuMs: number | null;
  database: DatabaseUse;
}

async function submitAll(database: BenchDatabase, runAt: Date): Promise<void> {
  const storage = await openStorage(database.url);
  const engine = createEngine({ storage, catalog: builtInCatalog(), worker: false });
  try {
    const { apiKey, organisation } = await engine.provisionApiKey({ organisation: 'bench', role: 'ADMIN', name: 'bench' });
    const actor = { organisationId: organisation.id, keyId: apiKey.id, role: apiKey.role };
    for (let first = 0; first < TASKS; first += BATCH) {
      await engine.submitTasks(
        actor,
        Array.from({ length: Math.min(BATCH, TASKS - first) }, (_, offset) => ({ ...echo(first + offset), runAt })),
      );
    }
  } finally {
    await engine.stop(1000);
    await storage.close();
  }
}

async function measure(workerCount: number, dueMarginMs: number): Promise<Run> {
  const database = await freshPgDatabase();
  // Migrated before the workers start, so that none of them waits for another's migration.
  await migrateDatabase(database.url);
  const workers: TaskportProcess[] = [];
  const poll = await connectBench(database);
  try {
    for (let index = 0; index < workerCount; index++) {
      workers.push(
        spawnTaskport(['worker', '--concurrency', String(CONCURRENCY)], { TASKPORT_DB: database.url }, `worker ${index + 1}`),
      );
    }
    await waitForListeners(database, workers);

    const submitStarted = now();
    const dueAt = Date.now() + dueMarginMs;
    await submitAll(database, new Date(dueAt));
    const submitMs = now() - submitStarted;
    if (Date.now() > dueAt - 500) {
      throw new Error(`submitting ${TASKS} tasks took ${formatNumber(submitMs)} ms, past their due time: raise the margin`);
    }

    if (ANALYZE_AFTER_SUBMITTING) await poll.query(`${BENCH_QUERY_MARK} ANALYZE tasks`);
    const meter = await meterDatabase(database.name);
    const cpuBefore = workers.map((worker) => processCpuMs(worker.pid));
    const count = async () =>
      (
        await poll.query<{ succeeded: number }>(
          `${BENCH_QUERY_MARK} SELECT count(*)::int AS succeeded FROM tasks WHERE state = 'SUCCEEDED'`,
        )
      ).rows[0]!.succeeded;
    await sleep(Math.max(0, dueAt - Date.now()));
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    let succeeded = await count();
    while (succeeded < TASKS) {
      const gone = workers.filter((worker) => worker.exited());
      if (gone.length > 0 || Date.now() > deadline) {
        const { rows: states } = await poll.query<{ state: string; tasks: number }>(
          `${BENCH_QUERY_MARK} SELECT state, count(*)::int AS tasks FROM tasks GROUP BY state ORDER BY state`,
        );
        throw new Error(
          `${workerCount} workers: ${succeeded} of ${TASKS} SUCCEEDED after ${formatNumber(Date.now() - dueAt)} ms` +
            ` (${states.map((row) => `${row.state} ${row.tasks}`).join(', ')}); ` +
            (gone.length > 0 ? `${gone.length} worker process(es) exited` : 'every worker process still runs'),
        );
      }
      await sleep(POLL_MS);
      succeeded = await count();
    }
    const wallFromDueMs = Date.now() - dueAt;
    const cpuAfter = workers.map((worker) => processCpuMs(worker.pid));
    // After the workers have gone, so that their backends have reported all they did (pg_stat_wal).
    await Promise.all(workers.map((worker) => worker.stop()));
    const usage = await meter.read();
    const { rows } = await poll.query<{ first: number; last: number; other: number }>(
      `${BENCH_QUERY_MARK} SELECT min(date_started)::float8 AS first, max(date_completed)::float8 AS last,
              count(*) FILTER (WHERE state <> 'SUCCEEDED')::int AS other FROM tasks`,
    );
    const windowMs = rows[0]!.last - rows[0]!.first;
    const workersCpuMs = cpuBefore.every((cpu, index) => cpu !== null && cpuAfter[index] !== null)
      ? cpuAfter.reduce<number>((sum, cpu, index) => sum + cpu! - cpuBefore[index]!, 0)
      : null;
    return {
      workers: workerCount,
      tasksPerSecond: perSecond(TASKS, windowMs),
      windowMs,
      wallFromDueMs,
      submitMs,
      workersCpuMs,
      database: usage,
    };
  } finally {
    await poll.end();
    await Promise.all(workers.map((worker) => worker.stop()));
    await database.drop();
  }
}

export async function pgWorkersSection(): Promise<SectionResult> {
  const server = await benchPostgres();
  heading(
    `(e) ${TASKS.toLocaleString('en')} demo.echo tasks processed by 1, 2 and 4 \`taskport worker --concurrency ${CONCURRENCY}\` ` +
      `processes on one PostgreSQL database (fresh each run${ANALYZE_AFTER_SUBMITTING ? ', tasks ANALYZEd once submitted' : ', no statistics yet'}); ` +
      `${cpus().length} CPUs for the workers and the server together`,
  );
  line('PostgreSQL', server.describe);
  const runs: Run[] = [];
  let margin = FIRST_DUE_MARGIN_MS;
  for (const workers of WORKER_COUNTS) {
    const run = await measure(workers, margin);
    runs.push(run);
    // Later runs need not wait as long: twice what submitting took, and 3 s to spare.
    margin = Math.max(3000, 2 * run.submitMs + 3000);
  }

  const cores = cpus().length;
  console.log(
    `  ${'workers'.padEnd(8)}${'tasks/s'.padStart(9)}${'window s'.padStart(10)}${'due->all s'.padStart(12)}` +
      `${'server CPU'.padStart(12)}${'workers CPU'.padStart(13)}${'statements/task'.padStart(17)}${'server CPU/task'.padStart(17)}` +
      `${'WAL flushes'.padStart(13)}${'flush wait'.padStart(12)}`,
  );
  for (const run of runs) {
    const seconds = run.windowMs / 1000;
    const share = (ms: number | null) => (ms === null ? 'n/a' : `${formatNumber(ms / 1000)} s ${formatNumber((100 * ms) / (run.wallFromDueMs * cores), 0)}%`);
    console.log(
      `  ${String(run.workers).padEnd(8)}${formatNumber(run.tasksPerSecond).padStart(9)}${formatNumber(seconds).padStart(10)}` +
        `${formatNumber(run.wallFromDueMs / 1000).padStart(12)}${share(run.database.cpuMs).padStart(12)}` +
        `${share(run.workersCpuMs).padStart(13)}` +
        `${(run.database.statements === null ? 'n/a' : (run.database.statements / TASKS).toFixed(2)).padStart(17)}` +
        `${(run.database.cpuMs === null ? 'n/a' : `${formatNumber((1000 * run.database.cpuMs) / TASKS)} us`).padStart(17)}` +
        `${run.database.walSyncs.toLocaleString('en').padStart(13)}${`${formatNumber(run.database.walSyncMs / 1000)} s`.padStart(12)}`,
    );
  }
  console.log(
    `  (CPU shares are of ${cores} cores over due->all; the poll of this process is left out of the statements; ` +
      `WAL flushes are the server's fsyncs of its log, which commits wait for, and the time they took)`,
  );
  for (const run of runs) {
    if (run.database.top.length === 0) continue;
    console.log(`\n  statements of the ${run.workers}-worker run by server time:`);
    for (const use of run.database.top.slice(0, 4)) console.log(`    ${describeStatement(use, TASKS)}`);
  }
  const one = runs.find((run) => run.workers === 1)!;
  const four = runs.find((run) => run.workers === 4)!;
  const ratio = four.tasksPerSecond / one.tasksPerSecond;
  line('ratio 4 workers : 1 worker', `${ratio.toFixed(2)}x (aim >= 2.5x where the database is not the bottleneck)`);
  return {
    summary:
      `pg-workers ${runs.map((run) => `${run.workers} worker${run.workers > 1 ? 's' : ''} ${formatNumber(run.tasksPerSecond)} tasks/s`).join(' | ')}` +
      ` | 4:1 ${ratio.toFixed(2)}x (${cores} cores)`,
  };
}

runIfMain(import.meta.url, pgWorkersSection);
