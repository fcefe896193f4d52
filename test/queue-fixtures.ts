import type { Claim, NewTask, QueueStore, RecordStore, ServedActions, Storage, WorkBatch } from '../src/storage/index.js';
import { openStorage } from '../src/storage/index.js';
import { temporaryDatabase, testStore } from './helpers.js';

// Stores and tasks for the storage contract tests, on whichever store this vitest project tests. On
// PostgreSQL the races run between two storages on one database, as two processes would; an SQLite
// file has one process, and its store is raced against itself.

export interface Stores {
  first: QueueStore;
  second: QueueStore;
  records: RecordStore;
  tenant(name: string): Promise<Tenant>;
}

export interface Tenant {
  organisationId: number;
  keyId: number;
}

const opened: Storage[] = [];

/** For afterEach: closes the stores the test opened. */
export async function closeOpenedStores(): Promise<void> {
  await Promise.all(opened.splice(0).map((storage) => storage.close()));
}

export async function openStores(): Promise<Stores> {
  const location = await temporaryDatabase();
  const storage = await openStorage(location);
  opened.push(storage);
  let second = storage;
  if (testStore === 'postgres') {
    second = await openStorage(location);
    opened.push(second);
  }
  return {
    first: storage.queue,
    second: second.queue,
    records: storage.records,
    tenant: async (name) => {
      const organisation = await storage.records.findOrCreateOrganisation(name, 0);
      const key = await storage.records.createApiKey(
        { organisationId: organisation.id, name: 'key', role: 'ADMIN', tokenHash: `hash-${name}` },
        0,
      );
      return { organisationId: organisation.id, keyId: key.id };
    },
  };
}

export const NOW = 1_000_000;
export const LEASE_MS = 30_000;
export const A: ServedActions = [{ service: 'svc', action: 'a' }];
export const NOTHING: WorkBatch = { logs: [], results: [], progress: [], outcomes: [] };

export function newTask(tenant: Tenant, overrides: Partial<NewTask> = {}): NewTask {
  return {
    organisationId: tenant.organisationId,
    keyId: tenant.keyId,
    user: null,
    sourceId: null,
    sourceType: null,
    session: null,
    poll: null,
    service: 'svc',
    type: 'a',
    target: null,
    params: {},
    priority: 0,
    maxAttempts: 3,
    timeoutMs: 1000,
    retrievalProtocol: 'STORE',
    idempotencyKey: null,
    runAt: null,
    dependsOn: [],
    ...overrides,
  };
}

export function claimOf(actions: ServedActions, limit: number, now = NOW, owner = 'worker-1'): Claim {
  return { limit, actions, lease: { owner, until: now + LEASE_MS } };
}

export async function enqueueOne(store: QueueStore, task: NewTask, now = NOW) {
  const result = await store.enqueue([task], now);
  if (!result.ok) throw new Error(`enqueue failed: ${JSON.stringify(result)}`);
  return result.tasks[0]!.task;
}

export async function enqueueMany(store: QueueStore, tasks: NewTask[], now = NOW) {
  const result = await store.enqueue(tasks, now);
  if (!result.ok) throw new Error(`enqueue failed: ${JSON.stringify(result)}`);
  return result.tasks.map((entry) => entry.task);
}

export async function stateOf(store: QueueStore, tenant: Tenant, id: number) {
  return (await store.statuses(tenant.organisationId, [id])).get(id)?.state;
}

