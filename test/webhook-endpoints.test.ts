import { afterEach, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../src/storage/index.js';
import { temporaryDatabase } from './helpers.js';

// Webhook endpoints, signing secrets and deliveries as the API offers them, on the store under test.

const opened: Storage[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((storage) => storage.close()));
});

async function openTestStorage(): Promise<Storage> {
  const storage = await openStorage(await temporaryDatabase());
  opened.push(storage);
  return storage;
}

describe('liveSigningSecrets', () => {
  it("creates the organisation's secret at first use and keeps it", async () => {
    const storage = await openTestStorage();
    const organisation = await storage.records.findOrCreateOrganisation('acme', 0);
    const [first, ...rest] = await storage.webhookEndpoints.liveSigningSecrets(organisation.id, null, 1000);
    expect(first).toMatch(/^whsec_/);
    expect(rest).toEqual([]);
    // Two first reads at once agree: the secret is written once.
    const [again, racing] = await Promise.all([
      storage.webhookEndpoints.liveSigningSecrets(organisation.id, null, 2000),
      storage.webhookEndpoints.liveSigningSecrets(organisation.id, null, 2000),
    ]);
    expect(again).toEqual([first]);
    expect(racing).toEqual([first]);
  });

  it('is empty for an endpoint that does not exist or belongs to another organisation', async () => {
    const storage = await openTestStorage();
    const organisation = await storage.records.findOrCreateOrganisation('acme', 0);
    expect(await storage.webhookEndpoints.liveSigningSecrets(organisation.id, 12345, 1000)).toEqual([]);
    expect(await storage.webhookEndpoints.liveSigningSecrets(organisation.id + 100, null, 1000)).toEqual([]);
  });
});
