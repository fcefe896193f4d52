import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { WORKER_FORGET_MS } from '../src/domain/workers.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import { createKey, graphql, query, startServer, temporaryDatabase, testStore } from './helpers.js';

const WORKERS = `{ workerProcesses { id hostname pid concurrency actions running startedAt heartbeatAt } }`;

const opened: Storage[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((storage) => storage.close()));
});

describe(`workerProcesses on ${testStore}`, () => {
  it('lists the running process with what its worker serves, to ADMIN keys only, and forgets it when it stops', async () => {
    const database = await temporaryDatabase();
    const first = await startServer({ database, concurrency: 3 });
    const { workerProcesses } = await query(first, first.adminToken, WORKERS);
    expect(workerProcesses).toHaveLength(1);
    const [listed] = workerProcesses;
    expect(listed).toMatchObject({ hostname: hostname(), pid: process.pid, concurrency: 3, running: 0 });
    expect(listed.id).toContain(`${hostname()}/${process.pid}/`);
    expect(listed.actions).toEqual(expect.arrayContaining(['demo.echo', 'demo.sleep']));
    expect(Date.parse(listed.heartbeatAt)).toBeGreaterThanOrEqual(Date.parse(listed.startedAt));

    const member = await createKey(first, 'default', 'MEMBER');
    const refused = await graphql(first, member, WORKERS);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    await first.stop();

    const second = await startServer({ database });
    const after = await query(second, first.adminToken, WORKERS);
    expect(after.workerProcesses.map((process: { id: string }) => process.id)).not.toContain(listed.id);
    expect(after.workerProcesses).toHaveLength(1);
    await second.stop();
  });

  it('lists a process that serves no tasks, the api role, as nothing', async () => {
    const server = await startServer({}, { role: 'api' });
    const { workerProcesses } = await query(server, server.adminToken, WORKERS);
    expect(workerProcesses).toEqual([]);
    await server.stop();
  });

  it('leaves out a process silent for longer than it is alive, and deletes its row after an hour', async () => {
    const storage = await openStorage(await temporaryDatabase());
    opened.push(storage);
    const now = Date.now();
    const process = (owner: string, startedAt: number) => ({ owner, hostname: 'h', pid: 1, concurrency: 1, actions: ['a.b'], running: 0, startedAt: new Date(startedAt) });
    await storage.workers.beat(process('gone', now - 9_000_000), now - 7_200_000, 0);
    await storage.workers.beat(process('quiet', now - 8_000_000), now - 60_000, 0);
    expect((await storage.workers.alive(now - 3_600_000_000)).map((found) => found.owner)).toEqual(['gone', 'quiet']);
    await storage.workers.beat(process('live', now - 1000), now, now - WORKER_FORGET_MS);
    expect((await storage.workers.alive(0)).map((found) => found.owner)).toEqual(['quiet', 'live']);
    expect((await storage.workers.alive(now - 15_000)).map((found) => found.owner)).toEqual(['live']);
    await storage.workers.leave('live');
    expect((await storage.workers.alive(now - 15_000)).map((found) => found.owner)).toEqual([]);
  });
});

describe.runIf(testStore === 'postgres')('workerProcesses with several processes on PostgreSQL', () => {
  it('lists every process on the database, from whichever one is asked', async () => {
    const database = await temporaryDatabase();
    const one = await startServer({ database });
    const two = await startServer({ database });
    const fromOne = await query(one, one.adminToken, WORKERS);
    const ids = (list: { id: string }[]) => list.map((process) => process.id);
    expect(ids((await query(two, one.adminToken, WORKERS)).workerProcesses)).toEqual(ids(fromOne.workerProcesses));
    expect(fromOne.workerProcesses).toHaveLength(2);
    expect(new Set(fromOne.workerProcesses.map((process: { id: string }) => process.id)).size).toBe(2);
    await two.stop();
    expect((await query(one, one.adminToken, WORKERS)).workerProcesses).toHaveLength(1);
    await one.stop();
  });
});
