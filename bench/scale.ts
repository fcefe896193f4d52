import Database from 'better-sqlite3';
import { and, desc, eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { TaskFilter } from '../src/domain/types.js';
import { migrateDatabase, openStorage, type NewTask, type Storage } from '../src/storage/index.js';
import * as pgSchema from '../src/storage/pg/schema.js';
import * as sqliteSchema from '../src/storage/sqlite/schema.js';
import { listTasksQuery as listSqliteTasksQuery } from '../src/storage/sqlite/records/tasks.js';
import { taskFilterSql } from '../src/storage/task-filter.js';
import { formatNumber, heading, line, now, percentile, perSecond, removeFolder, runIfMain, temporaryFolder, type SectionResult } from './lib.js';
import { benchPostgres, freshPgDatabase } from './postgres.js';

// (z) The store at scale: 1,000,000 tasks over 2 organisations, 20 queues, every state and a year
// of dates, written straight into the tables (one INSERT ... SELECT over a generated series), then
// the reads of the API through the storage layer, as the engine calls it: a `tasks` page of 50 per
// filter field, a page deep into a filter, taskStatuses of 10,000 ids, the queue position at the back
// of a 100,000-task queue, and submissions against the full database beside an empty one. Any
// page query whose plan scans the table or sorts is printed with its plan.
// BENCH_SCALE_TASKS=100000 makes a quicker run.

export const TASKS = Number(process.env.BENCH_SCALE_TASKS ?? 1_000_000);
export const YEAR_MS = 365 * 86_400_000;
export const START = Date.UTC(2025, 0, 1);
/** Every tenth task is PENDING, all in one queue: 100,000 of the 1,000,000. */
const DEEP_QUEUE = { service: 'scale', action: 'deep' };
const PAGE = 50;
const RUNS = 40;
const AIMS = { pageP99Ms: 20, statusesMs: 150, positionMs: 5, submitRatio: 0.8 };

export interface Seeded {
  organisations: [number, number];
  keys: [number, number];
  account: number;
}

/** Columns of one generated row, as SQL over the series number `i` (1-based); both dialects. */
export function seedColumns(seeded: Seeded, cast: (expression: string) => string) {
  const [orgA, orgB] = seeded.organisations;
  const [keyA, keyB] = seeded.keys;
  const created = `${START} + (i * ${Math.floor(YEAR_MS / TASKS)})`;
  // i % 10: 0 PENDING (the deep queue), 1 SUSPENDED, 2 PROCESSING, 3 FAILED, 4 CANCELLED, else SUCCEEDED.
  const state = `CASE i % 10 WHEN 0 THEN 'PENDING' WHEN 1 THEN 'SUSPENDED' WHEN 2 THEN 'PROCESSING' WHEN 3 THEN 'FAILED' WHEN 4 THEN 'CANCELLED' ELSE 'SUCCEEDED' END`;
  const started = `CASE WHEN i % 10 IN (0, 1) THEN NULL ELSE ${created} + 1000 END`;
  const completed = `CASE WHEN i % 10 IN (0, 1, 2) THEN NULL ELSE ${created} + 2000 END`;
  return {
    organisation_id: `CASE WHEN i % 3 = 0 THEN ${orgB} ELSE ${orgA} END`,
    key_id: `CASE WHEN i % 3 = 0 THEN ${keyB} ELSE ${keyA} END`,
    user: `CASE WHEN i % 2 = 0 THEN 'user' || ${cast('i % 1000')} END`,
    source_id: `CASE WHEN i % 3 <> 0 AND i % 50 = 1 THEN ${seeded.account} END`,
    source_type: `CASE WHEN i % 4 = 0 THEN 'github' WHEN i % 4 = 1 THEN 'slack' END`,
    session: `CASE WHEN i % 5 = 0 THEN 'session' || ${cast('i % 5000')} END`,
    poll: `'poll_' || ${cast('i / 1000')}`,
    service: `CASE WHEN i % 10 = 0 THEN '${DEEP_QUEUE.service}' ELSE 'svc' || ${cast('i % 4')} END`,
    type: `CASE WHEN i % 10 = 0 THEN '${DEEP_QUEUE.action}' ELSE 'type' || ${cast('i % 5')} END`,
    params: `'{}'`,
    state,
    priority: '0',
    attempts: `CASE WHEN i % 10 IN (0, 1) THEN 0 ELSE 1 END`,
    max_attempts: '3',
    timeout_ms: '30000',
    error_code: `CASE WHEN i % 10 = 3 THEN 'BOOM' END`,
    error_message: `CASE WHEN i % 10 = 3 THEN 'failed' END`,
    retrieval_protocol: `'STORE'`,
    available_at: created,
    date_created: created,
    date_started: started,
    date_completed: completed,
    lease_owner: `CASE WHEN i % 10 = 2 THEN 'scale-worker' END`,
    lease_expires_at: `CASE WHEN i % 10 = 2 THEN ${START + 2 * YEAR_MS} END`,
  };
}

async function seedTenants(storage: Storage): Promise<Seeded> {
  const a = await storage.records.findOrCreateOrganisation('scale-a', 0);
  const b = await storage.records.findOrCreateOrganisation('scale-b', 0);
  const keyA = await storage.records.createApiKey({ organisationId: a.id, name: 'key', role: 'ADMIN', tokenHash: 'scale-a' }, 0);
  const keyB = await storage.records.createApiKey({ organisationId: b.id, name: 'key', role: 'ADMIN', tokenHash: 'scale-b' }, 0);
  const account = await storage.records.registerAccount(a.id, 'svc0', 'scale-user', 0);
  return { organisations: [a.id, b.id], keys: [keyA.id, keyB.id], account: account!.id };
}

// ------------------------------------------------------------------ the stores

export interface Store {
  name: string;
  storage: Storage;
  /** The plan of a page query when it scans or sorts, or `always`; null when it seeks an index. */
  scanningPlan(filter: TaskFilter, organisationId: number, always: boolean): Promise<string | null>;
  close(): Promise<void>;
}

export async function sqliteStore(folder: string, seed: boolean): Promise<Store & { seeded: Seeded | null; seedMs: number }> {
  const location = join(folder, seed ? 'full.db' : 'empty.db');
  await migrateDatabase(location);
  let storage = await openStorage(location);
  let seeded: Seeded | null = null;
  let seedMs = 0;
  if (seed) {
    seeded = await seedTenants(storage);
    await storage.close();
    const started = now();
    const sqlite = new Database(location);
    sqlite.pragma('journal_mode = WAL');
    const columns = seedColumns(seeded, (expression) => `(${expression})`);
    const names = Object.keys(columns).map((name) => `"${name}"`).join(', ');
    const step = 100_000;
    for (let first = 1; first <= TASKS; first += step) {
      sqlite.exec(
        `WITH RECURSIVE series(i) AS (SELECT ${first} UNION ALL SELECT i + 1 FROM series WHERE i < ${Math.min(TASKS, first + step - 1)})
         INSERT INTO tasks (${names}) SELECT ${Object.values(columns).join(', ')} FROM series`,
      );
    }
    sqlite.exec('ANALYZE');
    sqlite.close();
    seedMs = now() - started;
    storage = await openStorage(location);
  }
  const explain = new Database(location, { readonly: true });
  const db = drizzle(explain, { schema: sqliteSchema });
  return {
    name: 'SQLite',
    storage,
    seeded,
    seedMs,
    scanningPlan: async (filter, organisationId, always) => {
      const query = listSqliteTasksQuery(db, organisationId, filter, { first: PAGE }).toSQL();
      const plan = (explain.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...query.params) as { detail: string }[]).map(
        (row) => row.detail,
      );
      return always || plan.some((detail) => /^SCAN|TEMP B-TREE/.test(detail)) ? plan.join(' | ') : null;
    },
    close: async () => {
      explain.close();
      await storage.close();
    },
  };
}

export async function pgStore(seed: boolean): Promise<Store & { seeded: Seeded | null; seedMs: number; url: string; drop(): Promise<void> }> {
  const database = await freshPgDatabase();
  let storage = await openStorage(database.url);
  let seeded: Seeded | null = null;
  let seedMs = 0;
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  if (seed) {
    seeded = await seedTenants(storage);
    const started = now();
    const columns = seedColumns(seeded, (expression) => `(${expression})::text`);
    const names = Object.keys(columns).map((name) => `"${name}"`).join(', ');
    const step = 100_000;
    for (let first = 1; first <= TASKS; first += step) {
      const values = Object.values(columns);
      await client.query(
        `INSERT INTO tasks (${names}) SELECT ${values.join(', ')} FROM generate_series(${first}::bigint, ${Math.min(TASKS, first + step - 1)}::bigint) AS i`,
      );
    }
    await client.query('ANALYZE tasks');
    seedMs = now() - started;
    await storage.close();
    storage = await openStorage(database.url);
  }
  const db = drizzlePg(client, { schema: pgSchema });
  return {
    name: 'PostgreSQL',
    storage,
    seeded,
    seedMs,
    scanningPlan: async (filter, organisationId, always) => {
      const query = db
        .select()
        .from(pgSchema.tasks)
        .where(and(eq(pgSchema.tasks.organisationId, organisationId), ...taskFilterSql(pgSchema.tasks, filter)))
        .orderBy(desc(pgSchema.tasks.id))
        .limit(PAGE + 1)
        .toSQL();
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query.sql}`, query.params as unknown[]);
      const plan = rows.map((row) => row['QUERY PLAN']);
      return always || plan.some((detail) => /Seq Scan|Sort/.test(detail)) ? plan.join(' | ') : null;
    },
    close: async () => {
      await client.end();
      await storage.close();
    },
    url: database.url,
    drop: () => database.drop(),
  };
}

// ------------------------------------------------------------------ the measurements

export async function timed(runs: number, work: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  await work();
  const timings: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = now();
    await work();
    timings.push(now() - started);
  }
  return { p50: percentile(timings, 50), p99: percentile(timings, 99) };
}

const describeTimes = ({ p50, p99 }: { p50: number; p99: number }, aim: number) =>
  `p50 ${formatNumber(p50)} ms, p99 ${formatNumber(p99)} ms ${p99 <= aim ? '(within' : '(OVER'} the ${aim} ms aim)`;

const day = (offset: number) => new Date(START + offset * 86_400_000);

function filters(seeded: Seeded): [string, TaskFilter][] {
  const month = { gte: day(150), lt: day(180) };
  return [
    ['no filter', {}],
    ['keyId', { keyId: seeded.keys[0] }],
    ['user', { user: 'user42' }],
    ['sourceId', { sourceId: seeded.account }],
    ['session', { session: 'session1235' }],
    ['poll', { poll: 'poll_500' }],
    ['sourceType', { sourceType: 'github' }],
    ['service', { service: 'svc1' }],
    ['type', { type: 'type3' }],
    ['state FAILED', { state: ['FAILED'] }],
    ['state PENDING', { state: ['PENDING'] }],
    ['dateCreated, a month', { dateCreated: month }],
    ['dateStarted, a month', { dateStarted: month }],
    ['dateCompleted, a month', { dateCompleted: month }],
    ['dateCreated, a month a year ago', { dateCreated: { gte: day(0), lt: day(30) } }],
    ['poll + state', { poll: 'poll_500', state: ['SUCCEEDED'] }],
  ];
}

async function measureStore(full: Store & { seeded: Seeded | null }, empty: Store): Promise<string[]> {
  const seeded = full.seeded!;
  const organisationId = seeded.organisations[0];
  const records = full.storage.records;
  const summary: string[] = [];
  let worstPage = 0;
  for (const [name, filter] of filters(seeded)) {
    const times = await timed(RUNS, () => records.listTasks(organisationId, filter, { first: PAGE }));
    worstPage = Math.max(worstPage, times.p99);
    line(`tasks(first: ${PAGE}) ${name}`, describeTimes(times, AIMS.pageP99Ms));
    const plan = await full.scanningPlan(filter, organisationId, times.p99 > AIMS.pageP99Ms);
    if (plan) line('  plan', plan);
  }
  for (const [name, filter] of [
    ['state FAILED', { state: ['FAILED'] }],
    ['user', { user: 'user42' }],
    ['dateCreated, a month', { dateCreated: { gte: day(150), lt: day(180) } }],
  ] as [string, TaskFilter][]) {
    let afterId: number | null = null;
    for (let page = 0; page < 20; page++) {
      const found = await records.listTasks(organisationId, filter, { first: PAGE, afterId });
      afterId = found.items.at(-1)?.id ?? afterId;
    }
    const times = await timed(RUNS, () => records.listTasks(organisationId, filter, { first: PAGE, afterId }));
    worstPage = Math.max(worstPage, times.p99);
    line(`page 21 of ${name}`, describeTimes(times, AIMS.pageP99Ms));
  }
  summary.push(`worst page p99 ${formatNumber(worstPage)} ms`);

  // 10,000 of the organisation's ids spread over the year; the engine reads their statuses, then
  // the positions of those PENDING.
  // Ids are the series numbers (the tables were empty), and organisation A's are those not divisible by 3.
  const ids = Array.from({ length: 10_000 }, (_, index) => {
    const id = 1 + Math.floor((index * (TASKS - 2)) / 10_000);
    return id % 3 === 0 ? id + 1 : id;
  });
  const queue = full.storage.queue;
  const found = await queue.statuses(organisationId, ids);
  const pendingIds = [...found.values()].filter((row) => row.state === 'PENDING').map((row) => row.id);
  const statuses = await timed(10, async () => {
    const rows = await queue.statuses(organisationId, ids);
    const pending = [...rows.values()].filter((row) => row.state === 'PENDING').map((row) => row.id);
    if (pending.length > 0) await queue.queuePositions(pending);
  });
  const statusesOnly = await timed(10, () => queue.statuses(organisationId, ids));
  const positionsOnly = await timed(10, () => queue.queuePositions(pendingIds));
  line(
    `taskStatuses(10,000 ids; ${found.size} found, ${pendingIds.length} PENDING)`,
    `${describeTimes(statuses, AIMS.statusesMs)}; of which statuses p50 ${formatNumber(statusesOnly.p50)} ms, ` +
      `positions p50 ${formatNumber(positionsOnly.p50)} ms`,
  );
  summary.push(`statuses p99 ${formatNumber(statuses.p99)} ms`);

  const pendingOfA = await records.listTasks(organisationId, { state: ['PENDING'] }, { first: 1 });
  const last = pendingOfA.items[0]!;
  const position = (await queue.queuePositions([last.id])).get(last.id);
  const positionTimes = await timed(RUNS, () => queue.queuePositions([last.id]));
  line(`queuePosition at the back (position ${position?.toLocaleString('en')})`, describeTimes(positionTimes, AIMS.positionMs));
  summary.push(`position p99 ${formatNumber(positionTimes.p99)} ms`);

  // Submissions of 500 tasks a batch into a queue of their own, the full database and the empty one
  // taking turns, so that the machine's load falls on both alike.
  const submitRate = async (store: Store, seededFor: Seeded) => {
    const tasks = Array.from(
      { length: 500 },
      (_, index): NewTask => ({
        organisationId: seededFor.organisations[0],
        keyId: seededFor.keys[0],
        user: `user${index % 1000}`,
        sourceId: null,
        sourceType: null,
        session: null,
        poll: 'poll_submit',
        service: 'scale',
        type: 'submit',
        target: null,
        params: { index },
        priority: 0,
        maxAttempts: 3,
        timeoutMs: 30_000,
        retrievalProtocol: 'STORE',
        idempotencyKey: null,
        runAt: Date.now() + YEAR_MS,
        dependsOn: [],
      }),
    );
    const started = now();
    for (let batch = 0; batch < 4; batch++) {
      const result = await store.storage.queue.enqueue(tasks, Date.now());
      if (!result.ok) throw new Error('enqueue failed');
    }
    return { tasks: 4 * tasks.length, ms: now() - started };
  };
  const emptySeeded = await seedTenants(empty.storage);
  const totals = { full: { tasks: 0, ms: 0 }, empty: { tasks: 0, ms: 0 } };
  for (let round = 0; round < 5; round++) {
    for (const [which, store, seededFor] of [
      ['empty', empty, emptySeeded],
      ['full', full, seeded],
    ] as const) {
      const rate = await submitRate(store, seededFor);
      if (round === 0) continue;
      totals[which].tasks += rate.tasks;
      totals[which].ms += rate.ms;
    }
  }
  const fullRate = perSecond(totals.full.tasks, totals.full.ms);
  const emptyRate = perSecond(totals.empty.tasks, totals.empty.ms);
  line(
    'enqueue (batches of 500)',
    `${formatNumber(fullRate, 0)} tasks/s into ${TASKS.toLocaleString('en')} tasks, ${formatNumber(emptyRate, 0)} tasks/s into an empty database ` +
      `(${formatNumber((100 * fullRate) / emptyRate, 0)}%; aim: at least ${100 * AIMS.submitRatio}%)`,
  );
  summary.push(`submit ${formatNumber((100 * fullRate) / emptyRate, 0)}% of empty`);
  return summary;
}

export async function scaleSection(): Promise<SectionResult> {
  heading(`(z) the store at scale: ${TASKS.toLocaleString('en')} tasks, SQLite`);
  const folder = temporaryFolder();
  try {
    const full = await sqliteStore(folder, true);
    const empty = await sqliteStore(folder, false);
    try {
      line('seeding', `${formatNumber(full.seedMs / 1000, 1)} s (INSERT ... SELECT over a recursive series, 100,000 rows a statement)`);
      return { summary: `scale   SQLite ${(await measureStore(full, empty)).join(', ')}` };
    } finally {
      await full.close();
      await empty.close();
    }
  } finally {
    // BENCH_SCALE_KEEP=path keeps a copy of the seeded SQLite file there, to try queries on.
    if (process.env.BENCH_SCALE_KEEP) copyFileSync(join(folder, 'full.db'), process.env.BENCH_SCALE_KEEP);
    removeFolder(folder);
  }
}

export async function scalePgSection(): Promise<SectionResult> {
  const postgres = await benchPostgres();
  heading(`(z) the store at scale: ${TASKS.toLocaleString('en')} tasks, PostgreSQL`);
  line('PostgreSQL', postgres.describe);
  const full = await pgStore(true);
  const empty = await pgStore(false);
  try {
    line('seeding', `${formatNumber(full.seedMs / 1000, 1)} s (INSERT ... SELECT generate_series, 100,000 rows a statement)`);
    return { summary: `pg-scale PostgreSQL ${(await measureStore(full, empty)).join(', ')}` };
  } finally {
    await full.close();
    await empty.close();
    // BENCH_SCALE_KEEP keeps the seeded PostgreSQL database, and its server up 5 minutes, to try queries on.
    if (process.env.BENCH_SCALE_KEEP) {
      line('kept for 5 minutes', full.url);
      await new Promise((resolve) => setTimeout(resolve, 300_000));
    }
    await full.drop();
    await empty.drop();
  }
}

runIfMain(import.meta.url, process.argv.includes('--pg') ? scalePgSection : scaleSection);
