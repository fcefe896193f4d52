import {
  BATCH,
  dispose,
  echo,
  freshEngine,
  IN_FLIGHT,
  processAll,
  sqliteDatabase,
  submitInBatches,
  submitOneByOne,
  TASKS,
  WARM_UP_TASKS,
  type EngineDatabase,
  type Fixture,
} from './engine.js';
import { formatNumber, heading, line, now, perSecond, runIfMain, withTimeout, type SectionResult } from './lib.js';
import { benchPostgres, describeStatement, freshPgDatabase, meterDatabase, type DatabaseUse } from './postgres.js';

// (d) The engine as a library on PostgreSQL, beside the same runs on SQLite: submissions one by one
// (64 in flight) and in batches, processing at concurrency 8 and 32, and end to end (the worker
// running while the tasks are submitted one by one). For PostgreSQL each step also says what it
// cost the server (statements and CPU per task) and this process (CPU per task): on two cores,
// which of the two is busy says what limits the figure.

type Store = 'sqlite' | 'postgres';

interface Step {
  tasksPerSecond: number;
  wallMs: number;
  /** CPU of this process (the engine and its driver) during the step. */
  nodeCpuMs: number;
  /** PostgreSQL only. */
  database: DatabaseUse | null;
}

interface StoreFigures {
  submitOne: Step;
  process8: Step;
  submitBatch: Step;
  process32: Step;
  endToEnd: Step;
}

/** The PostgreSQL database name of each location, for reading the server's statistics of a step. */
const databaseNames = new Map<string, string>();

const newDatabase = (store: Store) => async (): Promise<EngineDatabase> => {
  if (store === 'sqlite') return sqliteDatabase();
  const database = await freshPgDatabase();
  databaseNames.set(database.url, database.name);
  return { location: database.url, remove: database.drop };
};

async function step(fixture: Fixture, work: () => Promise<number>): Promise<Step> {
  const name = databaseNames.get(fixture.database.location);
  const meter = name ? await meterDatabase(name) : null;
  const cpuBefore = process.cpuUsage();
  const wallMs = await work();
  const cpu = process.cpuUsage(cpuBefore);
  return {
    tasksPerSecond: perSecond(TASKS, wallMs),
    wallMs,
    nodeCpuMs: (cpu.user + cpu.system) / 1000,
    database: meter ? await meter.read() : null,
  };
}

/** The worker runs from the start while the tasks are submitted one by one, 64 in flight; until the last has SUCCEEDED. */
async function submitWhileProcessing({ engine, actor }: Fixture, tasks = TASKS): Promise<number> {
  let succeeded = 0;
  let failed = 0;
  let stopListening = () => {};
  const done = new Promise<void>((resolve) => {
    stopListening = engine.events.listen('organisation', actor.organisationId, (change) => {
      if (change.kind !== 'STATE_CHANGED') return;
      if (change.state === 'SUCCEEDED' && ++succeeded === tasks) resolve();
      if (change.state === 'FAILED' || change.state === 'CANCELLED') failed += 1;
    });
  });
  await engine.start();
  const started = now();
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < tasks) await engine.submitTask(actor, echo(next++));
      }),
    );
    await withTimeout(120_000, `end to end (${succeeded} succeeded, ${failed} failed so far)`, done);
  } finally {
    stopListening();
  }
  if (failed > 0) throw new Error(`${failed} tasks did not succeed`);
  return now() - started;
}

async function measure(store: Store): Promise<StoreFigures> {
  const database = newDatabase(store);
  const warmUp = await freshEngine(8, database);
  try {
    await submitOneByOne(warmUp, WARM_UP_TASKS);
    await submitInBatches(warmUp, WARM_UP_TASKS);
    await processAll(warmUp, 2 * WARM_UP_TASKS);
  } finally {
    await dispose(warmUp);
  }

  const first = await freshEngine(8, database);
  let submitOne: Step, process8: Step;
  try {
    submitOne = await step(first, () => submitOneByOne(first));
    process8 = await step(first, () => processAll(first));
  } finally {
    await dispose(first);
  }

  const second = await freshEngine(32, database);
  let submitBatch: Step, process32: Step;
  try {
    submitBatch = await step(second, () => submitInBatches(second));
    process32 = await step(second, () => processAll(second));
  } finally {
    await dispose(second);
  }

  const third = await freshEngine(32, database);
  let endToEnd: Step;
  try {
    endToEnd = await step(third, () => submitWhileProcessing(third));
  } finally {
    await dispose(third);
  }
  return { submitOne, process8, submitBatch, process32, endToEnd };
}

const ROWS: { key: keyof StoreFigures; label: string; aim: string }[] = [
  { key: 'submitOne', label: `submitTask, ${IN_FLIGHT} in flight`, aim: '>= 5,000' },
  { key: 'submitBatch', label: `submitTasks, batches of ${BATCH.toLocaleString('en')}`, aim: '' },
  { key: 'process8', label: 'process to SUCCEEDED, concurrency 8', aim: '>= 10,000' },
  { key: 'process32', label: 'process to SUCCEEDED, concurrency 32', aim: '>= 10,000' },
  { key: 'endToEnd', label: `end to end (submit ${IN_FLIGHT} in flight + process c32)`, aim: '>= 4,000' },
];

const cell = (text: string, width: number) => text.padStart(width);

export async function pgEngineSection(): Promise<SectionResult> {
  const server = await benchPostgres();
  heading(
    `(d) engine through the library API on PostgreSQL beside SQLite: ${TASKS.toLocaleString('en')} demo.echo tasks, ` +
      `a fresh database each run, pool of 10 connections`,
  );
  line('PostgreSQL', server.describe);
  const sqlite = await measure('sqlite');
  const postgres = await measure('postgres');

  console.log(`  ${'tasks/s'.padEnd(50)}${cell('SQLite', 10)}${cell('PostgreSQL', 12)}${cell('aim (PG)', 11)}`);
  for (const { key, label, aim } of ROWS) {
    console.log(
      `  ${label.padEnd(50)}${cell(formatNumber(sqlite[key].tasksPerSecond), 10)}` +
        `${cell(formatNumber(postgres[key].tasksPerSecond), 12)}${cell(aim, 11)}`,
    );
  }

  console.log(`\n  PostgreSQL, per task${' '.repeat(30)}statements  server CPU  node CPU  wall (ms per 1,000 tasks)`);
  for (const { key, label } of ROWS) {
    const figures = postgres[key];
    const perThousand = (ms: number | null) => (ms === null ? 'n/a' : formatNumber((1000 * ms) / TASKS, 0));
    const statements = figures.database?.statements;
    console.log(
      `  ${label.padEnd(50)}${cell(statements == null ? 'n/a' : (statements / TASKS).toFixed(2), 10)}` +
        `${cell(perThousand(figures.database?.cpuMs ?? null), 11)}${cell(perThousand(figures.nodeCpuMs), 10)}` +
        `${cell(perThousand(figures.wallMs), 7)}`,
    );
  }
  for (const { key, label } of ROWS) {
    const top = postgres[key].database?.top ?? [];
    if (top.length === 0) continue;
    console.log(`\n  statements of "${label}" by server time:`);
    for (const use of top.slice(0, 4)) console.log(`    ${describeStatement(use, TASKS)}`);
  }

  const rate = (step: Step) => formatNumber(step.tasksPerSecond);
  return {
    summary:
      `pg-engine PostgreSQL (SQLite): submit (${IN_FLIGHT} in flight) ${rate(postgres.submitOne)} (${rate(sqlite.submitOne)}) tasks/s` +
      ` | batches ${rate(postgres.submitBatch)} (${rate(sqlite.submitBatch)})` +
      ` | process c8 ${rate(postgres.process8)} (${rate(sqlite.process8)}) c32 ${rate(postgres.process32)} (${rate(sqlite.process32)})` +
      ` | end to end ${rate(postgres.endToEnd)} (${rate(sqlite.endToEnd)})`,
  };
}

runIfMain(import.meta.url, pgEngineSection);
