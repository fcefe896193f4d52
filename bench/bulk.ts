import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { loadCatalog } from '../src/catalog/load.js';
import { createEngine, type Engine } from '../src/engine/index.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import { formatNumber, heading, line, now, perSecond, runIfMain, temporaryFolder, type SectionResult } from './lib.js';
import { freshPgDatabase } from './postgres.js';

// Bulk operations and retention must not hold the event loop: each works in batches, one
// transaction each, with a turn of the loop between them. In one process (the engine with its
// store, no HTTP), 10,000 waiting tasks are cancelled with cancelTasks, put back with retryTasks,
// cancelled again, aged by 40 days and swept by retention; a 1 ms timer records the longest gap
// between its ticks during each, which is the longest any request would have waited.

const TASKS = 10_000;
const SUBMIT_BATCH = 1_000;
const DAY_MS = 86_400_000;

interface Stall {
  longestMs: number;
  /** CPU time this process spent in the longest gap: the rest of it, other processes had the cores. */
  longestCpuMs: number;
  over20Ms: number;
}

/** Runs `work` while a 1 ms timer notes the gaps between its ticks. */
async function withStallWatch<T>(work: () => Promise<T>): Promise<{ result: T; ms: number; stall: Stall }> {
  let last = now();
  let lastCpu = process.cpuUsage();
  const stall: Stall = { longestMs: 0, longestCpuMs: 0, over20Ms: 0 };
  const timer = setInterval(() => {
    const at = now();
    const cpu = process.cpuUsage(lastCpu);
    const gap = at - last;
    last = at;
    lastCpu = process.cpuUsage();
    if (gap > stall.longestMs) {
      stall.longestMs = gap;
      stall.longestCpuMs = (cpu.user + cpu.system) / 1000;
    }
    if (gap > 20) stall.over20Ms += 1;
  }, 1);
  const started = now();
  try {
    const result = await work();
    return { result, ms: now() - started, stall };
  } finally {
    clearInterval(timer);
  }
}

const describe = (what: { ms: number; stall: Stall }, count: number) =>
  `${count.toLocaleString('en')} in ${formatNumber(what.ms, 0)} ms = ${formatNumber(perSecond(count, what.ms))} tasks/s; ` +
  `longest stall ${formatNumber(what.stall.longestMs)} ms, ${formatNumber(what.stall.longestCpuMs)} ms of it on this process's CPU (${what.stall.over20Ms} gaps over 20 ms)`;

async function measure(label: string, location: string, age: (completedAt: number) => Promise<void>): Promise<SectionResult> {
  const storage: Storage = await openStorage(location, { poolSize: 10 });
  const catalog = await loadCatalog({ services: [], demo: true });
  const engine: Engine = createEngine({ storage, catalog, worker: false, retentionMs: 30 * DAY_MS });
  try {
    await engine.start();
    const { apiKey } = await engine.provisionApiKey({ organisation: 'bench', role: 'ADMIN', name: 'bench' });
    const actor = { organisationId: apiKey.organisationId, keyId: apiKey.id, role: 'ADMIN' as const };
    const runAt = new Date(Date.now() + DAY_MS);
    for (let first = 0; first < TASKS; first += SUBMIT_BATCH) {
      const inputs = Array.from({ length: SUBMIT_BATCH }, (_, index) => ({
        service: 'demo',
        action: 'echo',
        params: { message: `task ${first + index}` },
        runAt,
      }));
      await engine.submitTasks(actor, inputs);
    }
    // What the machine alone does to a 1 ms timer (other processes share its cores): the noise floor.
    const idle = await withStallWatch(() => new Promise((resolve) => setTimeout(resolve, 2000)));
    line('reference: 2 s of nothing', describe(idle, 0));
    const cancel = await withStallWatch(() => engine.cancelTasks(actor, {}, null));
    if (cancel.result.count !== TASKS) throw new Error(`cancelTasks changed ${cancel.result.count} tasks`);
    line('cancelTasks (PENDING)', describe(cancel, TASKS));
    const retry = await withStallWatch(() => engine.retryTasks(actor, { state: ['CANCELLED'] }, null));
    if (retry.result.count !== TASKS) throw new Error(`retryTasks changed ${retry.result.count} tasks`);
    line('retryTasks (CANCELLED)', describe(retry, TASKS));
    await engine.cancelTasks(actor, {}, null);
    await age(Date.now() - 40 * DAY_MS);
    const sweep = await withStallWatch(() => engine.sweepRetention());
    if (sweep.result !== TASKS) throw new Error(`retention deleted ${sweep.result} tasks`);
    line('retention sweep', describe(sweep, TASKS));
    const longest = [cancel, retry, sweep].reduce((worst, run) => (run.stall.longestMs > worst.longestMs ? run.stall : worst), idle.stall);
    return {
      summary:
        `${label} 10,000 tasks: cancelTasks ${formatNumber(cancel.ms, 0)} ms, retryTasks ${formatNumber(retry.ms, 0)} ms, ` +
        `retention ${formatNumber(sweep.ms, 0)} ms | longest stall ${formatNumber(longest.longestMs)} ms (${formatNumber(longest.longestCpuMs)} ms on the CPU; idle ${formatNumber(idle.stall.longestMs)} ms)`,
    };
  } finally {
    await engine.stop(0);
    await storage.close();
  }
}

export async function bulkSection(): Promise<SectionResult> {
  heading(`(g) bulk operations and retention over ${TASKS.toLocaleString('en')} tasks, in process, on SQLite`);
  const file = join(temporaryFolder(), 'bulk.db');
  return measure('bulk   ', file, async (completedAt) => {
    const sqlite = new Database(file);
    try {
      sqlite.pragma('busy_timeout = 5000');
      sqlite.prepare('UPDATE tasks SET date_completed = ? WHERE date_completed IS NOT NULL').run(completedAt);
    } finally {
      sqlite.close();
    }
  });
}

export async function bulkPgSection(): Promise<SectionResult> {
  heading(`(g) bulk operations and retention over ${TASKS.toLocaleString('en')} tasks, in process, on PostgreSQL`);
  const database = await freshPgDatabase();
  try {
    return await measure('pg-bulk', database.url, async (completedAt) => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        await client.query('UPDATE tasks SET date_completed = $1 WHERE date_completed IS NOT NULL', [completedAt]);
      } finally {
        await client.end();
      }
    });
  } finally {
    await database.drop();
  }
}

runIfMain(import.meta.url, async () => {
  const sqlite = await bulkSection();
  const postgres = await bulkPgSection();
  return { summary: `${sqlite.summary}\n${postgres.summary}` };
});
