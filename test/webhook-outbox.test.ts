import { afterEach, describe, expect, it } from 'vitest';
import { WEBHOOK_LIMITS, webhookEventMask, type WebhookEvent } from '../src/domain/webhooks.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import type { WebhookAttempt } from '../src/storage/webhook-store.js';
import { temporaryDatabase, testStore } from './helpers.js';
import { A, claimOf, enqueueOne, newTask, NOTHING, NOW, type Tenant } from './queue-fixtures.js';

// The outbox at the storage contract: messages are written with the change that causes them,
// claimed under a lease by one deliverer at a time, in order per task and URL, and settled with
// their attempt. On PostgreSQL two storages on one database stand for two processes.

const opened: Storage[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((storage) => storage.close()));
});

async function open(): Promise<{ storage: Storage; other: Storage; tenant: Tenant }> {
  const location = await temporaryDatabase();
  const storage = await openStorage(location);
  opened.push(storage);
  let other = storage;
  if (testStore === 'postgres') {
    other = await openStorage(location);
    opened.push(other);
  }
  const organisation = await storage.records.findOrCreateOrganisation('org', 0);
  const key = await storage.records.createApiKey({ organisationId: organisation.id, name: 'k', role: 'ADMIN', tokenHash: 'h' }, 0);
  return { storage, other, tenant: { organisationId: organisation.id, keyId: key.id } };
}

const HOOK = 'http://127.0.0.1:1/hook';

function attemptOf(messageId: number, owner: string, overrides: Partial<WebhookAttempt> = {}): WebhookAttempt {
  return {
    messageId,
    owner,
    body: '{}',
    outcome: 'SUCCEEDED',
    httpStatus: 200,
    durationMs: 3,
    error: null,
    nextAttemptAt: null,
    gone: false,
    ...overrides,
  };
}

/** Runs a task of `tenant` to its end through the queue contract, as a worker would. */
async function runToEnd(storage: Storage, tenant: Tenant, webhookEvents: WebhookEvent[] = ['STARTED', 'COMPLETED']) {
  const task = await enqueueOne(storage.queue, newTask(tenant, { webhook: { url: HOOK, events: webhookEvents } }));
  const [claimed] = (await storage.queue.work(NOTHING, claimOf(A, 1), NOW)).claimed;
  await storage.queue.work(
    { ...NOTHING, outcomes: [{ taskId: task.id, attempt: claimed!.attempts, state: 'SUCCEEDED' }] },
    claimOf(A, 0),
    NOW + 10,
  );
  return task;
}

describe(`the webhook outbox on ${testStore}`, () => {
  it('writes a message with each change a webhook asked for, in order, and keeps a later one back until the earlier is settled', async () => {
    const { storage, tenant } = await open();
    const task = await runToEnd(storage, tenant);
    const first = await storage.webhooks.claimDueMessages('d1', 10, NOW + 20, NOW + 60_000);
    expect(first.map((message) => [message.taskId, message.event, message.url, message.endpointId])).toEqual([[task.id, 'STARTED', HOOK, null]]);
    expect(JSON.parse(first[0]!.task)).toMatchObject({ id: task.id, state: 'PROCESSING' });
    expect(await storage.webhooks.claimDueMessages('d1', 10, NOW + 20, NOW + 60_000)).toEqual([]);
    expect(await storage.webhooks.recordAttempt(attemptOf(first[0]!.id, 'd1'), NOW + 30, 0)).toBe(true);
    const second = await storage.webhooks.claimDueMessages('d1', 10, NOW + 40, NOW + 60_000);
    expect(second.map((message) => message.event)).toEqual(['COMPLETED']);
    expect(JSON.parse(second[0]!.task)).toMatchObject({ state: 'SUCCEEDED' });
  });

  it('writes nothing for a task without a webhook in an organisation without endpoints', async () => {
    const { storage, tenant } = await open();
    await enqueueOne(storage.queue, newTask(tenant));
    await storage.queue.work(NOTHING, claimOf(A, 1), NOW);
    expect(await storage.webhooks.nextDueAt()).toBeNull();
  });

  it('leases a message to one deliverer at a time; a lease that ran out is due again, and the late owner records nothing', async () => {
    const { storage, other, tenant } = await open();
    await runToEnd(storage, tenant, ['STARTED']);
    const [taken, twice] = await Promise.all([
      storage.webhooks.claimDueMessages('d1', 10, NOW + 20, NOW + 1000),
      other.webhooks.claimDueMessages('d2', 10, NOW + 20, NOW + 1000),
    ]);
    expect(taken!.length + twice!.length).toBe(1);
    const message = [...taken!, ...twice!][0]!;
    const firstOwner = taken!.length === 1 ? 'd1' : 'd2';
    const retaken = await other.webhooks.claimDueMessages('d3', 10, NOW + 1001, NOW + 5000);
    expect(retaken.map((entry) => entry.id)).toEqual([message.id]);
    expect(await storage.webhooks.recordAttempt(attemptOf(message.id, firstOwner), NOW + 1002, 0)).toBe(false);
    expect(await storage.webhooks.recordAttempt(attemptOf(message.id, 'd3'), NOW + 1003, 0)).toBe(true);
    const page = await storage.webhookEndpoints.listWebhookDeliveries(tenant.organisationId, { taskId: message.taskId }, { first: 10, afterId: null });
    expect(page.items.map((delivery) => [delivery.attempt, delivery.outcome])).toEqual([[1, 'SUCCEEDED']]);
  });

  it("retries a failed attempt at its next time, keeping the body it sent first", async () => {
    const { storage, tenant } = await open();
    await runToEnd(storage, tenant, ['STARTED']);
    const [message] = await storage.webhooks.claimDueMessages('d1', 10, NOW + 20, NOW + 1000);
    await storage.webhooks.recordAttempt(
      attemptOf(message!.id, 'd1', { body: 'first bytes', outcome: 'FAILED', httpStatus: 500, nextAttemptAt: NOW + 500 }),
      NOW + 30,
      0,
    );
    expect(await storage.webhooks.claimDueMessages('d1', 10, NOW + 499, NOW + 1000)).toEqual([]);
    expect(await storage.webhooks.nextDueAt()).toBe(NOW + 500);
    const [again] = await storage.webhooks.claimDueMessages('d1', 10, NOW + 500, NOW + 1000);
    expect(again).toMatchObject({ id: message!.id, attempts: 1, body: 'first bytes' });
  });

  it('disables an endpoint whose attempts have failed for five days, and fails its pending messages', async () => {
    const { storage, tenant } = await open();
    const endpoint = await storage.webhookEndpoints.createWebhookEndpoint(
      { organisationId: tenant.organisationId, url: HOOK, description: null, events: webhookEventMask(['STARTED', 'COMPLETED']), secret: 'whsec_AAAA' },
      10,
      NOW,
    );
    await enqueueOne(storage.queue, newTask(tenant));
    await storage.queue.work(NOTHING, claimOf(A, 1), NOW);
    const [message] = await storage.webhooks.claimDueMessages('d1', 10, NOW + 1, NOW + 1000);
    expect(message).toMatchObject({ endpointId: endpoint!.id, event: 'STARTED' });
    const failed = { outcome: 'FAILED' as const, httpStatus: 500, nextAttemptAt: NOW + 10 };
    await storage.webhooks.recordAttempt(attemptOf(message!.id, 'd1', failed), NOW + 2, NOW + 2 - WEBHOOK_LIMITS.disableAfterMs);
    let [current] = await storage.webhookEndpoints.getWebhookEndpoints(tenant.organisationId, [endpoint!.id]);
    expect(current).toMatchObject({ enabled: true, failingSince: new Date(NOW + 2) });

    const later = NOW + 2 + WEBHOOK_LIMITS.disableAfterMs;
    const [retry] = await storage.webhooks.claimDueMessages('d1', 10, later, later + 1000);
    await storage.webhooks.recordAttempt(attemptOf(retry!.id, 'd1', { ...failed, nextAttemptAt: later + 10 }), later, later - WEBHOOK_LIMITS.disableAfterMs);
    [current] = await storage.webhookEndpoints.getWebhookEndpoints(tenant.organisationId, [endpoint!.id]);
    expect(current).toMatchObject({ enabled: false, disabledReason: 'FAILING' });
    expect(await storage.webhooks.claimDueMessages('d1', 10, later + 100, later + 1000)).toEqual([]);
  });

  it('deletes a task’s messages and attempts with the task when retention deletes it', async () => {
    const { storage, tenant } = await open();
    const task = await runToEnd(storage, tenant, ['COMPLETED']);
    const [message] = await storage.webhooks.claimDueMessages('d1', 10, NOW + 20, NOW + 1000);
    await storage.webhooks.recordAttempt(attemptOf(message!.id, 'd1'), NOW + 30, 0);
    let batch;
    do batch = await storage.records.deleteExpiredTasks(NOW + 1_000_000, { dateCompleted: -1, id: 0 });
    while (!batch.busy && batch.next !== null);
    expect(await storage.records.getTasks(tenant.organisationId, [task.id])).toEqual([]);
    const page = await storage.webhookEndpoints.listWebhookDeliveries(tenant.organisationId, { taskId: task.id }, { first: 10, afterId: null });
    expect(page.items).toEqual([]);
    expect(await storage.webhooks.nextDueAt()).toBeNull();
  });
});
