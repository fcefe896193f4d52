import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { join } from 'node:path';
import pg from 'pg';
import { throughputBuckets, throughputSeries } from '../src/domain/aggregates.js';
import type { TaskFilter } from '../src/domain/types.js';
import type { Storage } from '../src/storage/index.js';
import * as pgSchema from '../src/storage/pg/schema.js';
import { statements as pgStatements, taskCountsQuery as pgTaskCountsQuery } from '../src/storage/pg/aggregates.js';
import * as sqliteSchema from '../src/storage/sqlite/schema.js';
import {
  COMPLETED_BY_BUCKET_SQL,
  QUEUE_FIGURES_SQL,
  taskCountsQuery as sqliteTaskCountsQuery,
} from '../src/storage/sqlite/aggregates.js';
import { formatNumber, heading, line, now, removeFolder, runIfMain, temporaryFolder, type SectionResult } from './lib.js';
import { benchPostgres } from './postgres.js';
import { pgStore, seedColumns, sqliteStore, START, TASKS, timed, YEAR_MS, type Seeded } from './scale.js';

// (ag) The dashboard's aggregates at scale: the 1,000,000 tasks of the scale figure (a year of them,
// bench/scale.ts) and a busy last day on top, RECENT more tasks created and finished over the 24 hours
// before NOW, so that a throughput series and the last 15 minutes have something to count. Each
// aggregate is timed as the engine runs it, through the store (and the series' buckets filled), p99
// of RUNS; its plan is printed, and the summary names any that reads the table instead of an index.

const DAY_MS = 86_400_000;
const RECENT = Number(process.env.BENCH_AGGREGATES_RECENT ?? 200_000);
const NOW = START + YEAR_MS + DAY_MS;
const RUNS = 100;
const AIM_P99_MS = 50;

/** The extra day's rows: the scale figure's columns, over series numbers after its own, with dates in the last day. */
function recentDayInsert(seeded: Seeded, cast: (expression: string) => string, prefix: string, from: string): string {
  const created = `${NOW - DAY_MS} + ((i - ${TASKS}) * ${Math.floor(DAY_MS / RECENT)})`;
  const columns = {
    ...seedColumns(seeded, cast),
    available_at: created,
    date_created: created,
    date_started: `CASE WHEN i % 10 IN (0, 1) THEN NULL ELSE ${created} + 1000 END`,
    date_completed: `CASE WHEN i % 10 IN (0, 1, 2) THEN NULL ELSE ${created} + 2000 END`,
  };
  const names = Object.keys(columns).map((name) => `"${name}"`).join(', ');
  return `${prefix} INSERT INTO tasks (${names}) SELECT ${Object.values(columns).join(', ')} FROM ${from}`;
}

interface Explained {
  /** Each statement's plan, and whether it reads the table rather than an index. */
  plan(name: string): Promise<{ text: string; scans: boolean }>;
}

const COUNT_FILTERS: [string, TaskFilter][] = [
  ['taskCounts, no filter', {}],
  ['taskCounts service', { service: 'svc1' }],
  ['taskCounts service + type', { service: 'svc1', type: 'type2' }],
  ['taskCounts poll', { poll: 'poll_500' }],
  ['taskCounts state FAILED', { state: ['FAILED'] }],
  ['taskCounts dateCreated, the last day', { dateCreated: { gte: new Date(NOW - DAY_MS) } }],
  ['taskCounts dateCompleted, the last hour', { dateCompleted: { gte: new Date(NOW - 3_600_000) } }],
];

async function measure(storage: Storage, organisationId: number, explained: Explained): Promise<{ worst: number; scans: string[]; rows: string[] }> {
  const aggregates = storage.aggregates;
  const cases: [string, () => Promise<unknown>][] = [
    ...COUNT_FILTERS.map(([name, filter]): [string, () => Promise<unknown>] => [name, () => aggregates.taskCounts(organisationId, filter)]),
    ...(
      [
        [24 * 3_600_000, 60],
        [3_600_000, 10],
      ] as const
    ).map(([windowMs, bucketSeconds]): [string, () => Promise<unknown>] => [
      `taskThroughput ${windowMs / 3_600_000} h of ${bucketSeconds} s buckets`,
      async () => {
        const series = throughputSeries(NOW - windowMs, bucketSeconds, NOW);
        return throughputBuckets(series, await aggregates.completedByBucket(organisationId, series.since, NOW, series.bucketMs));
      },
    ]),
    ['queueStats', () => aggregates.queueFigures(organisationId, NOW)],
  ];
  let worst = 0;
  const scans: string[] = [];
  const rows: string[] = [];
  for (const [name, work] of cases) {
    const times = await timed(RUNS, work);
    worst = Math.max(worst, times.p99);
    const { text, scans: scanning } = await explained.plan(name);
    if (scanning) scans.push(name);
    line(name, `p50 ${formatNumber(times.p50)} ms, p99 ${formatNumber(times.p99)} ms ${times.p99 <= AIM_P99_MS ? '(within' : '(OVER'} the ${AIM_P99_MS} ms aim)`);
    line('  plan', text);
    rows.push(`${name}: p99 ${formatNumber(times.p99)} ms`);
  }
  return { worst, scans, rows };
}

function outcome(result: { worst: number; scans: string[] }): string {
  const scans = result.scans.length === 0 ? 'every plan on an index' : `READING THE TABLE: ${result.scans.join(', ')}`;
  return `worst p99 ${formatNumber(result.worst)} ms (aim ${AIM_P99_MS} ms), ${scans}`;
}

const sqliteScans = (plan: string[]) => plan.some((detail) => /^SCAN tasks(?! USING (COVERING )?INDEX)/.test(detail));

export async function aggregatesSection(): Promise<SectionResult> {
  heading(`(ag) aggregates at scale: ${TASKS.toLocaleString('en')} tasks over a year and ${RECENT.toLocaleString('en')} in the last day, SQLite`);
  const folder = temporaryFolder();
  try {
    const full = await sqliteStore(folder, true);
    const seeded = full.seeded!;
    // sqliteStore's file: the day is added on a connection of its own, as the scale figure seeds.
    const location = join(folder, 'full.db');
    const started = now();
    const writer = new Database(location);
    writer.exec(
      recentDayInsert(
        seeded,
        (expression) => `(${expression})`,
        `WITH RECURSIVE series(i) AS (SELECT ${TASKS + 1} UNION ALL SELECT i + 1 FROM series WHERE i < ${TASKS + RECENT})`,
        'series',
      ),
    );
    writer.exec('ANALYZE');
    writer.close();
    line('seeding', `${formatNumber(full.seedMs / 1000, 1)} s for the year, ${formatNumber((now() - started) / 1000, 1)} s for the day`);
    const organisationId = seeded.organisations[0];
    const explain = new Database(location, { readonly: true });
    const db = drizzle(explain, { schema: sqliteSchema });
    const planOf = (text: string, params: unknown[] | Record<string, unknown>) =>
      (explain.prepare(`EXPLAIN QUERY PLAN ${text}`).all(params as never) as { detail: string }[]).map((row) => row.detail);
    const explained: Explained = {
      plan: async (name) => {
        let plan: string[];
        if (name.startsWith('taskCounts')) {
          const query = sqliteTaskCountsQuery(db, organisationId, COUNT_FILTERS.find(([label]) => label === name)![1]).toSQL();
          plan = planOf(query.sql, query.params);
        } else if (name.startsWith('taskThroughput')) {
          plan = planOf(COMPLETED_BY_BUCKET_SQL, { organisationId, since: NOW - DAY_MS, until: NOW, bucketMs: 60_000 });
        } else {
          plan = planOf(QUEUE_FIGURES_SQL, { organisationId, now: NOW });
        }
        return { text: plan.join(' | '), scans: sqliteScans(plan) };
      },
    };
    try {
      const result = await measure(full.storage, organisationId, explained);
      return { summary: `aggregates SQLite ${outcome(result)}` };
    } finally {
      explain.close();
      await full.close();
    }
  } finally {
    removeFolder(folder);
  }
}

export async function aggregatesPgSection(): Promise<SectionResult> {
  const postgres = await benchPostgres();
  heading(`(ag) aggregates at scale: ${TASKS.toLocaleString('en')} tasks over a year and ${RECENT.toLocaleString('en')} in the last day, PostgreSQL`);
  line('PostgreSQL', postgres.describe);
  const full = await pgStore(true);
  const client = new pg.Client({ connectionString: full.url });
  await client.connect();
  try {
    const seeded = full.seeded!;
    const started = now();
    await client.query(
      recentDayInsert(seeded, (expression) => `(${expression})::text`, '', `generate_series(${TASKS + 1}::bigint, ${TASKS + RECENT}::bigint) AS i`),
    );
    // As autovacuum leaves a table after a bulk load: the visibility map lets index-only scans skip the heap.
    await client.query('VACUUM ANALYZE tasks');
    line('seeding', `${formatNumber(full.seedMs / 1000, 1)} s for the year, ${formatNumber((now() - started) / 1000, 1)} s for the day`);
    const organisationId = seeded.organisations[0];
    const db = drizzlePg(client, { schema: pgSchema });
    const planOf = async (text: string, values: unknown[]) =>
      (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values)).rows.map((row) => row['QUERY PLAN'].trim());
    const explained: Explained = {
      plan: async (name) => {
        let plan: string[];
        if (name.startsWith('taskCounts')) {
          const query = pgTaskCountsQuery(db, organisationId, COUNT_FILTERS.find(([label]) => label === name)![1]).toSQL();
          plan = await planOf(query.sql, query.params);
        } else if (name.startsWith('taskThroughput')) {
          const statement = pgStatements.completedByBucket([organisationId, NOW - DAY_MS, NOW, 60_000]);
          plan = await planOf(statement.text, statement.values);
        } else {
          const statement = pgStatements.queueFigures([organisationId, NOW]);
          plan = await planOf(statement.text, statement.values);
        }
        return { text: plan.join(' | '), scans: plan.some((detail) => /Seq Scan/.test(detail)) };
      },
    };
    const result = await measure(full.storage, organisationId, explained);
    return { summary: `pg-aggregates PostgreSQL ${outcome(result)}` };
  } finally {
    await client.end();
    await full.close();
    await full.drop();
  }
}

runIfMain(import.meta.url, process.argv.includes('--pg') ? aggregatesPgSection : aggregatesSection);
