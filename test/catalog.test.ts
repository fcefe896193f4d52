import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, query, registerAccount, RETRIEVE, startServer, submit, waitForTask, type TestServer } from './helpers.js';

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startServer();
  token = server.adminToken;
});

afterAll(async () => {
  await server.stop();
});

const SERVICES = `{
  services {
    slug name description
    actions {
      slug name description execution requiresAccount permissions
      parameters { slug name type optional description allowedValues }
    }
  }
}`;

describe('services', () => {
  it('lists the demo service with its five actions and how each may run', async () => {
    const data = await query(server, token, SERVICES);
    const demo = data.services.find((service: any) => service.slug === 'demo');
    expect(demo).toBeDefined();
    expect(demo.name).toBe('Demo');
    expect(typeof demo.description).toBe('string');
    expect(demo.actions.map((action: any) => action.slug)).toEqual(['echo', 'sleep', 'fail', 'fraud-score', 'fetch-data']);
    const execution = Object.fromEntries(demo.actions.map((action: any) => [action.slug, action.execution]));
    expect(execution).toEqual({
      echo: ['ASYNCHRONOUS', 'REALTIME'],
      sleep: ['ASYNCHRONOUS', 'REALTIME'],
      fail: ['ASYNCHRONOUS', 'REALTIME'],
      'fraud-score': ['REALTIME', 'ASYNCHRONOUS'],
      'fetch-data': ['ASYNCHRONOUS'],
    });
    for (const action of demo.actions) {
      expect(action.requiresAccount).toBe(action.slug === 'fetch-data');
      expect(typeof action.name).toBe('string');
    }
  });

  it('describes each action parameter', async () => {
    const data = await query(server, token, SERVICES);
    const actions = Object.fromEntries(
      data.services.find((service: any) => service.slug === 'demo').actions.map((action: any) => [action.slug, action]),
    );
    const shape = (action: any) =>
      action.parameters.map(({ slug, type, optional, allowedValues }: any) => ({ slug, type, optional, allowedValues }));

    expect(shape(actions.echo)).toEqual([{ slug: 'message', type: 'STRING', optional: false, allowedValues: null }]);
    expect(shape(actions.sleep)).toEqual([
      { slug: 'ms', type: 'INTEGER', optional: false, allowedValues: null },
      { slug: 'steps', type: 'INTEGER', optional: true, allowedValues: null },
    ]);
    expect(shape(actions.fail)).toEqual([{ slug: 'code', type: 'STRING', optional: true, allowedValues: null }]);
    expect(shape(actions['fetch-data'])).toEqual([
      { slug: 'device', type: 'STRING', optional: false, allowedValues: null },
      { slug: 'since', type: 'DATE', optional: true, allowedValues: null },
      { slug: 'data', type: 'LIST', optional: false, allowedValues: ['sms', 'calls', 'contacts', 'photos'] },
    ]);
    expect(actions.echo.parameters[0]).toMatchObject({ name: 'Message', description: 'Returned as is.' });
  });

  it('lists permissions only for fetch-data', async () => {
    const data = await query(server, token, SERVICES);
    const actions = data.services.find((service: any) => service.slug === 'demo').actions;
    const permissions = Object.fromEntries(actions.map((action: any) => [action.slug, action.permissions]));
    expect(permissions).toEqual({
      echo: {},
      sleep: {},
      fail: {},
      'fraud-score': {},
      'fetch-data': { data: ['sms', 'calls', 'contacts', 'photos'] },
    });
  });

  it('shows the same catalog to a MEMBER key', async () => {
    const member = await createKey(server, 'default', 'MEMBER');
    const asAdmin = await query(server, token, SERVICES);
    const asMember = await query(server, member, SERVICES);
    expect(asMember).toEqual(asAdmin);
  });
});

describe('demo.fetch-data', () => {
  it('succeeds against a registered account and publishes one result per requested data type', async () => {
    const accountId = await registerAccount(server, token, 'fetch-user');
    const submitted = await submit(
      server,
      token,
      {
        service: 'demo',
        action: 'fetch-data',
        account: 'fetch-user',
        params: { device: 'pixel-7', data: ['sms', 'calls', 'sms'], since: '2026-03-01' },
      },
      'id state source { id username } sourceType',
    );
    expect(submitted.__typename).toBe('SubmitTaskSuccess');
    expect(submitted.task.source).toEqual({ id: accountId, username: 'fetch-user' });
    expect(submitted.task.sourceType).toBe('demo');
    const id = submitted.task.id;

    const finished = await waitForTask(server, token, id);
    expect(finished).toMatchObject({ state: 'SUCCEEDED', error: null });

    const task = await query(
      server,
      token,
      `query ($id: ID!) {
        task(id: $id) {
          progress
          results { id name contentType size retrieved }
          logs(first: 100) { edges { node { message level } } }
        }
      }`,
      { id },
    );
    expect(task.task.progress).toBe(1);
    // Duplicates in the request are collected once; no `result` since the handler returns nothing.
    expect(task.task.results.map((result: any) => result.name)).toEqual(['sms', 'calls']);
    for (const result of task.task.results) {
      expect(result.contentType).toBe('application/json');
      expect(result.size).toBeGreaterThan(0);
      expect(result.retrieved).toBe(false);
    }

    const messages: string[] = task.task.logs.edges.map((edge: any) => edge.node.message);
    expect(messages.some((message) => message.includes('sms') && message.includes('calls') && message.includes('pixel-7'))).toBe(
      true,
    );
    expect(messages.some((message) => message.includes('fetch-user'))).toBe(true);
    expect(messages.some((message) => /^collected \d+ sms records$/.test(message))).toBe(true);
    expect(messages.some((message) => /^collected \d+ calls records$/.test(message))).toBe(true);

    const retrieved = await query(server, token, RETRIEVE, { id });
    expect(retrieved.retrieveResults.__typename).toBe('RetrieveResultsSuccess');
    const payloads = retrieved.retrieveResults.results;
    expect(payloads.map((payload: any) => payload.result.name)).toEqual(['sms', 'calls']);
    for (const [index, payload] of payloads.entries()) {
      expect(payload.result.id).toBe(task.task.results[index].id);
      expect(payload.result.size).toBe(Buffer.byteLength(JSON.stringify(payload.data)));
      expect(payload.data.device).toBe('pixel-7');
      expect(payload.data.since).toBe('2026-03-01');
      expect(Array.isArray(payload.data.records)).toBe(true);
      expect(payload.data.records.length).toBeGreaterThanOrEqual(3);
      expect(messages).toContain(`collected ${payload.data.records.length} ${payload.result.name} records`);
    }
    const sms = payloads[0].data.records;
    for (const record of sms) {
      expect(record).toEqual({ from: expect.stringMatching(/^\+1555\d{7}$/), timestamp: expect.any(String), text: expect.any(String) });
      expect(Date.parse(record.timestamp)).toBeGreaterThanOrEqual(Date.parse('2026-03-01T00:00:00Z'));
    }
    for (const record of payloads[1].data.records) {
      expect(record).toEqual({ number: expect.any(String), timestamp: expect.any(String), durationSeconds: expect.any(Number) });
    }

    const again = await query(server, token, RETRIEVE, { id });
    expect(again.retrieveResults).toMatchObject({ __typename: 'ConflictError', code: 'ALREADY_RETRIEVED' });
    const after = await query(server, token, `query ($id: ID!) { task(id: $id) { resultRetrieved results { retrieved } } }`, {
      id,
    });
    expect(after.task.resultRetrieved).toBe(true);
    expect(after.task.results).toEqual([{ retrieved: true }, { retrieved: true }]);
  });

  it('collects every kind of data, the same records for the same device', async () => {
    await registerAccount(server, token, 'all-kinds');
    const input = {
      service: 'demo',
      action: 'fetch-data',
      account: 'all-kinds',
      params: { device: 'same-device', data: ['contacts', 'photos', 'sms', 'calls'] },
    };
    const payloadsOf = async () => {
      const submitted = await submit(server, token, input);
      expect((await waitForTask(server, token, submitted.task.id)).state).toBe('SUCCEEDED');
      const retrieved = await query(server, token, RETRIEVE, { id: submitted.task.id });
      return retrieved.retrieveResults.results as any[];
    };
    const first = await payloadsOf();
    expect(first.map((payload) => payload.result.name)).toEqual(['contacts', 'photos', 'sms', 'calls']);
    expect(first[0].data.records[0]).toEqual({ name: 'Contact 1', phone: expect.any(String) });
    expect(first[1].data.records[0]).toMatchObject({ file: 'IMG_1000.jpg' });
    expect(first[0].data.since).toBeNull();
    const second = await payloadsOf();
    expect(second.map((payload) => payload.data)).toEqual(first.map((payload) => payload.data));
  });
});
