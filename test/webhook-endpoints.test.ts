import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EVERYONE } from '../src/domain/events.js';
import { WEBHOOK_LIMITS, webhookEventMask } from '../src/domain/webhooks.js';
import { openStorage, type Storage } from '../src/storage/index.js';
import {
  createKey,
  globalId,
  graphql,
  query,
  startServer,
  submit,
  temporaryDatabase,
  testStore,
  waitForTask,
  type TestServer,
} from './helpers.js';

// Webhook endpoints, signing secrets and the record of deliveries as the API offers them, through
// the real server and, for what no public path makes yet (deliveries), the store of either dialect.

const opened: Storage[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((storage) => storage.close()));
});

async function openTestStorage(): Promise<{ storage: Storage; location: string }> {
  const location = await temporaryDatabase();
  const storage = await openStorage(location);
  opened.push(storage);
  return { storage, location };
}

/** Runs statements on the database beside the store, as the deliverer would write its rows. */
async function execute(location: string, statements: string[]): Promise<Record<string, unknown>[]> {
  if (testStore === 'postgres') {
    // int8 (ids, timestamps) as numbers, as the store's own pool reads them.
    const types = {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    };
    const client = new pg.Client({ connectionString: location, types });
    await client.connect();
    try {
      let rows: Record<string, unknown>[] = [];
      for (const statement of statements) rows = (await client.query(statement)).rows;
      return rows;
    } finally {
      await client.end();
    }
  }
  const sqlite = new Database(location);
  try {
    sqlite.pragma('busy_timeout = 5000');
    let rows: Record<string, unknown>[] = [];
    for (const statement of statements) {
      const prepared = sqlite.prepare(statement);
      if (prepared.reader) rows = prepared.all() as Record<string, unknown>[];
      else prepared.run();
    }
    return rows;
  } finally {
    sqlite.close();
  }
}

const DAY = 24 * 60 * 60 * 1000;

describe('liveSigningSecrets', () => {
  it("creates the organisation's secret at first use and keeps it", async () => {
    const { storage } = await openTestStorage();
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
    expect(await storage.webhookEndpoints.organisationSigningSecret(organisation.id)).toBe(first);
  });

  it('is empty for an endpoint that does not exist, is disabled or deleted, or belongs to another organisation', async () => {
    const { storage } = await openTestStorage();
    const acme = await storage.records.findOrCreateOrganisation('acme', 0);
    const other = await storage.records.findOrCreateOrganisation('other', 0);
    expect(await storage.webhookEndpoints.liveSigningSecrets(acme.id, 12345, 1000)).toEqual([]);
    expect(await storage.webhookEndpoints.liveSigningSecrets(acme.id + 100, null, 1000)).toEqual([]);
    const endpoint = await storage.webhookEndpoints.createWebhookEndpoint(
      { organisationId: acme.id, url: 'https://example.com/', description: null, events: 1, secret: 'whsec_AAAA' },
      10,
      1000,
    );
    expect(await storage.webhookEndpoints.liveSigningSecrets(acme.id, endpoint!.id, 1000)).toEqual(['whsec_AAAA']);
    expect(await storage.webhookEndpoints.liveSigningSecrets(other.id, endpoint!.id, 1000)).toEqual([]);
    await storage.webhookEndpoints.updateWebhookEndpoint(acme.id, endpoint!.id, { enabled: false });
    expect(await storage.webhookEndpoints.liveSigningSecrets(acme.id, endpoint!.id, 1000)).toEqual([]);
    await storage.webhookEndpoints.updateWebhookEndpoint(acme.id, endpoint!.id, { enabled: true });
    expect(await storage.webhookEndpoints.liveSigningSecrets(acme.id, endpoint!.id, 1000)).toEqual(['whsec_AAAA']);
    await storage.webhookEndpoints.deleteWebhookEndpoint(acme.id, endpoint!.id, 2000);
    expect(await storage.webhookEndpoints.liveSigningSecrets(acme.id, endpoint!.id, 2000)).toEqual([]);
  });

  it('signs with the new and the previous secret for a day after a rotation, then with the new one alone', async () => {
    const { storage } = await openTestStorage();
    const store = storage.webhookEndpoints;
    const acme = await storage.records.findOrCreateOrganisation('acme', 0);
    const now = 10 * DAY;
    const endpoint = await store.createWebhookEndpoint(
      { organisationId: acme.id, url: 'https://example.com/', description: null, events: 1, secret: 'whsec_b2xk' },
      10,
      now,
    );
    await store.rotateWebhookEndpointSecret(acme.id, endpoint!.id, 'whsec_bmV3', now + WEBHOOK_LIMITS.previousSecretMs);
    expect(await store.liveSigningSecrets(acme.id, endpoint!.id, now)).toEqual(['whsec_bmV3', 'whsec_b2xk']);
    expect(await store.liveSigningSecrets(acme.id, endpoint!.id, now + DAY - 1)).toEqual(['whsec_bmV3', 'whsec_b2xk']);
    expect(await store.liveSigningSecrets(acme.id, endpoint!.id, now + DAY)).toEqual(['whsec_bmV3']);

    const original = (await store.organisationSigningSecret(acme.id))!;
    const rotated = await store.rotateOrganisationSigningSecret(acme.id, 'whsec_b3Jn', now + DAY);
    expect(rotated).toBe('whsec_b3Jn');
    expect(await store.liveSigningSecrets(acme.id, null, now + 1)).toEqual(['whsec_b3Jn', original]);
    expect(await store.liveSigningSecrets(acme.id, null, now + DAY)).toEqual(['whsec_b3Jn']);
  });
});

describe('deliveries in the store', () => {
  /** One task's message to an endpoint and to its own webhook, each with two attempts, as a deliverer records them. */
  async function withDeliveries() {
    const { storage, location } = await openTestStorage();
    const acme = await storage.records.findOrCreateOrganisation('acme', 0);
    const other = await storage.records.findOrCreateOrganisation('other', 0);
    const endpoint = (await storage.webhookEndpoints.createWebhookEndpoint(
      { organisationId: acme.id, url: 'https://hooks.example/', description: null, events: webhookEventMask(['COMPLETED']), secret: 'whsec_AAAA' },
      10,
      0,
    ))!;
    const message = (id: number, endpointId: number | null, url: string, status: string) =>
      `INSERT INTO webhook_messages (id, organisation_id, task_id, endpoint_id, url, event, task, status, attempts, next_attempt_at, lease_owner, lease_expires_at, date_created)
       VALUES (${id}, ${acme.id}, 7, ${endpointId ?? 'NULL'}, '${url}', 'COMPLETED', '{}', '${status}', 2, 5000, 'someone', 9000, 100)`;
    const delivery = (id: number, messageId: number, endpointId: number | null, attempt: number, outcome: string) =>
      `INSERT INTO webhook_deliveries (id, message_id, organisation_id, task_id, endpoint_id, attempt, outcome, http_status, duration_ms, error, next_attempt_at, date_created)
       VALUES (${id}, ${messageId}, ${acme.id}, 7, ${endpointId ?? 'NULL'}, ${attempt}, '${outcome}', 500, 12, 'HTTP 500', ${outcome === 'FAILED' ? 5000 : 'NULL'}, ${100 + id})`;
    await execute(location, [
      message(1, endpoint.id, 'https://hooks.example/', 'FAILED'),
      message(2, null, 'https://own.example/', 'PENDING'),
      delivery(1, 1, endpoint.id, 1, 'FAILED'),
      delivery(2, 2, null, 1, 'FAILED'),
      delivery(3, 1, endpoint.id, 2, 'FAILED'),
      delivery(4, 2, null, 2, 'FAILED'),
    ]);
    return { storage, location, acme, other, endpoint };
  }

  it("lists a task's and an endpoint's deliveries newest first, a page at a time, of its organisation only", async () => {
    const { storage, acme, other, endpoint } = await withDeliveries();
    const store = storage.webhookEndpoints;
    const firstPage = await store.listWebhookDeliveries(acme.id, { taskId: 7 }, { first: 3 });
    expect(firstPage.items.map((delivery) => delivery.id)).toEqual([4, 3, 2]);
    expect(firstPage.hasNextPage).toBe(true);
    const secondPage = await store.listWebhookDeliveries(acme.id, { taskId: 7 }, { first: 3, afterId: 2 });
    expect(secondPage).toMatchObject({ items: [{ id: 1 }], hasNextPage: false });
    expect(firstPage.items[0]).toMatchObject({
      messageId: 'msg_2',
      url: 'https://own.example/',
      event: 'COMPLETED',
      endpointId: null,
      attempt: 2,
      outcome: 'FAILED',
      httpStatus: 500,
      durationMs: 12,
      error: 'HTTP 500',
      nextAttemptAt: new Date(5000),
    });
    const byEndpoint = await store.listWebhookDeliveries(acme.id, { endpointId: endpoint.id }, { first: 10 });
    expect(byEndpoint.items.map((delivery) => [delivery.id, delivery.messageId])).toEqual([
      [3, 'msg_1'],
      [1, 'msg_1'],
    ]);
    expect((await store.listWebhookDeliveries(other.id, { taskId: 7 }, { first: 10 })).items).toEqual([]);
    expect(await store.getWebhookDeliveries(other.id, [1, 2])).toEqual([]);
  });

  it('redelivers a message that is not pending, in place, and refuses one that is', async () => {
    const { storage, location, acme, other } = await withDeliveries();
    const store = storage.webhookEndpoints;
    expect(await store.redeliverWebhook(other.id, 3, 50_000)).toEqual({ outcome: 'NOT_FOUND' });
    expect(await store.redeliverWebhook(acme.id, 999, 50_000)).toEqual({ outcome: 'NOT_FOUND' });
    expect(await store.redeliverWebhook(acme.id, 4, 50_000)).toEqual({ outcome: 'ALREADY_PENDING' });

    const redelivered = await store.redeliverWebhook(acme.id, 1, 50_000);
    expect(redelivered).toMatchObject({ outcome: 'PENDING_AGAIN', delivery: { id: 1, messageId: 'msg_1' } });
    const [message] = await execute(location, [
      'SELECT status, attempts, next_attempt_at AS "nextAttemptAt", lease_owner AS "leaseOwner", lease_expires_at AS "leaseExpiresAt" FROM webhook_messages WHERE id = 1',
    ]);
    // The same message, its attempts counting on, due now, and no one's.
    expect(message).toEqual({ status: 'PENDING', attempts: 2, nextAttemptAt: 50_000, leaseOwner: null, leaseExpiresAt: null });
    expect(await store.redeliverWebhook(acme.id, 3, 60_000)).toEqual({ outcome: 'ALREADY_PENDING' });
  });

  it('does not redeliver to a disabled endpoint until it is enabled again, which forgets why it was disabled', async () => {
    const { storage, location, acme, endpoint } = await withDeliveries();
    const store = storage.webhookEndpoints;
    // As the deliverer disables an endpoint that answered 410.
    await execute(location, [`UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'GONE', failing_since = 1000 WHERE id = ${endpoint.id}`]);
    expect(await store.redeliverWebhook(acme.id, 1, 50_000)).toEqual({ outcome: 'ENDPOINT_DISABLED' });
    const [message] = await execute(location, ['SELECT status FROM webhook_messages WHERE id = 1']);
    expect(message).toEqual({ status: 'FAILED' });
    const enabled = await store.updateWebhookEndpoint(acme.id, endpoint.id, { enabled: true });
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    expect((await store.redeliverWebhook(acme.id, 1, 50_000)).outcome).toBe('PENDING_AGAIN');
  });

  it("deleting an endpoint while a deliverer records an attempt to it: one of them wins, neither fails", async () => {
    const { storage, location, acme } = await openTestStorage().then(async ({ storage, location }) => ({
      storage,
      location,
      acme: await storage.records.findOrCreateOrganisation('acme', 0),
    }));
    for (let round = 0; round < 40; round++) {
      const endpoint = (await storage.webhookEndpoints.createWebhookEndpoint(
        { organisationId: acme.id, url: `https://hooks.example/${round}`, description: null, events: 1, secret: 'whsec_AAAA' },
        100,
        0,
      ))!;
      // Two tasks' messages: one being sent, and one waiting that a 410 to the first would fail too.
      const insert = (taskId: number, nextAttemptAt: number) =>
        `INSERT INTO webhook_messages (organisation_id, task_id, endpoint_id, url, event, task, status, attempts, next_attempt_at, date_created)
         VALUES (${acme.id}, ${taskId}, ${endpoint.id}, 'https://hooks.example/${round}', 'COMPLETED', '{}', 'PENDING', 0, ${nextAttemptAt}, 0)`;
      await execute(location, [insert(1000 + round, 0), insert(5000 + round, 1_000_000)]);
      const [message] = await storage.webhooks.claimDueMessages('deliverer', 10, 1, 60_000);
      expect(message?.endpointId).toBe(endpoint.id);
      const [attempt, deletion] = await Promise.allSettled([
        storage.webhooks.recordAttempt(
          {
            messageId: message!.id,
            owner: 'deliverer',
            body: '{}',
            outcome: 'FAILED',
            httpStatus: 500,
            durationMs: 1,
            error: 'HTTP 500',
            nextAttemptAt: 10_000,
            // Every other round the receiver answers 410, and the attempt disables the endpoint.
            gone: round % 2 === 1,
          },
          2,
          -1,
        ),
        storage.webhookEndpoints.deleteWebhookEndpoint(acme.id, endpoint.id, 3),
      ]);
      // The deletion always goes through; an attempt that PostgreSQL ended instead records nothing.
      expect(deletion.status === 'fulfilled' && deletion.value?.id, String((deletion as PromiseRejectedResult).reason)).toBe(endpoint.id);
      const rows = await execute(location, [`SELECT status FROM webhook_messages WHERE endpoint_id = ${endpoint.id}`]);
      // Whichever came first, nothing waits to be sent to a deleted endpoint.
      expect(rows.map((row) => row.status), `round ${round}: the attempt ${attempt.status}`).toEqual(['FAILED', 'FAILED']);
    }
  });

  it("deleting an endpoint fails its pending messages, and they are not redelivered", async () => {
    const { storage, location, acme, endpoint } = await withDeliveries();
    const store = storage.webhookEndpoints;
    await store.redeliverWebhook(acme.id, 1, 50_000);
    expect(await store.deleteWebhookEndpoint(acme.id, endpoint.id, 60_000)).toMatchObject({ id: endpoint.id });
    const rows = await execute(location, ['SELECT id, status, lease_owner AS "leaseOwner" FROM webhook_messages ORDER BY id']);
    // The task's own webhook (message 2) is not the endpoint's: it stays pending.
    expect(rows).toEqual([
      { id: 1, status: 'FAILED', leaseOwner: null },
      { id: 2, status: 'PENDING', leaseOwner: 'someone' },
    ]);
    expect(await store.redeliverWebhook(acme.id, 1, 70_000)).toEqual({ outcome: 'ENDPOINT_DELETED' });
    expect(await store.deleteWebhookEndpoint(acme.id, endpoint.id, 70_000)).toBeNull();
    // Its deliveries stay readable on their task.
    expect((await store.listWebhookDeliveries(acme.id, { taskId: 7 }, { first: 10 })).items).toHaveLength(4);
  });
});

const ENDPOINT_FIELDS = 'id url description events enabled disabledReason failingSince dateCreated';

const CREATE = `
  mutation ($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) {
      __typename
      ... on CreateWebhookEndpointSuccess { secret endpoint { ${ENDPOINT_FIELDS} } }
      ... on Error { code message }
      ... on ValidationError { field }
      ... on LimitExceededError { limit }
    }
  }`;

const UPDATE = `
  mutation ($id: ID!, $input: UpdateWebhookEndpointInput!) {
    updateWebhookEndpoint(id: $id, input: $input) {
      __typename
      ... on UpdateWebhookEndpointSuccess { endpoint { ${ENDPOINT_FIELDS} } }
      ... on Error { code message }
      ... on ValidationError { field }
    }
  }`;

const DELETE = `
  mutation ($id: ID!) {
    deleteWebhookEndpoint(id: $id) {
      __typename
      ... on DeleteWebhookEndpointSuccess { endpoint { id } }
      ... on Error { code message }
    }
  }`;

const ROTATE = `
  mutation ($id: ID!) {
    rotateWebhookSecret(id: $id) {
      __typename
      ... on RotateWebhookSecretSuccess { secret endpoint { id } }
      ... on Error { code message }
    }
  }`;

const LIST = `
  query ($first: Int, $after: String) {
    webhookEndpoints(first: $first, after: $after) {
      edges { node { id url } }
      pageInfo { hasNextPage endCursor }
    }
  }`;

describe('the webhooks API', () => {
  let server: TestServer;
  let admin: string;
  let member: string;

  beforeAll(async () => {
    server = await startServer();
    admin = await createKey(server, 'hooks', 'ADMIN');
    member = await createKey(server, 'hooks', 'MEMBER');
  });

  afterAll(async () => {
    await server.stop();
  });

  async function create(input: Record<string, unknown>, token = admin): Promise<Record<string, any>> {
    return (await query(server, token, CREATE, { input })).createWebhookEndpoint;
  }

  it('creates, lists, reads, updates, rotates and deletes endpoints, showing a secret only when made', async () => {
    const created = await create({ url: 'https://hooks.example/taskport', description: 'billing', events: ['COMPLETED', 'STARTED'] });
    expect(created).toMatchObject({
      __typename: 'CreateWebhookEndpointSuccess',
      endpoint: {
        url: 'https://hooks.example/taskport',
        description: 'billing',
        events: ['COMPLETED', 'STARTED'],
        enabled: true,
        disabledReason: null,
        failingSince: null,
      },
    });
    expect(created.secret).toMatch(/^whsec_[\d+/A-Za-z]+=*$/);
    const id = created.endpoint.id as string;

    const defaults = await create({ url: 'http://other.example:8080/hook?x=1' });
    expect(defaults.endpoint).toMatchObject({ events: ['COMPLETED'], description: null });
    expect(defaults.secret).not.toBe(created.secret);

    const read = await query(server, admin, `query ($id: ID!) { webhookEndpoint(id: $id) { id url } node(id: $id) { id } }`, { id });
    expect(read).toEqual({ webhookEndpoint: { id, url: 'https://hooks.example/taskport' }, node: { id } });

    const firstPage = await query(server, admin, LIST, { first: 1 });
    expect(firstPage.webhookEndpoints.edges.map((edge: any) => edge.node.id)).toEqual([id]);
    expect(firstPage.webhookEndpoints.pageInfo.hasNextPage).toBe(true);
    const secondPage = await query(server, admin, LIST, { first: 1, after: firstPage.webhookEndpoints.pageInfo.endCursor });
    expect(secondPage.webhookEndpoints.edges.map((edge: any) => edge.node.id)).toEqual([defaults.endpoint.id]);

    const updated = (await query(server, admin, UPDATE, { id, input: { url: 'https://hooks.example/v2', events: ['RESULT'], enabled: false } }))
      .updateWebhookEndpoint;
    expect(updated).toMatchObject({
      __typename: 'UpdateWebhookEndpointSuccess',
      endpoint: { id, url: 'https://hooks.example/v2', events: ['RESULT'], enabled: false, description: 'billing' },
    });
    const cleared = (await query(server, admin, UPDATE, { id, input: { description: null, enabled: true } })).updateWebhookEndpoint;
    expect(cleared.endpoint).toMatchObject({ description: null, enabled: true, url: 'https://hooks.example/v2' });

    const rotated = (await query(server, admin, ROTATE, { id })).rotateWebhookSecret;
    expect(rotated).toMatchObject({ __typename: 'RotateWebhookSecretSuccess', endpoint: { id } });
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);

    const deleted = (await query(server, admin, DELETE, { id })).deleteWebhookEndpoint;
    expect(deleted).toEqual({ __typename: 'DeleteWebhookEndpointSuccess', endpoint: { id } });
    expect((await query(server, admin, DELETE, { id })).deleteWebhookEndpoint).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    expect((await query(server, admin, ROTATE, { id })).rotateWebhookSecret.__typename).toBe('NotFoundError');
    expect((await query(server, admin, UPDATE, { id, input: { enabled: true } })).updateWebhookEndpoint.__typename).toBe('NotFoundError');
    expect((await query(server, admin, `query ($id: ID!) { webhookEndpoint(id: $id) { id } }`, { id })).webhookEndpoint).toBeNull();
    const remaining = await query(server, admin, LIST, {});
    expect(remaining.webhookEndpoints.edges.map((edge: any) => edge.node.id)).toEqual([defaults.endpoint.id]);
    await query(server, admin, DELETE, { id: defaults.endpoint.id });
  });

  it('never shows a secret but in the payloads of creation and rotation', async () => {
    const types = await query(
      server,
      admin,
      `{ endpoint: __type(name: "WebhookEndpoint") { fields { name } } delivery: __type(name: "WebhookDelivery") { fields { name } } }`,
    );
    for (const type of [types.endpoint, types.delivery]) {
      expect(type.fields.map((field: { name: string }) => field.name).filter((name: string) => /secret/i.test(name))).toEqual([]);
    }
  });

  it('refuses URLs that are not http(s), are malformed or too long, and bad event lists, naming the field', async () => {
    const tooLong = `https://hooks.example/${'a'.repeat(WEBHOOK_LIMITS.urlLength)}`;
    for (const url of ['ftp://hooks.example/', 'not a url', 'javascript:alert(1)', 'file:///etc/passwd', '', tooLong]) {
      expect(await create({ url }), url.slice(0, 40)).toMatchObject({ __typename: 'ValidationError', code: 'INVALID', field: 'url' });
    }
    expect(await create({ url: 'https://hooks.example/', events: [] })).toMatchObject({ __typename: 'ValidationError', field: 'events' });
    expect(await create({ url: 'https://hooks.example/', events: ['COMPLETED', 'COMPLETED'] })).toMatchObject({
      __typename: 'ValidationError',
      field: 'events',
    });
    const tooMany = await graphql(server, admin, CREATE, {
      input: { url: 'https://hooks.example/', events: ['COMPLETED', 'STARTED', 'PROGRESS', 'RESULT', 'COMPLETED'] },
    });
    expect(tooMany.body.errors?.[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');
    expect(await create({ url: 'https://hooks.example/', description: 'x'.repeat(WEBHOOK_LIMITS.descriptionLength + 1) })).toMatchObject({
      __typename: 'ValidationError',
      field: 'description',
    });
    const made = await create({ url: 'https://hooks.example/' });
    const refused = (await query(server, admin, UPDATE, { id: made.endpoint.id, input: { url: 'gopher://hooks.example/' } })).updateWebhookEndpoint;
    expect(refused).toMatchObject({ __typename: 'ValidationError', field: 'url' });
    expect((await query(server, admin, LIST, {})).webhookEndpoints.edges.map((edge: any) => edge.node.url)).toEqual(['https://hooks.example/']);
    await query(server, admin, DELETE, { id: made.endpoint.id });
  });

  it('refuses MEMBER keys for endpoints and secrets', async () => {
    const made = await create({ url: 'https://hooks.example/' });
    for (const [operation, variables] of [
      [CREATE, { input: { url: 'https://hooks.example/' } }],
      [UPDATE, { id: made.endpoint.id, input: { enabled: false } }],
      [DELETE, { id: made.endpoint.id }],
      [ROTATE, { id: made.endpoint.id }],
      [LIST, {}],
      ['{ webhookSigningSecret }', {}],
      ['mutation { rotateWebhookSigningSecret { secret } }', {}],
      ['mutation ($id: ID!) { redeliverWebhook(id: $id) { __typename } }', { id: globalId('WebhookDelivery', 1) }],
    ] as const) {
      const response = await graphql(server, member, operation, variables);
      expect(response.body.errors?.[0]?.extensions?.code, operation).toBe('FORBIDDEN');
    }
    // As a node, an endpoint is not there for a MEMBER key.
    const node = await query(server, member, `query ($id: ID!) { node(id: $id) { id } }`, { id: made.endpoint.id });
    expect(node.node).toBeNull();
    // Nor for another organisation's ADMIN key.
    const stranger = await createKey(server, 'strangers', 'ADMIN');
    const foreign = await query(server, stranger, `query ($id: ID!) { webhookEndpoint(id: $id) { id } node(id: $id) { id } }`, {
      id: made.endpoint.id,
    });
    expect(foreign).toEqual({ webhookEndpoint: null, node: null });
    expect((await query(server, stranger, DELETE, { id: made.endpoint.id })).deleteWebhookEndpoint.__typename).toBe('NotFoundError');
    await query(server, admin, DELETE, { id: made.endpoint.id });
  });

  it('allows at most WEBHOOK_LIMITS.endpointsPerOrganisation endpoints', async () => {
    const owner = await createKey(server, 'many-hooks', 'ADMIN');
    const made = await Promise.all(
      Array.from({ length: WEBHOOK_LIMITS.endpointsPerOrganisation }, (_, index) => create({ url: `https://hooks.example/${index}` }, owner)),
    );
    expect(made.every((result) => result.__typename === 'CreateWebhookEndpointSuccess')).toBe(true);
    expect(await create({ url: 'https://hooks.example/one-more' }, owner)).toMatchObject({
      __typename: 'LimitExceededError',
      limit: WEBHOOK_LIMITS.endpointsPerOrganisation,
    });
    // A deleted endpoint frees its place.
    await query(server, owner, DELETE, { id: made[0]!.endpoint.id });
    expect((await create({ url: 'https://hooks.example/one-more' }, owner)).__typename).toBe('CreateWebhookEndpointSuccess');
  });

  it("keeps the organisation's signing secret across reads until it is rotated", async () => {
    const owner = await createKey(server, 'signing', 'ADMIN');
    const first = (await query(server, owner, '{ webhookSigningSecret }')).webhookSigningSecret;
    expect(first).toMatch(/^whsec_/);
    expect((await query(server, owner, '{ webhookSigningSecret }')).webhookSigningSecret).toBe(first);
    const rotated = (await query(server, owner, 'mutation { rotateWebhookSigningSecret { secret } }')).rotateWebhookSigningSecret.secret;
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(first);
    expect((await query(server, owner, '{ webhookSigningSecret }')).webhookSigningSecret).toBe(rotated);
    // Each organisation has its own.
    expect((await query(server, admin, '{ webhookSigningSecret }')).webhookSigningSecret).not.toBe(rotated);
  });

  it("keeps a submission's webhook on its task, and refuses an invalid one without creating the task", async () => {
    const submitted = await submit(
      server,
      member,
      { service: 'demo', action: 'echo', params: { message: 'hi' }, webhook: { url: 'https://receiver.example/done', events: ['COMPLETED', 'PROGRESS'] } },
      'id webhook { url events }',
    );
    expect(submitted).toMatchObject({
      __typename: 'SubmitTaskSuccess',
      task: { webhook: { url: 'https://receiver.example/done', events: ['COMPLETED', 'PROGRESS'] } },
    });
    const byDefault = await submit(
      server,
      member,
      { service: 'demo', action: 'echo', params: { message: 'hi' }, webhook: { url: 'https://receiver.example/done' } },
      'id webhook { events }',
    );
    expect(byDefault.task.webhook).toEqual({ events: ['COMPLETED'] });
    const without = await submit(server, member, { service: 'demo', action: 'echo', params: { message: 'hi' } }, 'id webhook { url }');
    expect(without.task.webhook).toBeNull();
    // Ended before the next tests make endpoints, which would otherwise hear of them.
    for (const task of [submitted, byDefault, without]) await waitForTask(server, member, task.task.id);

    const countTasks = async () => (await query(server, member, '{ tasks(first: 500) { edges { node { id } } } }')).tasks.edges.length;
    const before = await countTasks();
    for (const url of ['ftp://receiver.example/', 'nonsense', `https://receiver.example/${'a'.repeat(WEBHOOK_LIMITS.urlLength)}`]) {
      const refused = await submit(server, member, { service: 'demo', action: 'echo', params: { message: 'hi' }, webhook: { url } });
      expect(refused, url.slice(0, 40)).toMatchObject({ __typename: 'ValidationError', code: 'INVALID', field: 'webhook.url' });
    }
    const noEvents = await submit(server, member, { service: 'demo', action: 'echo', params: { message: 'hi' }, webhook: { url: 'https://receiver.example/', events: [] } });
    expect(noEvents).toMatchObject({ __typename: 'ValidationError', field: 'webhook.events' });
    // In a batch, the input at fault is named.
    const batch = await query(
      server,
      member,
      `mutation ($inputs: [SubmitTaskInput!]!) {
        submitTasks(inputs: $inputs) { __typename ... on ValidationError { field index } }
      }`,
      {
        inputs: [
          { service: 'demo', action: 'echo', params: { message: 'a' } },
          { service: 'demo', action: 'echo', params: { message: 'b' }, webhook: { url: 'ftp://x.example/' } },
        ],
      },
    );
    expect(batch.submitTasks).toEqual({ __typename: 'ValidationError', field: 'webhook.url', index: 1 });
    expect(await countTasks()).toBe(before);
  });

  it("reads a task's deliveries (none yet) and refuses to redeliver what does not exist", async () => {
    const submitted = await submit(server, member, { service: 'demo', action: 'echo', params: { message: 'hi' } });
    // Ended before the endpoint exists: the endpoint hears nothing of it.
    await waitForTask(server, member, submitted.task.id);
    const deliveries = await query(
      server,
      member,
      `query ($id: ID!) { task(id: $id) { webhookDeliveries(first: 10) { edges { node { id } } pageInfo { hasNextPage endCursor } } } }`,
      { id: submitted.task.id },
    );
    expect(deliveries.task.webhookDeliveries).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });

    const made = await create({ url: 'https://hooks.example/' });
    const endpointDeliveries = await query(server, admin, `query ($id: ID!) { webhookEndpoint(id: $id) { deliveries { edges { node { id } } } } }`, {
      id: made.endpoint.id,
    });
    expect(endpointDeliveries.webhookEndpoint.deliveries.edges).toEqual([]);

    const REDELIVER = `
      mutation ($id: ID!) {
        redeliverWebhook(id: $id) {
          __typename
          ... on RedeliverWebhookSuccess { delivery { id } }
          ... on Error { code }
        }
      }`;
    for (const id of [globalId('WebhookDelivery', 123456), globalId('Task', 1), 'garbage']) {
      expect((await query(server, admin, REDELIVER, { id })).redeliverWebhook, id).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    }
    expect((await query(server, member, `query ($id: ID!) { node(id: $id) { id } }`, { id: globalId('WebhookDelivery', 123456) })).node).toBeNull();
    const negative = await graphql(server, member, `query ($id: ID!) { task(id: $id) { webhookDeliveries(first: -1) { edges { node { id } } } } }`, {
      id: submitted.task.id,
    });
    expect(negative.body.errors?.[0]?.extensions?.code).toBe('INVALID');
    await query(server, admin, DELETE, { id: made.endpoint.id });
  });

  it("shows a task's deliveries with their fields, the endpoint to ADMIN keys only, and redelivers one", async () => {
    const submitted = await submit(server, member, { service: 'demo', action: 'echo', params: { message: 'hi' } });
    // Ended before the endpoint exists: its only delivery is the one written below.
    await waitForTask(server, member, submitted.task.id);
    const taskId = Number(Buffer.from(submitted.task.id, 'base64').toString().split(':')[1]);
    const made = await create({ url: 'https://hooks.example/recorded' });
    const endpointId = Number(Buffer.from(made.endpoint.id, 'base64').toString().split(':')[1]);
    const [organisation] = await execute(server.database, [`SELECT organisation_id AS "organisationId" FROM tasks WHERE id = ${taskId}`]);
    const organisationId = organisation!.organisationId as number;
    // What no public path records yet without a receiver: a message that failed, and its attempt.
    const [message] = await execute(server.database, [
      `INSERT INTO webhook_messages (organisation_id, task_id, endpoint_id, url, event, task, body, status, attempts, next_attempt_at, date_created)
       VALUES (${organisationId}, ${taskId}, ${endpointId}, 'https://hooks.example/recorded', 'COMPLETED', '{}', '{}', 'FAILED', 1, 0, 1000)
       RETURNING id`,
    ]);
    const messageId = message!.id as number;
    const [delivery] = await execute(server.database, [
      `INSERT INTO webhook_deliveries (message_id, organisation_id, task_id, endpoint_id, attempt, outcome, http_status, duration_ms, error, next_attempt_at, date_created)
       VALUES (${messageId}, ${organisationId}, ${taskId}, ${endpointId}, 1, 'FAILED', 503, 40, 'HTTP 503', NULL, 2000)
       RETURNING id`,
    ]);
    const deliveryId = globalId('WebhookDelivery', delivery!.id as number);

    const DELIVERIES = `
      query ($id: ID!) {
        task(id: $id) {
          webhookDeliveries {
            edges { node { id webhookId event url endpoint { id } task { id } attempt outcome httpStatus durationMs error nextAttemptAt dateCreated } }
          }
        }
      }`;
    const seenByAdmin = (await query(server, admin, DELIVERIES, { id: submitted.task.id })).task.webhookDeliveries.edges;
    expect(seenByAdmin).toEqual([
      {
        node: {
          id: deliveryId,
          webhookId: `msg_${messageId}`,
          event: 'COMPLETED',
          url: 'https://hooks.example/recorded',
          endpoint: { id: made.endpoint.id },
          task: { id: submitted.task.id },
          attempt: 1,
          outcome: 'FAILED',
          httpStatus: 503,
          durationMs: 40,
          error: 'HTTP 503',
          nextAttemptAt: null,
          dateCreated: new Date(2000).toISOString(),
        },
      },
    ]);
    const seenByMember = (await query(server, member, DELIVERIES, { id: submitted.task.id })).task.webhookDeliveries.edges;
    expect(seenByMember[0].node).toMatchObject({ id: deliveryId, endpoint: null });
    expect((await query(server, member, `query ($id: ID!) { node(id: $id) { id } }`, { id: deliveryId })).node).toEqual({ id: deliveryId });
    const endpointDeliveries = await query(server, admin, `query ($id: ID!) { webhookEndpoint(id: $id) { deliveries { edges { node { id } } } } }`, {
      id: made.endpoint.id,
    });
    expect(endpointDeliveries.webhookEndpoint.deliveries.edges).toEqual([{ node: { id: deliveryId } }]);
    // Another organisation sees none of it.
    const stranger = await createKey(server, 'strangers', 'ADMIN');
    expect((await query(server, stranger, `query ($id: ID!) { node(id: $id) { id } }`, { id: deliveryId })).node).toBeNull();

    // Deliverers of every process hear that a message is due.
    const due = new Promise<void>((resolve) => {
      const stop = server.taskport.engine.events.listen('webhooksDue', EVERYONE, () => {
        stop();
        resolve();
      });
    });
    const redelivered = await query(
      server,
      admin,
      `mutation ($id: ID!) { redeliverWebhook(id: $id) { __typename ... on RedeliverWebhookSuccess { delivery { id webhookId } } ... on Error { code } } }`,
      { id: deliveryId },
    );
    expect(redelivered.redeliverWebhook).toEqual({ __typename: 'RedeliverWebhookSuccess', delivery: { id: deliveryId, webhookId: `msg_${messageId}` } });
    await due;
    const refusedToStranger = await query(server, stranger, `mutation ($id: ID!) { redeliverWebhook(id: $id) { __typename } }`, { id: deliveryId });
    expect(refusedToStranger.redeliverWebhook.__typename).toBe('NotFoundError');
    await query(server, admin, DELETE, { id: made.endpoint.id });
  });
});
