import { builtInCatalog } from '../src/catalog/services.js';
import type { Actor } from '../src/domain/types.js';
import { createEngine } from '../src/engine/index.js';
import { openStorage } from '../src/storage/index.js';
import { BATCH, echo, sqliteDatabase, type EngineDatabase } from './engine.js';
import { formatNumber, heading, line, now, perSecond, runIfMain, withTimeout, type SectionResult } from './lib.js';
import { freshPgDatabase } from './postgres.js';

// Fair share (src/storage/fair-share.ts) on each store: what taking turns between organisations
// costs the worker (one organisation against 100 with the same 20,000 tasks between them), and
// what it buys (how soon a second organisation's lone task starts behind a backlog of 100,000).

const TASKS = 20_000;
const ORGANISATIONS = 100;
const BACKLOG = 100_000;
const CONCURRENCY = 8;

type Store = 'sqlite' | 'postgres';

async function newDatabase(store: Store): Promise<EngineDatabase> {
  if (store === 'sqlite') return sqliteDatabase();
  const database = await freshPgDatabase();
  return { location: database.url, remove: database.drop };
}

async function withEngine<T>(store: Store, organisations: number, work: (engine: ReturnType<typeof createEngine>, actors: Actor[]) => Promise<T>): Promise<T> {
  const database = await newDatabase(store);
  const storage = await openStorage(database.location);
  const engine = createEngine({ storage, catalog: builtInCatalog(), concurrency: CONCURRENCY });
  try {
    const actors: Actor[] = [];
    for (let index = 0; index < organisations; index += 1) {
      const { apiKey, organisation } = await engine.provisionApiKey({ organisation: `org-${index}`, role: 'ADMIN', name: 'bench' });
      actors.push({ organisationId: organisation.id, keyId: apiKey.id, role: apiKey.role });
    }
    return await work(engine, actors);
  } finally {
    await engine.stop(1000);
    await storage.close();
    await database.remove();
  }
}

async function submitFor(engine: ReturnType<typeof createEngine>, actor: Actor, count: number): Promise<void> {
  for (let first = 0; first < count; first += BATCH) {
    await engine.submitTasks(actor, Array.from({ length: Math.min(BATCH, count - first) }, (_, offset) => echo(first + offset)));
  }
}

/** Tasks/s from the worker's start until every task of `actors` has SUCCEEDED. */
async function processThroughput(store: Store, organisations: number): Promise<number> {
  return withEngine(store, organisations, async (engine, actors) => {
    const each = TASKS / organisations;
    for (const actor of actors) await submitFor(engine, actor, each);
    let succeeded = 0;
    const stops: (() => void)[] = [];
    const done = new Promise<void>((resolve) => {
      for (const actor of actors) {
        stops.push(
          engine.events.listen('organisation', actor.organisationId, (change) => {
            if (change.kind === 'STATE_CHANGED' && change.state === 'SUCCEEDED' && ++succeeded === TASKS) resolve();
          }),
        );
      }
    });
    const started = now();
    try {
      await engine.start();
      await withTimeout(180_000, `processing (${succeeded} succeeded so far)`, done);
    } finally {
      for (const stop of stops) stop();
    }
    return perSecond(TASKS, now() - started);
  });
}

/** Milliseconds from a lone task's submission to its start, while a backlog of BACKLOG drains. */
async function loneTaskDelay(store: Store): Promise<number> {
  return withEngine(store, 2, async (engine, [busy, lone]) => {
    await submitFor(engine, busy!, BACKLOG);
    await engine.start();
    // The worker is in its stride before the lone task comes.
    await new Promise<void>((resolve) => {
      let succeeded = 0;
      const stop = engine.events.listen('organisation', busy!.organisationId, (change) => {
        if (change.kind === 'STATE_CHANGED' && change.state === 'SUCCEEDED' && ++succeeded === 1000) {
          stop();
          resolve();
        }
      });
    });
    let submittedAt = 0;
    const startedAt = new Promise<number>((resolve) => {
      const stop = engine.events.listen('organisation', lone!.organisationId, (change) => {
        if (change.kind === 'STATE_CHANGED' && change.state === 'PROCESSING') {
          stop();
          resolve(now());
        }
      });
    });
    submittedAt = now();
    await engine.submitTask(lone!, echo(0));
    return (await withTimeout(60_000, 'the lone task to start', startedAt)) - submittedAt;
  });
}

export async function fairShareSection(): Promise<SectionResult> {
  heading(
    `fair share: ${TASKS.toLocaleString('en')} demo.echo tasks of 1 and of ${ORGANISATIONS} organisations, ` +
      `and a lone task behind ${BACKLOG.toLocaleString('en')}, concurrency ${CONCURRENCY}`,
  );
  const summary: string[] = [];
  for (const store of ['sqlite', 'postgres'] as const) {
    // A throwaway run first, so that no measured run pays for the JIT warming up.
    await processThroughput(store, 10);
    const one = await processThroughput(store, 1);
    const many = await processThroughput(store, ORGANISATIONS);
    const apart = Math.abs(one - many) / one;
    line(`${store}: process, 1 organisation`, `${formatNumber(one)} tasks/s`);
    line(`${store}: process, ${ORGANISATIONS} organisations`, `${formatNumber(many)} tasks/s (${formatNumber(apart * 100, 1)}% apart)`);
    const delay = await loneTaskDelay(store);
    line(`${store}: lone task behind ${BACKLOG.toLocaleString('en')}, submit to start`, `${formatNumber(delay, 1)} ms`);
    summary.push(
      `${store} 1 org ${formatNumber(one)}/s, ${ORGANISATIONS} orgs ${formatNumber(many)}/s (${formatNumber(apart * 100, 1)}% apart), lone task starts in ${formatNumber(delay, 1)} ms`,
    );
  }
  line('aims', `1 and ${ORGANISATIONS} organisations under 10% apart; the lone task starts within 1 s`);
  return { summary: `fair    ${summary.join(' | ')}` };
}

runIfMain(import.meta.url, fairShareSection);
