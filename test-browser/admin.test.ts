import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createKey, graphql, query, submit, waitForTask } from '../test/helpers.js';
import { openPage, SCREENSHOTS, signedIn, signIn, useDashboard } from './harness.js';

const harness = useDashboard();

const VIEWER = 'query { viewer { organisation retrievalProtocol key { name role } } }';

/** Signs in with the bootstrap ADMIN key and opens an admin page through the sub-navigation. */
async function openAdmin(page: Page, link: string): Promise<void> {
  await signIn(harness, page, harness.server.adminToken, '/dashboard/admin');
  await signedIn(page);
  await page.getByRole('navigation', { name: 'Admin pages' }).getByRole('link', { name: link }).click();
  await page.getByRole('heading', { level: 1, name: link }).waitFor({ timeout: 10_000 });
}

/** The text of the box of a once-shown value, read from its labelled field. */
async function shownOnce(page: Page, label: string): Promise<string> {
  const field = page.locator('.shown-once').getByLabel(label, { exact: true });
  await field.waitFor({ timeout: 10_000 });
  return field.inputValue();
}

describe('the admin pages in Chromium', () => {
  it('refuses a MEMBER key: no Admin link, a clear refusal at a direct URL, and no admin data requested', async () => {
    const { server } = harness;
    await createKey(server, 'default', 'ADMIN');
    const member = await createKey(server, 'default', 'MEMBER');
    const opened = await openPage(harness);
    const { page } = opened;
    const bodies: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/graphql') bodies.push(request.postData() ?? '');
    });
    await signIn(harness, page, member, '/dashboard/admin/keys');
    await signedIn(page);
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 10_000 });
    expect(await alert.textContent()).toContain('needs an ADMIN key');
    expect(await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Admin' }).count()).toBe(0);
    expect(await page.getByRole('navigation', { name: 'Admin pages' }).count()).toBe(0);
    expect(await page.getByRole('table').count()).toBe(0);
    expect(await page.locator('main').textContent()).not.toContain('default-ADMIN');

    // A reload keeps the tab's key and still refuses.
    await page.reload();
    await signedIn(page);
    await page.getByRole('alert').waitFor({ timeout: 10_000 });
    expect(await page.locator('main').textContent()).not.toContain('bootstrap');
    expect(bodies.length).toBeGreaterThan(0);
    expect(bodies.filter((body) => /apiKeys|allocations|schedules|webhookEndpoints/.test(body))).toEqual([]);
    await page.screenshot({ path: `${SCREENSHOTS}/admin-member-refused.png`, fullPage: true });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('creates a MEMBER key whose token is shown once and works, then revokes it', async () => {
    const { server } = harness;
    const opened = await openPage(harness);
    const { page } = opened;
    await openAdmin(page, 'API keys');
    await page.getByRole('navigation', { name: 'Admin pages' }).getByRole('link', { name: 'API keys' }).waitFor();
    expect(
      await page.getByRole('navigation', { name: 'Admin pages' }).getByRole('link', { name: 'API keys' }).getAttribute('aria-current'),
    ).toBe('page');

    // Not JSON: refused before the server is asked.
    await page.getByLabel('Name', { exact: true }).fill('reporting');
    await page.getByLabel('Permissions (JSON, optional)').fill('{ demo: ');
    await page.getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent(), { timeout: 10_000 }).toContain('Not valid JSON');

    // JSON the server refuses: its typed error is shown.
    await page.getByLabel('Permissions (JSON, optional)').fill('{ "nosuchservice": "*" }');
    await page.getByRole('button', { name: 'Create key' }).click();
    // The server names the field at fault; the page adds it in brackets.
    await expect.poll(() => page.getByRole('alert').first().textContent(), { timeout: 10_000 }).toMatch(/nosuchservice.*\(permissions\)$/);
    expect(await page.locator('.shown-once').count()).toBe(0);

    await page.getByLabel('Permissions (JSON, optional)').fill('{ "demo": { "echo": {} } }');
    await page.getByLabel('Role').selectOption('MEMBER');
    await page.getByRole('button', { name: 'Create key' }).click();
    const token = await shownOnce(page, 'Token');
    expect(token.length).toBeGreaterThan(16);
    expect(await page.locator('.shown-once').textContent()).toContain('will not be shown again');
    const row = page.getByRole('row', { name: /^reporting/ });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('demo: echo');
    expect(await row.textContent()).toContain('MEMBER');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-keys.png`, fullPage: true });

    const viewer = await query(server, token, VIEWER);
    expect(viewer.viewer.key).toEqual({ name: 'reporting', role: 'MEMBER' });

    // Hidden once dismissed: the page keeps no copy.
    await page.getByRole('button', { name: 'I have copied it; hide it' }).click();
    expect(await page.locator('.shown-once').count()).toBe(0);
    expect(await page.content()).not.toContain(token);

    await row.getByRole('button', { name: 'Revoke reporting' }).click();
    await row.getByRole('button', { name: 'Yes, revoke reporting' }).click();
    await expect.poll(() => row.getByRole('cell', { name: 'Revoked' }).count(), { timeout: 10_000 }).toBe(1);
    const refused = await graphql(server, token, VIEWER);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it("changes a key's name and rate limits, then puts them back to the server's defaults", async () => {
    const { server } = harness;
    await query(server, server.adminToken, 'mutation { createApiKey(input: { name: "nightly-job", role: MEMBER }) { __typename } }');
    const opened = await openPage(harness);
    const { page } = opened;
    await openAdmin(page, 'API keys');
    const form = page.getByRole('region', { name: 'Change a key' });
    await form.getByLabel('Key', { exact: true }).selectOption({ label: 'nightly-job (MEMBER)' });
    await expect.poll(() => form.getByLabel('New name').inputValue(), { timeout: 10_000 }).toBe('nightly-job');
    await form.getByLabel('New name').fill('batch-job');
    await form.getByLabel(/^Set its own/).check();
    const submitTier = form.getByRole('group', { name: 'Submit operations' });
    await submitTier.getByLabel('Operations').fill('10');
    await submitTier.getByLabel('per seconds').fill('60');
    await form.getByRole('button', { name: 'Save the key' }).click();
    const row = page.getByRole('row', { name: /^batch-job/ });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('Submit: 10 per 60 s');
    const keyOf = async (name: string) =>
      (await query(server, server.adminToken, 'query { apiKeys { name rateLimits { submit { isDefault windows { points perSeconds } } } } }')).apiKeys.find(
        (key: { name: string }) => key.name === name,
      );
    expect(await keyOf('batch-job')).toEqual({
      name: 'batch-job',
      rateLimits: { submit: { isDefault: false, windows: [{ points: 10, perSeconds: 60 }] } },
    });
    await page.screenshot({ path: `${SCREENSHOTS}/admin-keys-changed.png`, fullPage: true });

    await form.getByLabel(/^Back to the server's defaults/).check();
    await form.getByRole('button', { name: 'Save the key' }).click();
    await expect.poll(async () => (await keyOf('batch-job'))?.rateLimits.submit.isDefault, { timeout: 10_000 }).toBe(true);
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toContain('(default)');
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('creates an allocation, mints an execution URL shown once, and deletes the allocation', async () => {
    const { server } = harness;
    const opened = await openPage(harness);
    const { page } = opened;
    await openAdmin(page, 'Allocations');
    await page.getByLabel('Name', { exact: true }).fill('checkout');
    await page.getByLabel('Real-time action').selectOption('demo.echo');
    await page.getByLabel('Instances (1 to 64)').fill('2');
    await page.getByRole('button', { name: 'Create allocation' }).click();
    const row = page.getByRole('row', { name: /^checkout/ });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('demo.echo');
    const listed = (await query(server, server.adminToken, 'query { allocations { id name instances action } }')).allocations;
    expect(listed).toContainEqual(expect.objectContaining({ name: 'checkout', instances: 2, action: 'echo' }));

    const mint = async () => {
      await row.getByRole('button', { name: 'Mint an execution URL for checkout' }).click();
      const url = await shownOnce(page, 'Execution URL');
      const token = await shownOnce(page, 'Execution token');
      await page.getByRole('button', { name: 'I have copied it; hide it' }).click();
      return { url, token };
    };
    const call = ({ url, token }: { url: string; token: string }) =>
      fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: 'from the test' }),
      });

    const first = await mint();
    expect(first.url.startsWith(`${harness.origin}/execute/`), first.url).toBe(true);
    const answered = await call(first);
    expect(answered.status, await answered.clone().text()).toBe(200);
    expect(JSON.stringify(await answered.json())).toContain('from the test');

    // The minted token is listed on the page (the API lists none), and revoking it there stops it.
    const tokens = page.getByRole('region', { name: 'Tokens minted on this page' });
    await tokens.getByRole('button', { name: /^Revoke token / }).click();
    await tokens.getByRole('button', { name: 'Yes, revoke the token' }).click();
    await expect.poll(() => tokens.getByRole('cell', { name: 'Revoked', exact: true }).count(), { timeout: 10_000 }).toBe(1);
    expect((await call(first)).status).toBe(401);

    const second = await mint();
    expect(second.token).not.toBe(first.token);
    expect((await call(second)).status).toBe(200);
    await page.screenshot({ path: `${SCREENSHOTS}/admin-allocations.png`, fullPage: true });

    await row.getByRole('button', { name: 'Delete checkout' }).click();
    await row.getByRole('button', { name: 'Yes, delete checkout' }).click();
    await expect.poll(() => page.getByRole('row', { name: /^checkout/ }).count(), { timeout: 10_000 }).toBe(0);
    const after = (await query(server, server.adminToken, 'query { allocations { name } }')).allocations;
    expect(after).not.toContainEqual(expect.objectContaining({ name: 'checkout' }));
    expect((await call(second)).ok).toBe(false);
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it("sets the organisation's retrieval protocol", async () => {
    const { server } = harness;
    const before = (await query(server, server.adminToken, VIEWER)).viewer.retrievalProtocol;
    const next = before === 'STORE' ? 'CHANNEL' : 'STORE';
    const opened = await openPage(harness);
    const { page } = opened;
    await openAdmin(page, 'Retrieval protocol');
    await expect.poll(() => page.getByTestId('current-protocol').textContent(), { timeout: 10_000 }).toContain(`(${before})`);
    await page.getByRole('radio', { name: new RegExp(`\\(${next}\\)`) }).check();
    await page.getByRole('button', { name: 'Set the retrieval protocol' }).click();
    await expect.poll(() => page.getByTestId('current-protocol').textContent(), { timeout: 10_000 }).toContain(`(${next})`);
    await page.screenshot({ path: `${SCREENSHOTS}/admin-retrieval.png`, fullPage: true });
    expect((await query(server, server.adminToken, VIEWER)).viewer.retrievalProtocol).toBe(next);
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('creates a schedule, lists its next runs, and pauses it', async () => {
    const { server } = harness;
    const opened = await openPage(harness);
    const { page } = opened;
    await openAdmin(page, 'Schedules');
    await page.getByLabel('Name', { exact: true }).fill('nightly-echo');
    await page.getByLabel('Cron expression').fill('every night');
    await page.getByRole('button', { name: 'Create schedule' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent(), { timeout: 10_000 }).toContain('(cron)');
    expect(await page.getByRole('row', { name: /^nightly-echo/ }).count()).toBe(0);
    await page.getByLabel('Cron expression').fill('0 3 * * *');
    await page.getByLabel('Time zone (IANA)').fill('Europe/Paris');
    await page.getByLabel('Service.action').selectOption('demo.echo');
    await page.getByLabel('Parameters (JSON object, optional)').fill('{ "message": "good night" }');
    await page.getByRole('button', { name: 'Create schedule' }).click();
    const row = page.getByRole('row', { name: /^nightly-echo/ });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('Europe/Paris');
    expect(await row.getByRole('listitem').count()).toBe(3);
    // In the schedule's own time zone, as its cron reads.
    expect(await row.getByRole('listitem').first().textContent()).toContain('03:00:00');
    expect(await row.getByRole('cell', { name: 'Active', exact: true }).count()).toBe(1);

    await row.getByRole('button', { name: 'Pause nightly-echo' }).click();
    await expect.poll(() => row.getByRole('cell', { name: 'Paused', exact: true }).count(), { timeout: 10_000 }).toBe(1);
    await row.getByRole('button', { name: 'Resume nightly-echo' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: `${SCREENSHOTS}/admin-schedules.png`, fullPage: true });
    const listed = await query(server, server.adminToken, 'query { schedules { edges { node { name paused timezone cron nextRuns(count: 3) } } } }');
    const schedule = listed.schedules.edges.map((edge: { node: Record<string, unknown> }) => edge.node).find((node: { name: string }) => node.name === 'nightly-echo');
    expect(schedule).toMatchObject({ paused: true, timezone: 'Europe/Paris', cron: '0 3 * * *' });
    expect(schedule.nextRuns).toHaveLength(3);

    // Run now, even while paused: the schedule's page lists the task it created.
    await row.getByRole('button', { name: 'Run nightly-echo now' }).click();
    await expect.poll(() => page.getByText('nightly-echo submitted a task now.').count(), { timeout: 10_000 }).toBe(1);
    await row.getByRole('link', { name: 'nightly-echo' }).click();
    await page.getByRole('heading', { level: 1, name: 'Schedule nightly-echo' }).waitFor({ timeout: 10_000 });
    const tasks = page.getByRole('region', { name: 'Tasks it created' });
    await expect.poll(() => tasks.getByRole('row').count(), { timeout: 10_000 }).toBe(2);
    expect(await tasks.getByRole('row').nth(1).textContent()).toMatch(/Pending|Processing|Succeeded/);

    await page.getByText('Change the schedule').click();
    await page.getByLabel('Cron expression').fill('30 4 * * *');
    await page.getByRole('button', { name: 'Save the schedule' }).click();
    await expect.poll(() => page.getByRole('listitem').first().textContent(), { timeout: 10_000 }).toContain('04:30:00');
    await page.screenshot({ path: `${SCREENSHOTS}/admin-schedule.png`, fullPage: true });
    const changed = await query(server, server.adminToken, 'query { schedules { edges { node { name cron paused } } } }');
    expect(changed.schedules.edges.map((edge: { node: unknown }) => edge.node)).toContainEqual({ name: 'nightly-echo', cron: '30 4 * * *', paused: true });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it("creates a webhook endpoint whose secret is shown once, and lists a task's delivery as Succeeded", async () => {
    const { server } = harness;
    const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
    const receiver: Server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        received.push({ headers: request.headers, body });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    const opened = await openPage(harness);
    const { page } = opened;
    try {
      await openAdmin(page, 'Webhook endpoints');
      await page.getByLabel('URL', { exact: true }).fill(receiverUrl);
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      const secret = await shownOnce(page, 'Signing secret');
      expect(secret).toMatch(/^whsec_/);
      const row = page.getByRole('row', { name: new RegExp(`^${receiverUrl.replace(/[.]/g, '\\.')}`) });
      await row.waitFor({ timeout: 10_000 });
      expect(await row.textContent()).toContain('Enabled');
      expect(await row.textContent()).toContain('COMPLETED');

      const task = (await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'hooked' } })).task;
      await waitForTask(server, server.adminToken, task.id);
      await expect.poll(() => received.length, { timeout: 15_000 }).toBeGreaterThan(0);

      await row.getByRole('link', { name: 'Deliveries' }).click();
      await page.getByRole('heading', { level: 1, name: `Deliveries to ${receiverUrl}` }).waitFor({ timeout: 10_000 });
      const delivery = page.getByRole('row', { name: /COMPLETED/ }).first();
      await delivery.waitFor({ timeout: 15_000 });
      expect(await delivery.getByRole('cell', { name: 'Succeeded' }).count()).toBe(1);
      expect(await delivery.textContent()).toContain('204');
      await page.screenshot({ path: `${SCREENSHOTS}/admin-webhook-deliveries.png`, fullPage: true });

      await delivery.getByRole('button', { name: /^Redeliver attempt/ }).click();
      await expect.poll(() => received.length, { timeout: 15_000 }).toBeGreaterThan(1);
      expect(received[1]?.headers['webhook-id']).toBe(received[0]?.headers['webhook-id']);

      // Disabled, the endpoint is sent nothing: a redelivery is refused with the server's reason.
      await page.getByRole('link', { name: 'Back to the webhook endpoints' }).click();
      await row.getByRole('button', { name: /^Disable / }).click();
      await expect.poll(() => row.textContent(), { timeout: 10_000 }).toContain('Disabled by an admin');
      const listed = await query(server, server.adminToken, 'query { webhookEndpoints { edges { node { url enabled disabledReason } } } }');
      expect(listed.webhookEndpoints.edges.map((edge: { node: unknown }) => edge.node)).toContainEqual({
        url: receiverUrl,
        enabled: false,
        disabledReason: null,
      });
      await row.getByRole('link', { name: /^Deliveries/ }).click();
      await page.getByRole('button', { name: /^Redeliver attempt/ }).first().click();
      await expect.poll(() => page.getByRole('alert').first().textContent(), { timeout: 10_000 }).toMatch(/^Redelivering attempt \d+: ./);
      await page.screenshot({ path: `${SCREENSHOTS}/admin-webhook-refused.png`, fullPage: true });

      await page.getByText("Change the endpoint's URL, description or events").click();
      await page.getByLabel(/^Started/).check();
      await page.getByLabel('Description').fill('the test receiver');
      await page.getByRole('button', { name: 'Save the endpoint' }).click();
      await expect.poll(() => page.getByText('The endpoint is saved').count(), { timeout: 10_000 }).toBe(1);
      const saved = await query(server, server.adminToken, 'query { webhookEndpoints { edges { node { url events description } } } }');
      expect(saved.webhookEndpoints.edges.map((edge: { node: unknown }) => edge.node)).toContainEqual({
        url: receiverUrl,
        events: expect.arrayContaining(['COMPLETED', 'STARTED']),
        description: 'the test receiver',
      });
      expect(opened.fromOtherOrigins()).toEqual([]);
    } finally {
      await opened.close();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it("shows the organisation's signing secret only when asked, and rotates it", async () => {
    const { server } = harness;
    const opened = await openPage(harness);
    const { page } = opened;
    const bodies: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/graphql') bodies.push(request.postData() ?? '');
    });
    await openAdmin(page, 'Webhook endpoints');
    expect(bodies.filter((body) => body.includes('webhookSigningSecret'))).toEqual([]);
    await page.getByRole('button', { name: 'Show the signing secret' }).click();
    const field = page.getByLabel('Organisation signing secret', { exact: true });
    await field.waitFor({ timeout: 10_000 });
    const before = (await query(server, server.adminToken, 'query { webhookSigningSecret }')).webhookSigningSecret;
    expect(await field.inputValue()).toBe(before);

    await page.getByRole('button', { name: 'Rotate the signing secret' }).click();
    await page.getByRole('button', { name: 'Yes, rotate it' }).click();
    await expect.poll(() => field.inputValue(), { timeout: 10_000 }).not.toBe(before);
    const rotated = await field.inputValue();
    expect(rotated).toMatch(/^whsec_/);
    expect((await query(server, server.adminToken, 'query { webhookSigningSecret }')).webhookSigningSecret).toBe(rotated);
    await page.screenshot({ path: `${SCREENSHOTS}/admin-signing-secret.png`, fullPage: true });
    await page.getByRole('button', { name: 'Hide the signing secret' }).click();
    expect(await page.content()).not.toContain(rotated);
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });
});

describe('admin addresses that name nothing', () => {
  it('say so in an alert, never a blank page', async () => {
    const opened = await openPage(harness);
    const { page } = opened;
    await signIn(harness, page, harness.server.adminToken, '/dashboard/admin/webhooks/not-an-id');
    await signedIn(page);
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.first().textContent(), { timeout: 10_000 }).toContain('There is no webhook endpoint not-an-id');
    await page.goto(`${harness.origin}/dashboard/admin/schedules/${encodeURIComponent('U2NoZWR1bGU6OTk5OTk=')}`);
    await expect.poll(() => alert.first().textContent(), { timeout: 10_000 }).toContain('There is no schedule U2NoZWR1bGU6OTk5OTk=');
    await page.goto(`${harness.origin}/dashboard/admin/no-such-page`);
    await expect.poll(() => alert.first().textContent(), { timeout: 10_000 }).toContain('The admin pages have no page at this address.');
    await page.screenshot({ path: `${SCREENSHOTS}/admin-not-found.png`, fullPage: true });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });
});

describe('the admin pages at phone width, by keyboard', () => {
  it('fit 390 px without the page scrolling sideways, and a revoke asks first and can be withdrawn with Escape', async () => {
    const { server } = harness;
    await query(
      server,
      server.adminToken,
      'mutation { createApiKey(input: { name: "phone-check", role: MEMBER }) { __typename } }',
    );
    const opened = await openPage(harness, { width: 390, height: 844 });
    const { page } = opened;
    await openAdmin(page, 'API keys');
    const row = page.getByRole('row', { name: /^phone-check/ });
    await row.waitFor({ timeout: 10_000 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);

    const revoke = row.getByRole('button', { name: 'Revoke phone-check' });
    await revoke.focus();
    await page.keyboard.press('Enter');
    const confirm = row.getByRole('button', { name: 'Yes, revoke phone-check' });
    await expect.poll(() => confirm.evaluate((element) => element === document.activeElement), { timeout: 10_000 }).toBe(true);
    await page.keyboard.press('Escape');
    await expect.poll(() => revoke.evaluate((element) => element === document.activeElement), { timeout: 10_000 }).toBe(true);
    expect(await confirm.count()).toBe(0);
    expect(await row.getByRole('cell', { name: 'Active', exact: true }).count()).toBe(1);

    for (const link of ['Allocations', 'Schedules', 'Webhook endpoints', 'Retrieval protocol']) {
      await page.getByRole('navigation', { name: 'Admin pages' }).getByRole('link', { name: link }).click();
      await page.getByRole('heading', { level: 1, name: link }).waitFor({ timeout: 10_000 });
      expect(await overflow(), link).toBeLessThanOrEqual(0);
    }
    await page.screenshot({ path: `${SCREENSHOTS}/admin-phone.png`, fullPage: true });
    const keys = (await query(server, server.adminToken, 'query { apiKeys { name revoked } }')).apiKeys;
    expect(keys).toContainEqual({ name: 'phone-check', revoked: false });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });
});
