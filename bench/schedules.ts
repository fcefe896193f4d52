import { join } from 'node:path';
import { builtInCatalog } from '../src/catalog/services.js';
import type { Actor } from '../src/domain/types.js';
import { createEngine, type Engine } from '../src/engine/index.js';
import { parseCron } from '../src/schedules/cron.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import { freshPgDatabase } from './postgres.js';
import { formatNumber, heading, line, median, now, percentile, removeFolder, runIfMain, sleep, temporaryFolder, type SectionResult } from './lib.js';

// The scheduler's cost with 10,000 schedules registered, none of them due: the CPU an idle
// process spends per second (against the same process with none), the time to work out a
// schedule's next fire time and the timer's earliest one, and how late a 1-second schedule's
// tasks are created on an otherwise idle process. On SQLite and on PostgreSQL.

const SCHEDULES = 10_000;
const IDLE_MS = 10_000;
const TICK_MS = 20_000;

interface Fixture {
  engine: Engine;
  storage: Storage;
  admin(organisation: string): Promise<Actor>;
  dispose(): Promise<void>;
}

async function fixture(store: 'sqlite' | 'postgres'): Promise<Fixture> {
  let location: string;
  let remove: () => Promise<void>;
  if (store === 'sqlite') {
    const folder = temporaryFolder();
    location = join(folder, 'taskport.db');
    remove = async () => removeFolder(folder);
  } else {
    const database = await freshPgDatabase();
    location = database.url;
    remove = database.drop;
  }
  const storage = await openStorage(location);
  const engine = createEngine({ storage, catalog: builtInCatalog(), concurrency: 8 });
  return {
    engine,
    storage,
    admin: async (organisation) => {
      const { apiKey } = await engine.provisionApiKey({ organisation, role: 'ADMIN', name: 'bench' });
      return { organisationId: apiKey.organisationId, keyId: apiKey.id, role: apiKey.role };
    },
    dispose: async () => {
      await engine.stop(1000);
      await storage.close();
      await remove();
    },
  };
}

/** Daily schedules spread over the day, none of them due in the minutes the bench runs. */
function dailyCron(index: number): string {
  const minutes = (new Date().getUTCHours() * 60 + new Date().getUTCMinutes() + 30 + (index % 1200)) % 1440;
  return `${minutes % 60} ${Math.floor(minutes / 60)} * * *`;
}

/** CPU milliseconds per second of wall time over `ms`, both user and system. */
async function cpuPerSecond(ms: number): Promise<number> {
  const before = process.cpuUsage();
  const started = now();
  await sleep(ms);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / ((now() - started) / 1000);
}

interface Figures {
  store: string;
  registerMs: number;
  idleEmpty: number;
  idleFull: number;
  nextFireUs: number;
  earliestUs: { p50: number; p99: number };
  passUs: number;
  delays: number[];
}

async function measure(store: 'sqlite' | 'postgres'): Promise<Figures> {
  const run = await fixture(store);
  try {
    const actor = await run.admin('bench');
    await run.engine.start();
    await sleep(1000);
    const idleEmpty = await cpuPerSecond(IDLE_MS);

    const registering = now();
    for (let index = 0; index < SCHEDULES; index++) {
      await run.engine.schedules.createSchedule(actor, {
        name: `daily ${index}`,
        cron: dailyCron(index),
        timezone: index % 2 === 0 ? 'UTC' : 'Europe/Berlin',
        service: 'demo',
        action: 'echo',
        params: { message: `schedule ${index}` },
      });
    }
    const registerMs = now() - registering;
    await sleep(1000);
    const idleFull = await cpuPerSecond(IDLE_MS);

    // What a fire computes for each schedule: its expression parsed, and the fire time after now.
    const listed = [];
    for (let after: number | null = null; ; ) {
      const page = await run.engine.schedules.listSchedules(actor, { first: 500, afterId: after });
      listed.push(...page.items);
      if (!page.hasNextPage) break;
      after = page.items.at(-1)!.id;
    }
    const computing = now();
    for (const schedule of listed) {
      const parsed = parseCron(schedule.cron, schedule.timezone);
      if (parsed.ok) parsed.times.nextRuns(1, new Date());
    }
    const nextFireUs = ((now() - computing) * 1000) / listed.length;

    // What the timer reads to arm itself, and a pass that finds nothing due.
    const earliest: number[] = [];
    for (let index = 0; index < 1000; index++) {
      const started = now();
      await run.storage.schedules.earliestNextRun();
      earliest.push((now() - started) * 1000);
    }
    const passes: number[] = [];
    for (let index = 0; index < 200; index++) {
      const started = now();
      await run.engine.schedules.fireDue();
      passes.push((now() - started) * 1000);
    }

    // A 1-second schedule of another organisation: how long after its fire time each task is announced.
    const ticker = await run.admin('ticker');
    const announced = new Map<number, number>();
    const stopListening = run.engine.events.listen('organisation', ticker.organisationId, (change) => {
      if (change.kind === 'CREATED') announced.set(change.taskId, Date.now());
    });
    const tick = await run.engine.schedules.createSchedule(ticker, {
      name: 'tick',
      cron: '* * * * * *',
      service: 'demo',
      action: 'echo',
      params: { message: 'tick' },
    });
    await sleep(TICK_MS);
    await run.engine.schedules.pauseSchedule(ticker, tick.id);
    stopListening();
    const fired = await run.engine.schedules.scheduledTasks(ticker, tick.id, 500, null);
    const delays = fired.items
      .filter((item) => announced.has(item.taskId))
      .map((item) => announced.get(item.taskId)! - item.scheduledFor.getTime());

    return {
      store,
      registerMs,
      idleEmpty,
      idleFull,
      nextFireUs,
      earliestUs: { p50: median(earliest), p99: percentile(earliest, 99) },
      passUs: median(passes),
      delays,
    };
  } finally {
    await run.dispose();
  }
}

function report(figures: Figures): string {
  heading(`schedules on ${figures.store}: ${formatNumber(SCHEDULES)} registered, none due`);
  line('registering them through the engine', `${formatNumber(figures.registerMs / 1000, 1)} s (${formatNumber((figures.registerMs * 1000) / SCHEDULES)} µs each)`);
  line('idle CPU, no schedules', `${formatNumber(figures.idleEmpty, 2)} ms/s`);
  line(`idle CPU, ${formatNumber(SCHEDULES)} schedules`, `${formatNumber(figures.idleFull, 2)} ms/s`);
  line('next fire time of one schedule (parse + next)', `${formatNumber(figures.nextFireUs, 1)} µs`);
  line('earliest fire time of all (the timer arming)', `p50 ${formatNumber(figures.earliestUs.p50)} µs, p99 ${formatNumber(figures.earliestUs.p99)} µs`);
  line('a pass that finds nothing due', `p50 ${formatNumber(figures.passUs)} µs`);
  const delays = figures.delays;
  line(
    `1-second schedule: task announced after its fire time (${delays.length})`,
    delays.length === 0
      ? 'no tasks'
      : `p50 ${formatNumber(median(delays))} ms, p99 ${formatNumber(percentile(delays, 99))} ms, max ${formatNumber(Math.max(...delays))} ms`,
  );
  return `${figures.store}: idle ${formatNumber(figures.idleFull, 2)} ms CPU/s with ${formatNumber(SCHEDULES)} (${formatNumber(figures.idleEmpty, 2)} with none), next fire ${formatNumber(figures.nextFireUs, 1)} µs, fire delay p50 ${formatNumber(median(delays))} ms p99 ${formatNumber(percentile(delays, 99))} ms`;
}

export async function schedulesSection(): Promise<SectionResult> {
  const rows = [];
  for (const store of ['sqlite', 'postgres'] as const) rows.push(report(await measure(store)));
  return { summary: `schedules ${rows.join('; ')}` };
}

runIfMain(import.meta.url, schedulesSection);
