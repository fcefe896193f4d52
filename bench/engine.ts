import { join } from 'node:path';
import { Catalog } from '../src/catalog/index.js';
import { builtInServices } from '../src/catalog/services.js';
import { defineAction, defineService } from '../src/catalog/types.js';
import { createEngine, type Engine } from '../src/engine/index.js';
import type { Actor, SubmitTaskInput } from '../src/domain/types.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import {
  formatNumber,
  heading,
  line,
  now,
  perSecond,
  removeFolder,
  runIfMain,
  temporaryFolder,
  withTimeout,
  type SectionResult,
} from './lib.js';

// (a) The engine as a library, in this process, without HTTP: how fast tasks go into the SQLite
// queue, and how fast the worker takes them through to SUCCEEDED.

export const TASKS = 20_000;
export const WARM_UP_TASKS = 2_000;
export const IN_FLIGHT = 64;
export const BATCH = 1_000;

export interface Fixture {
  engine: Engine;
  storage: Storage;
  actor: Actor;
  database: EngineDatabase;
  /** The submission of the run's `index`th task. */
  input: (index: number) => SubmitTaskInput;
}

/** What the tasks of a run do: `demo.echo` stores its message as a result; `noop` returns nothing, as a peer's empty job. */
export type BenchAction = 'echo' | 'noop';

/** A service of the bench's own, as a user's would be: one action whose handler does nothing. */
const benchService = defineService({
  slug: 'bench',
  name: 'Bench',
  description: 'The bench runs these beside other queues, whose jobs do nothing.',
  actions: [
    defineAction({
      slug: 'noop',
      name: 'No-op',
      description: 'Succeeds at once and returns nothing.',
      execution: ['ASYNCHRONOUS'],
      parameters: [{ slug: 'message', name: 'Message', type: 'STRING' }],
      handler: () => undefined,
    }),
  ],
});

/** The database of one run: a location for openStorage, removed after the run. */
export interface EngineDatabase {
  location: string;
  remove(): Promise<void>;
}

export async function sqliteDatabase(): Promise<EngineDatabase> {
  const folder = temporaryFolder();
  return { location: join(folder, 'taskport.db'), remove: async () => removeFolder(folder) };
}

export async function freshEngine(
  concurrency: number,
  newDatabase: () => Promise<EngineDatabase> = sqliteDatabase,
  action: BenchAction = 'echo',
): Promise<Fixture> {
  const database = await newDatabase();
  const storage = await openStorage(database.location);
  const engine = createEngine({ storage, catalog: new Catalog([...builtInServices, benchService]), concurrency });
  const { apiKey, organisation } = await engine.provisionApiKey({ organisation: 'bench', role: 'ADMIN', name: 'bench' });
  return {
    engine,
    storage,
    database,
    // As the API's context makes it: with the organisation read with the key.
    actor: { organisationId: organisation.id, keyId: apiKey.id, role: apiKey.role, organisation },
    input: action === 'echo' ? echo : noop,
  };
}

export async function dispose(fixture: Fixture): Promise<void> {
  await fixture.engine.stop(1000);
  await fixture.storage.close();
  await fixture.database.remove();
}

export const echo = (index: number): SubmitTaskInput => ({ service: 'demo', action: 'echo', params: { message: `bench ${index}` } });
const noop = (index: number): SubmitTaskInput => ({ service: 'bench', action: 'noop', params: { message: `bench ${index}` } });

/** submitTask, `IN_FLIGHT` at a time: the storage commits the submissions of one turn together. */
export async function submitOneByOne({ engine, actor, input }: Fixture, tasks = TASKS): Promise<number> {
  let next = 0;
  const started = now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < tasks) await engine.submitTask(actor, input(next++));
    }),
  );
  return now() - started;
}

export async function submitInBatches({ engine, actor, input }: Fixture, tasks = TASKS): Promise<number> {
  const started = now();
  for (let first = 0; first < tasks; first += BATCH) {
    await engine.submitTasks(
      actor,
      Array.from({ length: Math.min(BATCH, tasks - first) }, (_, offset) => input(first + offset)),
    );
  }
  return now() - started;
}

/** Starts the worker and times until every task has SUCCEEDED, counted on the organisation's events. */
export async function processAll({ engine, actor }: Fixture, tasks = TASKS): Promise<number> {
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
  const started = now();
  try {
    await engine.start();
    await withTimeout(120_000, `processing (${succeeded} succeeded, ${failed} failed so far)`, done);
  } finally {
    stopListening();
  }
  if (failed > 0) throw new Error(`${failed} tasks did not succeed`);
  return now() - started;
}

export async function engineSection(): Promise<SectionResult> {
  heading(`(a) engine through the library API: ${TASKS.toLocaleString('en')} demo.echo tasks, fresh SQLite file each run`);

  // A throwaway run first, so that neither measured run pays for the JIT warming up.
  const warmUp = await freshEngine(8);
  try {
    await submitOneByOne(warmUp, WARM_UP_TASKS);
    await submitInBatches(warmUp, WARM_UP_TASKS);
    await processAll(warmUp, 2 * WARM_UP_TASKS);
  } finally {
    await dispose(warmUp);
  }

  // Run 1: submitTask with 64 in flight, then the worker at the default concurrency 8.
  const first = await freshEngine(8);
  let submitOne: number, process8: number;
  try {
    submitOne = perSecond(TASKS, await submitOneByOne(first));
    line(`submitTask, ${IN_FLIGHT} in flight`, `${formatNumber(submitOne)} tasks/s`);
    process8 = perSecond(TASKS, await processAll(first));
    line('process to SUCCEEDED, concurrency 8', `${formatNumber(process8)} tasks/s`);
  } finally {
    await dispose(first);
  }

  // Run 2: submitTasks in batches of 1,000, then the worker at concurrency 32.
  const second = await freshEngine(32);
  let submitBatch: number, process32: number;
  try {
    submitBatch = perSecond(TASKS, await submitInBatches(second));
    line(`submitTasks, batches of ${BATCH.toLocaleString('en')}`, `${formatNumber(submitBatch)} tasks/s`);
    process32 = perSecond(TASKS, await processAll(second));
    line('process to SUCCEEDED, concurrency 32', `${formatNumber(process32)} tasks/s`);
  } finally {
    await dispose(second);
  }

  line('aims', 'submit >= 20,000 tasks/s, process >= 10,000 tasks/s');
  return {
    summary:
      `engine  submit (${IN_FLIGHT} in flight) ${formatNumber(submitOne)} tasks/s` +
      ` | submit (batches of ${BATCH}) ${formatNumber(submitBatch)} tasks/s` +
      ` | process (concurrency 8) ${formatNumber(process8)} tasks/s` +
      ` | process (concurrency 32) ${formatNumber(process32)} tasks/s`,
  };
}

runIfMain(import.meta.url, engineSection);
