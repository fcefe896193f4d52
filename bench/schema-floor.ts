import Database from 'better-sqlite3';
import pg from 'pg';
import { BATCH, dispose, freshEngine, sqliteDatabase, submitInBatches, TASKS, WARM_UP_TASKS, type EngineDatabase } from './engine.js';
import { formatNumber, heading, line, perSecond, runIfMain, type SectionResult } from './lib.js';
import { freshPgDatabase } from './postgres.js';

// What the tasks table's schema costs batch submission: submitTasks of 1,000 on the schema as it
// is, then on the same table stripped to what the queue alone needs (its key, the queue and due
// indexes, idempotency), and on PostgreSQL also without the foreign keys. The stripped tables are
// not a configuration: they lose "every field filterable", the dashboard's aggregates and the
// references the store checks. They show how much of a batch's time the schema takes, and what
// this machine allows at best with the engine's validation and answers kept.

const QUEUE_INDEXES = ['tasks_pkey', 'tasks_idempotency', 'tasks_queue_by_organisation', 'tasks_due'];
const ROUNDS = 2;

type Schema = 'as shipped' | "queue's indexes only" | "queue's indexes, no references";

async function stripSqlite(file: string): Promise<void> {
  const sqlite = new Database(file);
  try {
    const indexes = sqlite
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' AND sql IS NOT NULL`)
      .pluck()
      .all() as string[];
    for (const name of indexes) if (!QUEUE_INDEXES.includes(name)) sqlite.exec(`DROP INDEX "${name}"`);
  } finally {
    sqlite.close();
  }
}

async function stripPostgres(url: string, foreignKeys: boolean): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = 'tasks'`);
    for (const { indexname } of rows) if (!QUEUE_INDEXES.includes(indexname)) await client.query(`DROP INDEX "${indexname}"`);
    if (foreignKeys) return;
    const constraints = await client.query<{ conname: string }>(
      `SELECT conname FROM pg_constraint WHERE conrelid = 'tasks'::regclass AND contype = 'f'`,
    );
    for (const { conname } of constraints.rows) await client.query(`ALTER TABLE tasks DROP CONSTRAINT "${conname}"`);
  } finally {
    await client.end();
  }
}

/** Batches into a fresh database, stripped first when told, after a warm-up in the same one: tasks/s of the measured run. */
async function batchesOn(newDatabase: () => Promise<EngineDatabase>, strip: ((location: string) => Promise<void>) | null): Promise<number> {
  const fixture = await freshEngine(8, newDatabase);
  try {
    if (strip) await strip(fixture.database.location);
    await submitInBatches(fixture, WARM_UP_TASKS);
    return perSecond(TASKS, await submitInBatches(fixture, TASKS));
  } finally {
    await dispose(fixture);
  }
}

const postgresDatabase = async (): Promise<EngineDatabase> => {
  const database = await freshPgDatabase();
  return { location: database.url, remove: database.drop };
};

const STORES: { store: string; newDatabase: () => Promise<EngineDatabase>; schemas: [Schema, ((location: string) => Promise<void>) | null][] }[] = [
  {
    store: 'SQLite',
    newDatabase: sqliteDatabase,
    schemas: [
      ['as shipped', null],
      ["queue's indexes only", stripSqlite],
    ],
  },
  {
    store: 'PostgreSQL',
    newDatabase: postgresDatabase,
    schemas: [
      ['as shipped', null],
      ["queue's indexes only", (url) => stripPostgres(url, true)],
      ["queue's indexes, no references", (url) => stripPostgres(url, false)],
    ],
  },
];

export async function schemaFloorSection(): Promise<SectionResult> {
  heading(`what the schema costs submitTasks of ${BATCH.toLocaleString('en')}: ${TASKS.toLocaleString('en')} tasks, ${ROUNDS} interleaved rounds, fresh database each run`);
  const summary: string[] = [];
  for (const { store, newDatabase, schemas } of STORES) {
    const figures = new Map<Schema, number[]>(schemas.map(([schema]) => [schema, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [schema, strip] of schemas) figures.get(schema)!.push(await batchesOn(newDatabase, strip));
    }
    const shipped = Math.max(...figures.get('as shipped')!);
    for (const [schema, runs] of figures) {
      const best = Math.max(...runs);
      const ratio = schema === 'as shipped' ? '' : ` (${formatNumber(best / shipped, 2)}x the schema as shipped)`;
      line(`${store}, ${schema}`, `${runs.map((run) => formatNumber(run)).join(' / ')} tasks/s${ratio}`);
    }
    summary.push(`${store} ${[...figures].map(([schema, runs]) => `${schema} ${formatNumber(Math.max(...runs))}`).join(', ')}`);
  }
  return { summary: `schema-floor batches/s (best run) | ${summary.join(' | ')}` };
}

runIfMain(import.meta.url, schemaFloorSection);
