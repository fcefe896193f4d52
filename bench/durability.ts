import { join } from 'node:path';
import { builtInCatalog } from '../src/catalog/services.js';
import { createEngine } from '../src/engine/index.js';
import { openStorage, type SynchronousMode } from '../src/storage/index.js';
import { echo, IN_FLIGHT, processAll, submitOneByOne, type Fixture } from './engine.js';
import { formatNumber, heading, line, now, perSecond, removeFolder, runIfMain, temporaryFolder, type SectionResult } from './lib.js';

// Durability cost: the engine as in (a), on SQLite with synchronous NORMAL (the default: a crash
// of the process loses nothing, a power loss may lose the last commits) and FULL
// (TASKPORT_SYNCHRONOUS=FULL: every commit is synced to disk before it returns).

const TASKS = 10_000;
/** Submissions one at a time: every one is a commit of its own, which is where a sync per commit shows. */
const SERIAL_TASKS = 1_000;

async function fixture(synchronous: SynchronousMode, concurrency: number): Promise<Fixture> {
  const folder = temporaryFolder();
  const storage = await openStorage(join(folder, 'taskport.db'), { synchronous });
  const engine = createEngine({ storage, catalog: builtInCatalog(), concurrency });
  const { apiKey, organisation } = await engine.provisionApiKey({ organisation: 'bench', role: 'ADMIN', name: 'bench' });
  return {
    engine,
    storage,
    database: { location: folder, remove: async () => removeFolder(folder) },
    actor: { organisationId: organisation.id, keyId: apiKey.id, role: apiKey.role },
    input: echo,
  };
}

async function dispose(run: Fixture): Promise<void> {
  await run.engine.stop(1000);
  await run.storage.close();
  await run.database.remove();
}

interface Figures {
  serial: number;
  inFlight: number;
  process: number;
}

async function measure(synchronous: SynchronousMode): Promise<Figures> {
  const serialRun = await fixture(synchronous, 8);
  let serial: number;
  try {
    const started = now();
    for (let index = 0; index < SERIAL_TASKS; index += 1) await serialRun.engine.submitTask(serialRun.actor, echo(index));
    serial = perSecond(SERIAL_TASKS, now() - started);
  } finally {
    await dispose(serialRun);
  }
  const run = await fixture(synchronous, 8);
  try {
    const inFlight = perSecond(TASKS, await submitOneByOne(run, TASKS));
    const process = perSecond(TASKS, await processAll(run, TASKS));
    return { serial, inFlight, process };
  } finally {
    await dispose(run);
  }
}

export async function durabilitySection(): Promise<SectionResult> {
  heading(`durability cost: SQLite synchronous NORMAL against FULL (TASKPORT_SYNCHRONOUS), demo.echo, fresh file each run`);
  // A throwaway run first, so that NORMAL does not pay for the JIT warming up.
  await measure('NORMAL');
  const figures = {} as Record<SynchronousMode, Figures>;
  for (const mode of ['NORMAL', 'FULL'] as const) {
    figures[mode] = await measure(mode);
    line(`${mode}: submitTask one at a time`, `${formatNumber(figures[mode].serial)} tasks/s`);
    line(`${mode}: submitTask, ${IN_FLIGHT} in flight`, `${formatNumber(figures[mode].inFlight)} tasks/s`);
    line(`${mode}: process to SUCCEEDED, concurrency 8`, `${formatNumber(figures[mode].process)} tasks/s`);
  }
  const cost = (key: keyof Figures) => `${Math.round((1 - figures.FULL[key] / figures.NORMAL[key]) * 100)}%`;
  line('FULL costs', `${cost('serial')} one at a time, ${cost('inFlight')} ${IN_FLIGHT} in flight, ${cost('process')} processing`);
  return {
    summary:
      `durability  NORMAL: serial ${formatNumber(figures.NORMAL.serial)}, ${IN_FLIGHT} in flight ${formatNumber(figures.NORMAL.inFlight)},` +
      ` process ${formatNumber(figures.NORMAL.process)} tasks/s | FULL: serial ${formatNumber(figures.FULL.serial)},` +
      ` ${IN_FLIGHT} in flight ${formatNumber(figures.FULL.inFlight)}, process ${formatNumber(figures.FULL.process)} tasks/s`,
  };
}

runIfMain(import.meta.url, durabilitySection);
