import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BATCH, dispose, freshEngine, IN_FLIGHT, processAll, sqliteDatabase, submitInBatches, submitOneByOne, TASKS } from './engine.js';
import { formatNumber, heading, line, median, now, perSecond, removeFolder, runIfMain, temporaryFolder, withTimeout, type SectionResult } from './lib.js';

// (pe) Taskport beside the queue a user of the embedded store would pick instead, on this machine,
// in interleaved rounds: plainjob on better-sqlite3, through its own documented API (add, addMany,
// one worker); Taskport's tasks are the bench service's no-op, which stores no result, as plainjob's
// empty jobs. Its dependencies live in bench/peers/, installed there on first use, so that
// Taskport's own install never carries them.

const PEERS = fileURLToPath(new URL('./peers/', import.meta.url));
/** Interleaved rounds of each peer section; TASKPORT_BENCH_PEER_ROUNDS lowers it while iterating. */
export const ROUNDS = Number(process.env.TASKPORT_BENCH_PEER_ROUNDS) || 3;

/** Installs bench/peers/ when any dependency its package.json lists is missing (a peer added since the last install). */
export function installPeers(): void {
  const { dependencies } = JSON.parse(readFileSync(join(PEERS, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  if (Object.keys(dependencies).every((name) => existsSync(join(PEERS, 'node_modules', name, 'package.json')))) return;
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: PEERS, stdio: 'inherit' });
}

/** require() resolving from bench/peers/, where the peers are installed. */
export const requirePeer = createRequire(join(PEERS, 'package.json'));

/** A peer's ES module, resolved from bench/peers/. */
export async function importPeer(name: string): Promise<unknown> {
  return import(pathToFileURL(requirePeer.resolve(name)).href);
}

interface Plainjob {
  better(database: unknown): unknown;
  defineQueue(options: { connection: unknown }): {
    add(type: string, data: unknown): unknown;
    addMany(type: string, data: unknown[]): unknown;
    close(): void;
  };
  defineWorker(
    type: string,
    processor: (job: unknown) => Promise<void>,
    options: { queue: unknown; pollIntervall?: number; onCompleted?: () => void; logger?: unknown },
  ): { start(): Promise<void>; stop(): Promise<void> };
}

async function loadPeers(): Promise<{ plainjob: Plainjob; Database: new (path: string) => { close(): void } }> {
  installPeers();
  const plainjob = (await importPeer('plainjob')) as Plainjob;
  return { plainjob, Database: requirePeer('better-sqlite3') };
}

const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
const payload = (index: number) => ({ message: `bench ${index}` });

/** One plainjob run on a fresh file: batch or single adds, then one worker drains them. */
async function plainjobRun(peers: Awaited<ReturnType<typeof loadPeers>>, batched: boolean): Promise<{ submit: number; process: number }> {
  const folder = temporaryFolder();
  // As its README opens one; plainjob sets WAL and synchronous NORMAL itself, as Taskport does.
  const database = new peers.Database(join(folder, 'plainjob.db'));
  const queue = peers.plainjob.defineQueue({ connection: peers.plainjob.better(database) });
  try {
    let started = now();
    if (batched) {
      for (let first = 0; first < TASKS; first += BATCH) {
        queue.addMany('echo', Array.from({ length: Math.min(BATCH, TASKS - first) }, (_, offset) => payload(first + offset)));
      }
    } else {
      for (let index = 0; index < TASKS; index++) queue.add('echo', payload(index));
    }
    const submit = perSecond(TASKS, now() - started);
    let completed = 0;
    let finish = () => {};
    const done = new Promise<void>((resolve) => (finish = resolve));
    const worker = peers.plainjob.defineWorker('echo', async () => {}, {
      queue,
      logger: silent,
      onCompleted: () => {
        if (++completed === TASKS) finish();
      },
    });
    started = now();
    void worker.start();
    await withTimeout(120_000, `plainjob processing (${completed} done)`, done);
    const process = perSecond(TASKS, now() - started);
    await worker.stop();
    return { submit, process };
  } finally {
    queue.close();
    database.close();
    removeFolder(folder);
  }
}

async function taskportRun(batched: boolean): Promise<{ submit: number; process: number }> {
  const fixture = await freshEngine(8, sqliteDatabase, 'noop');
  try {
    const submit = perSecond(TASKS, await (batched ? submitInBatches(fixture) : submitOneByOne(fixture)));
    const process = perSecond(TASKS, await processAll(fixture));
    return { submit, process };
  } finally {
    await dispose(fixture);
  }
}

export function range(values: readonly number[]): string {
  return `${formatNumber(Math.min(...values))}–${formatNumber(Math.max(...values))}`;
}

export function ratio(ours: readonly number[], theirs: readonly number[]): string {
  return `${formatNumber(median(ours) / median(theirs), 2)}×`;
}

export async function peersSection(): Promise<SectionResult> {
  heading(`(pe) Taskport beside plainjob on SQLite: ${TASKS.toLocaleString('en')} no-op tasks a run, ${ROUNDS} interleaved rounds`);
  const peers = await loadPeers();
  // Warm both up, so that neither measured run pays for the JIT.
  await taskportRun(true);
  await plainjobRun(peers, true);
  const figures = { batch: [[], []], single: [[], []], process: [[], []] } as Record<'batch' | 'single' | 'process', [number[], number[]]>;
  for (let round = 0; round < ROUNDS; round++) {
    for (const batched of [true, false]) {
      const ours = await taskportRun(batched);
      const theirs = await plainjobRun(peers, batched);
      figures[batched ? 'batch' : 'single'][0].push(ours.submit);
      figures[batched ? 'batch' : 'single'][1].push(theirs.submit);
      if (batched) {
        figures.process[0].push(ours.process);
        figures.process[1].push(theirs.process);
      }
    }
  }
  const rows: [string, keyof typeof figures][] = [
    [`submitTasks of ${BATCH.toLocaleString('en')} / addMany`, 'batch'],
    [`submitTask, ${IN_FLIGHT} in flight / add`, 'single'],
    ['processing, concurrency 8 / one worker', 'process'],
  ];
  const summary: string[] = [];
  for (const [name, key] of rows) {
    const [ours, theirs] = figures[key];
    line(name, `Taskport ${range(ours)} tasks/s, plainjob ${range(theirs)} jobs/s: ${ratio(ours, theirs)}`);
    summary.push(`${key} ${ratio(ours, theirs)}`);
  }
  return { summary: `peers SQLite, Taskport / plainjob (medians of ${ROUNDS} rounds): ${summary.join(', ')}` };
}

runIfMain(import.meta.url, peersSection);
