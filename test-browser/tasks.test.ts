import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createKey, query, submit, waitForTask } from '../test/helpers.js';
import { openPage, SCREENSHOTS, signIn, signedIn, useDashboard, type OpenedPage } from './harness.js';

const harness = useDashboard();

let sessions = 0;
/** A session of its own for each test, so that a filter on it lists only that test's tasks. */
const newSession = (name: string) => `${name}-${++sessions}-${Date.now()}`;

async function submitBatch(inputs: Record<string, unknown>[]): Promise<{ poll: string; ids: string[] }> {
  const { server } = harness;
  const data = await query(
    server,
    server.adminToken,
    `mutation ($inputs: [SubmitTaskInput!]!) {
      submitTasks(inputs: $inputs) { __typename ... on SubmitTasksSuccess { poll tasks { id } } ... on Error { code message } }
    }`,
    { inputs },
  );
  expect(data.submitTasks.__typename, JSON.stringify(data.submitTasks)).toBe('SubmitTasksSuccess');
  return { poll: data.submitTasks.poll, ids: data.submitTasks.tasks.map((task: { id: string }) => task.id) };
}

async function tasksOf(session: string): Promise<Array<{ id: string; state: string; retries: number }>> {
  const { server } = harness;
  const data = await query(
    server,
    server.adminToken,
    `query ($session: String!) { tasks(filter: { session: $session }, first: 100) { edges { node { id state retries } } } }`,
    { session },
  );
  return data.tasks.edges.map((edge: { node: { id: string; state: string; retries: number } }) => edge.node);
}

/** Signs in with the admin key (or `key`) straight onto the Tasks page at `search`. */
async function openTasks(search = '', key = harness.server.adminToken, viewport?: { width: number; height: number }): Promise<OpenedPage> {
  const opened = await openPage(harness, viewport);
  await signIn(harness, opened.page, key, `/dashboard/tasks${search}`);
  await signedIn(opened.page);
  await opened.page.getByRole('heading', { name: 'Tasks', exact: true }).waitFor({ timeout: 10_000 });
  return opened;
}

const row = (page: Page, id: string) => page.locator(`tr[data-task-id="${id}"]`);
const listedIds = (page: Page) =>
  page.locator('tbody tr[data-task-id]').evaluateAll((rows) => rows.map((element) => element.getAttribute('data-task-id')));

describe('the Tasks page', () => {
  it('lists a submitted task and follows its state live, without a reload', async () => {
    const { server } = harness;
    const session = newSession('live');
    const { task } = await submit(server, server.adminToken, { service: 'demo', action: 'sleep', params: { ms: 5000 }, session });
    const opened = await openTasks();
    const { page } = opened;
    const stateCell = row(page, task.id).locator('.state');
    await stateCell.waitFor({ timeout: 10_000 });
    expect(['Pending', 'Processing']).toContain((await stateCell.textContent())?.trim());
    await expect.poll(() => page.getByText('Live', { exact: true }).isVisible(), { timeout: 10_000 }).toBe(true);
    const requestsBefore = opened.requested.filter((url) => url.includes('/dashboard/tasks')).length;

    await expect.poll(async () => (await stateCell.textContent())?.trim(), { timeout: 15_000 }).toBe('Succeeded');
    expect(await row(page, task.id).getByRole('cell').nth(6).locator('time').count()).toBe(1);
    // The page was not loaded again: the change came over the subscription.
    expect(opened.requested.filter((url) => url.includes('/dashboard/tasks')).length).toBe(requestsBefore);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-tasks.png`, fullPage: true });

    // Paused, a change is not applied; resuming shows it.
    const second = await submit(server, server.adminToken, { service: 'demo', action: 'sleep', params: { ms: 4000 }, session });
    await page.goto(`${harness.origin}/dashboard/tasks?session=${session}`);
    await signedIn(page);
    const secondState = row(page, second.task.id).locator('.state');
    await secondState.waitFor({ timeout: 10_000 });
    const pause = page.getByRole('button', { name: 'Pause live updates' });
    await pause.click();
    expect(await pause.getAttribute('aria-pressed')).toBe('true');
    await page.getByText('Paused', { exact: true }).waitFor({ timeout: 10_000 });
    const pausedState = (await secondState.textContent())?.trim();
    await waitForTask(server, server.adminToken, second.task.id);
    await page.waitForTimeout(500);
    if (pausedState !== 'Succeeded') expect((await secondState.textContent())?.trim()).toBe(pausedState);
    await pause.click();
    expect(await pause.getAttribute('aria-pressed')).toBe('false');
    await expect.poll(async () => (await secondState.textContent())?.trim(), { timeout: 10_000 }).toBe('Succeeded');
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-live-resumed.png` });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('reads its filter from the URL, keeps it over a reload, and shows it in the form', async () => {
    const { server } = harness;
    const session = newSession('filter');
    const failed = [];
    for (let index = 0; index < 2; index++) {
      failed.push((await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {}, maxAttempts: 1, session })).task.id);
    }
    const echoed = (await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'x' }, session })).task.id;
    const elsewhere = (await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {}, maxAttempts: 1 })).task.id;
    for (const id of [...failed, echoed, elsewhere]) await waitForTask(server, server.adminToken, id);

    const opened = await openTasks(`?state=FAILED&service=demo&type=fail&session=${session}`);
    const { page } = opened;
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual([...failed].reverse());
    await page.reload();
    await signedIn(page);
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual([...failed].reverse());

    const form = page.getByRole('form', { name: 'Filter tasks' });
    expect(await form.getByLabel('Failed').isChecked()).toBe(true);
    expect(await form.getByLabel('Succeeded').isChecked()).toBe(false);
    expect(await form.getByLabel('Service', { exact: true }).inputValue()).toBe('demo');
    expect(await form.getByLabel('Action', { exact: true }).inputValue()).toBe('fail');
    expect(await form.getByLabel('Session', { exact: true }).inputValue()).toBe(session);

    // Editing the form writes the URL: Succeeded too brings the echo task in.
    await form.getByLabel('Succeeded').check();
    await form.getByLabel('Action', { exact: true }).fill('');
    await form.getByRole('button', { name: 'Apply filter' }).click();
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual([echoed, ...[...failed].reverse()]);
    const url = new URL(page.url());
    expect(url.searchParams.getAll('state')).toEqual(['SUCCEEDED', 'FAILED']);
    expect(url.searchParams.get('type')).toBeNull();

    // A date range that ends before the tasks were created lists none of them.
    await form.getByLabel('Created before').fill('2020-01-01T00:00');
    await form.getByRole('button', { name: 'Apply filter' }).click();
    await page.getByText('No task matches this filter.').waitFor({ timeout: 10_000 });
    expect(new URL(page.url()).searchParams.get('createdTo')).toBe(new Date('2020-01-01T00:00').toISOString());
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-filter.png`, fullPage: true });

    await page.getByRole('link', { name: 'Clear filter' }).click();
    await expect.poll(() => new URL(page.url()).search, { timeout: 10_000 }).toBe('');
    expect(await form.getByLabel('Session', { exact: true }).inputValue()).toBe('');
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('tells of new tasks that match the filter and shows them on request', async () => {
    const { server } = harness;
    const session = newSession('newer');
    const echo = (message: string) => submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message }, session });
    const first = (await echo('first')).task.id;
    const opened = await openTasks(`?session=${session}`);
    const { page } = opened;
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual([first]);

    const later = [(await echo('second')).task.id, (await echo('third')).task.id];
    const notice = page.getByRole('status').filter({ hasText: '2 new tasks match' });
    await notice.waitFor({ timeout: 15_000 });
    // Not shown before it is asked for.
    expect(await listedIds(page)).toEqual([first]);
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-newer.png` });
    await notice.getByRole('button', { name: 'Show them' }).click();
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual([...later].reverse().concat(first));
    await expect.poll(() => notice.count(), { timeout: 10_000 }).toBe(0);
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('retries the selected failed tasks', async () => {
    const { server } = harness;
    const session = newSession('retry');
    const ids = [];
    for (let index = 0; index < 3; index++) {
      ids.push((await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {}, maxAttempts: 1, session })).task.id);
    }
    for (const id of ids) await waitForTask(server, server.adminToken, id);

    const opened = await openTasks(`?state=FAILED&session=${session}`);
    const { page } = opened;
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toHaveLength(3);
    await page.getByLabel('Select every task on this page').check();
    const retry = page.getByRole('button', { name: 'Retry selected (3)' });
    await retry.click();
    const status = page.getByRole('status').filter({ hasText: 'back in their queues' });
    await status.waitFor({ timeout: 10_000 });
    expect(await status.textContent()).toContain('Put 3 tasks of 3 selected back in their queues');
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-bulk-retry.png`, fullPage: true });

    await expect
      .poll(async () => (await tasksOf(session)).every((task) => task.retries >= 1), { timeout: 10_000 })
      .toBe(true);
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('cancels the selected waiting tasks after a confirmation, chosen with the keyboard', async () => {
    const { server } = harness;
    const session = newSession('cancel');
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const ids = [];
    for (let index = 0; index < 3; index++) {
      ids.push((await submit(server, server.adminToken, { service: 'demo', action: 'sleep', params: { ms: 10 }, runAt, session })).task.id);
    }
    const spared = (await submit(server, server.adminToken, { service: 'demo', action: 'sleep', params: { ms: 10 }, runAt, session })).task.id;

    const opened = await openTasks(`?session=${session}`);
    const { page } = opened;
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual([spared, ...[...ids].reverse()]);
    // Places in the queue follow the rows in a read of their own, as the API counts them.
    const { task: sparedTask } = await query(server, server.adminToken, 'query ($id: ID!) { task(id: $id) { queuePosition } }', { id: spared });
    expect(sparedTask.queuePosition).toBeGreaterThan(0);
    await expect
      .poll(() => row(page, spared).getByRole('cell').last().textContent(), { timeout: 10_000 })
      .toBe(String(sparedTask.queuePosition + 1));

    // Up and Down move between the rows' links; Space selects the focused row.
    await page.getByRole('link', { name: spared }).focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe(ids[2]);
    await page.keyboard.press('Space');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Space');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe(ids[0]);
    await page.keyboard.press('Space');
    for (const id of ids) expect(await page.getByLabel(`Select task ${id}`).isChecked()).toBe(true);
    expect(await page.getByLabel(`Select task ${spared}`).isChecked()).toBe(false);

    let dialogShown = '';
    page.once('dialog', (dialog) => {
      dialogShown = dialog.message();
      void dialog.accept();
    });
    await page.getByRole('button', { name: 'Cancel selected (3)' }).click();
    const status = page.getByRole('status').filter({ hasText: 'Cancelled' });
    await status.waitFor({ timeout: 10_000 });
    expect(dialogShown).toContain('Cancel 3 selected tasks?');
    expect(await status.textContent()).toContain('Cancelled 3 tasks of 3 selected');
    for (const id of ids) {
      await expect.poll(async () => (await row(page, id).locator('.state').textContent())?.trim(), { timeout: 10_000 }).toBe('Cancelled');
    }
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-bulk-cancel.png`, fullPage: true });

    const states = new Map((await tasksOf(session)).map((task) => [task.id, task.state]));
    for (const id of ids) expect(states.get(id)).toBe('CANCELLED');
    expect(states.get(spared)).toBe('PENDING');
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('finds a task by id, by poll and by idempotency key, and says when nothing matches', async () => {
    const { server } = harness;
    const session = newSession('find');
    const batch = await submitBatch([0, 1].map((index) => ({ service: 'demo', action: 'echo', params: { message: `b${index}` }, session })));
    const idempotencyKey = `order-${Date.now()}`;
    const keyed = (await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'k' }, idempotencyKey })).task.id;

    const opened = await openTasks();
    const { page } = opened;
    const find = async (text: string) => {
      await page.getByLabel('Find a task').fill(text);
      await page.getByRole('button', { name: 'Find', exact: true }).click();
    };

    await find(batch.poll);
    await expect.poll(() => new URL(page.url()).searchParams.get('poll'), { timeout: 10_000 }).toBe(batch.poll);
    await expect.poll(async () => (await listedIds(page)).sort(), { timeout: 10_000 }).toEqual([...batch.ids].sort());

    await find(idempotencyKey);
    await expect.poll(() => new URL(page.url()).searchParams.get('idempotencyKey'), { timeout: 10_000 }).toBe(idempotencyKey);
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual([keyed]);

    await find('no-such-thing');
    const none = page.getByRole('status').filter({ hasText: 'No task has the id, poll or idempotency key' });
    await none.waitFor({ timeout: 10_000 });
    expect(await none.textContent()).toContain('“no-such-thing”');
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-find.png`, fullPage: true });

    await find(batch.ids[0]!);
    await expect.poll(() => new URL(page.url()).pathname, { timeout: 10_000 }).toBe(`/dashboard/tasks/${encodeURIComponent(batch.ids[0]!)}`);
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('pages through more than 50 tasks with Next and Previous', async () => {
    const session = newSession('paging');
    const { ids } = await submitBatch(Array.from({ length: 61 }, (_, index) => ({ service: 'demo', action: 'echo', params: { message: `p${index}` }, session })));
    const newestFirst = [...ids].reverse();

    const opened = await openTasks(`?session=${session}`);
    const { page } = opened;
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual(newestFirst.slice(0, 50));
    expect(await page.getByRole('link', { name: 'Previous page' }).count()).toBe(0);

    await page.getByRole('link', { name: 'Next page' }).click();
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual(newestFirst.slice(50));
    expect(await page.getByRole('link', { name: 'Next page' }).count()).toBe(0);
    expect(await page.getByText('Tasks 51 to 61, newest first').count()).toBe(1);
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-paging.png`, fullPage: true });

    // The address of the second page, shared, opens the second page.
    const second = page.url();
    await page.reload();
    await signedIn(page);
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual(newestFirst.slice(50));
    expect(page.url()).toBe(second);

    await page.getByRole('link', { name: 'Previous page' }).click();
    await expect.poll(() => listedIds(page), { timeout: 10_000 }).toEqual(newestFirst.slice(0, 50));
    expect(new URL(page.url()).searchParams.get('after')).toBeNull();
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('offers a MEMBER key no bulk actions, and says why; on a phone the filter starts folded', async () => {
    const { server } = harness;
    const viewer = await query(server, server.adminToken, '{ viewer { organisation } }');
    const member = await createKey(server, viewer.viewer.organisation, 'MEMBER');
    const session = newSession('member');
    const { task } = await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'm' }, session });

    const opened = await openTasks(`?session=${session}`, member, { width: 390, height: 844 });
    const { page } = opened;
    await row(page, task.id).waitFor({ timeout: 10_000 });
    const summary = page.locator('.tasks-filter-box > summary');
    expect(await summary.textContent()).toBe(`Filter: Session ${session}`);
    expect(await page.getByRole('form', { name: 'Filter tasks' }).isVisible()).toBe(false);
    expect(await page.getByRole('link', { name: task.id }).isVisible()).toBe(true);
    expect(await page.getByText('Cancelling and retrying several tasks at once needs an ADMIN key.').isVisible()).toBe(true);
    expect(await page.getByRole('button', { name: /selected/ }).count()).toBe(0);
    expect(await page.getByRole('checkbox', { name: /^Select task/ }).count()).toBe(0);
    await page.screenshot({ path: `${SCREENSHOTS}/tasks-member-narrow.png`, fullPage: true });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });
});
