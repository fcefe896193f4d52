import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createKey, globalId, nextListen, query, submit, waitForTask } from '../test/helpers.js';
import { openPage, SCREENSHOTS, signIn, signedIn, useDashboard, type OpenedPage } from './harness.js';

const harness = useDashboard();

const WAIT = { timeout: 15_000 };

async function taskFields(id: string, fields: string): Promise<Record<string, any>> {
  const data = await query(harness.server, harness.server.adminToken, `query ($id: ID!) { task(id: $id) { ${fields} } }`, { id });
  return data.task;
}

/** Signs in straight on the task's page and waits for its heading. */
async function openTask(id: string, viewport?: { width: number; height: number }): Promise<OpenedPage> {
  const opened = await openPage(harness, viewport);
  await signIn(harness, opened.page, harness.server.adminToken, `/dashboard/tasks/${encodeURIComponent(id)}`);
  await signedIn(opened.page);
  await opened.page.getByRole('heading', { name: `Task ${id}`, level: 1 }).waitFor(WAIT);
  return opened;
}

/** The state written beside the task's service and action, under the heading. */
const shownState = (page: Page) => page.locator('.task-what .state');

const logRows = (page: Page) => page.getByRole('region', { name: 'Log lines' }).locator('tbody tr');

/** Nothing left the origin, nothing was refused, nothing was logged as an error; then closes. */
async function closeClean(opened: OpenedPage): Promise<void> {
  expect(opened.fromOtherOrigins()).toEqual([]);
  expect(opened.failedResponses).toEqual([]);
  expect(opened.consoleErrors).toEqual([]);
  await opened.close();
}

describe('the task detail page', () => {
  it('streams the logs of a running task, and the level filter hides lower levels', async () => {
    const { server } = harness;
    const { task } = await submit(server, server.adminToken, {
      service: 'demo',
      action: 'sleep',
      params: { ms: 10_000, steps: 40 },
      user: 'ada',
    });
    const opened = await openTask(task.id);
    const { page } = opened;
    expect(await page.locator('.task-what .task-action').textContent()).toBe('demo.sleep');

    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Processing');
    await logRows(page).filter({ hasText: 'step 1 of 40' }).waitFor(WAIT);
    const early = await logRows(page).count();
    // Lines written after the page loaded arrive without a reload.
    await logRows(page).filter({ hasText: 'step 16 of 40' }).waitFor(WAIT);
    expect(await logRows(page).count()).toBeGreaterThan(early);
    const first = logRows(page).first();
    expect(await first.locator('td').nth(1).textContent()).toBe('Info');
    expect(await first.locator('td').nth(2).textContent()).toBe('handler');
    expect(await first.locator('td').nth(3).textContent()).toBe('step 1 of 40');

    // The newest line stays in view while the reader has not scrolled up.
    const scroller = page.getByRole('region', { name: 'Log lines' });
    const fromEnd = () => scroller.evaluate((element) => element.scrollHeight - element.scrollTop - element.clientHeight);
    expect(await scroller.evaluate((element) => element.scrollHeight > element.clientHeight)).toBe(true);
    await expect.poll(fromEnd, WAIT).toBeLessThan(30);

    const progress = page.getByRole('progressbar', { name: 'Progress' });
    await expect.poll(async () => Number(await progress.getAttribute('value')), WAIT).toBeGreaterThan(0);
    expect(await page.locator('.task-summary').textContent()).toMatch(/Progress\d+%/);
    expect(await page.locator('.task-json').textContent()).toContain('"ms": 10000');
    expect(await page.locator('.task-summary').textContent()).toContain('Userada');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task.png`, fullPage: true });

    // Scrolled up, the reader keeps their place while lines keep coming.
    await scroller.evaluate((element) => {
      element.scrollTop = 0;
      element.dispatchEvent(new Event('scroll'));
    });
    const before = await logRows(page).count();
    await expect.poll(() => logRows(page).count(), WAIT).toBeGreaterThan(before + 2);
    expect(await scroller.evaluate((element) => element.scrollTop)).toBe(0);

    await page.getByLabel('Minimum level').selectOption('WARN');
    await page.getByText('No log lines at this level or above.').waitFor(WAIT);
    expect(await logRows(page).count()).toBe(0);

    await page.getByLabel('Minimum level').selectOption('INFO');
    await logRows(page).filter({ hasText: 'step 1 of 40' }).waitFor(WAIT);

    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Succeeded');
    await expect.poll(() => logRows(page).count(), WAIT).toBe(40);
    expect(await page.locator('.task-timeline li').allTextContents()).toEqual([
      expect.stringMatching(/^Created /),
      expect.stringMatching(/^Started .*\(waited /),
      expect.stringMatching(/^Ended Succeeded .*\(ran \d+ s\)1 attempt in all$/),
    ]);
    const results = page.getByRole('region', { name: 'Result metadata' });
    expect(await results.locator('tbody tr').count()).toBeGreaterThan(0);
    await closeClean(opened);
  });

  it('reads at most 500 log lines at once, and Load more reads the next ones', async () => {
    const { server } = harness;
    const { task } = await submit(server, server.adminToken, { service: 'demo', action: 'sleep', params: { ms: 1000, steps: 1000 } });
    await waitForTask(server, server.adminToken, task.id);
    const opened = await openTask(task.id);
    const { page } = opened;
    await expect.poll(() => logRows(page).count(), WAIT).toBe(500);
    expect(await logRows(page).last().locator('td').nth(3).textContent()).toBe('step 500 of 1000');
    await page.getByRole('button', { name: 'Load more lines' }).click();
    await expect.poll(() => logRows(page).count(), WAIT).toBe(1000);
    expect(await logRows(page).last().locator('td').nth(3).textContent()).toBe('step 1000 of 1000');
    expect(await page.getByRole('button', { name: 'Load more lines' }).count()).toBe(0);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-many-logs.png` });
    await closeClean(opened);
  });

  it('cancels a running task after a confirmation', async () => {
    const { server } = harness;
    const { task } = await submit(server, server.adminToken, { service: 'demo', action: 'sleep', params: { ms: 30_000, steps: 30 } });
    const opened = await openTask(task.id);
    const { page } = opened;
    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Processing');

    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Cancelled');
    expect(dialogs).toEqual([expect.stringContaining(task.id)]);
    await page.getByRole('status').filter({ hasText: 'The task was cancelled.' }).waitFor(WAIT);
    expect((await taskFields(task.id, 'state')).state).toBe('CANCELLED');
    expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Retry task' }).isVisible()).toBe(true);

    // The handler's own last word, at WARN, is all that shows from that level up.
    // Polled: right after the selection the unfiltered list, which holds that line too, may still show.
    await page.getByLabel('Minimum level').selectOption('WARN');
    await expect.poll(() => logRows(page).count(), WAIT).toBe(1);
    expect(await logRows(page).first().textContent()).toContain('interrupted during step');
    expect(await logRows(page).first().locator('td').nth(1).textContent()).toBe('Warning');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-cancelled.png`, fullPage: true });
    await closeClean(opened);
  });

  it('retries a failed task, and the timeline keeps the earlier run', async () => {
    const { server } = harness;
    const { task } = await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: { code: 'BROKEN' } });
    await waitForTask(server, server.adminToken, task.id);
    const opened = await openTask(task.id);
    const { page } = opened;
    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Failed');
    const error = page.getByRole('region', { name: 'Error', exact: true });
    expect(await error.textContent()).toContain('BROKEN: The demo action failed as asked.');
    expect(await page.getByRole('alert').count()).toBe(0);

    // The page listens for the task's return once its stream of the second run has ended.
    const listening = nextListen(server, 'organisation');
    await page.getByRole('button', { name: 'Retry task' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'back in its queue' }).count(), WAIT).toBe(1);
    const after = await taskFields(task.id, 'retries retryHistory { state }');
    expect(after.retries).toBe(1);
    expect(after.retryHistory).toEqual([{ state: 'FAILED' }]);

    const steps = page.locator('.task-timeline li');
    await steps.filter({ hasText: /^Run 1 ended Failed/ }).waitFor(WAIT);
    expect(await steps.filter({ hasText: /^Run 1 ended Failed/ }).textContent()).toContain('BROKEN');
    await steps.filter({ hasText: /^Retried by key / }).waitFor(WAIT);
    // It fails again: the page follows the second run too, though the first run's stream had ended.
    await steps.filter({ hasText: /^Run 2 ended Failed/ }).waitFor(WAIT);
    expect(await page.locator('.task-summary').textContent()).toContain('Retries1');

    // A retry from elsewhere, after the page's stream of the task has ended, shows too.
    await listening;
    const again = await query(server, server.adminToken, `mutation ($id: ID!) { retryTask(id: $id) { __typename } }`, { id: task.id });
    expect(again.retryTask.__typename).toBe('RetryTaskSuccess');
    await steps.filter({ hasText: /^Run 3 ended Failed/ }).waitFor(WAIT);
    expect(await page.locator('.task-summary').textContent()).toContain('Retries2');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-retried.png`, fullPage: true });
    await closeClean(opened);
  });

  it('lists what a task waits for and what waits for it, and follows the dependent live', async () => {
    const { server } = harness;
    const a = (await submit(server, server.adminToken, { service: 'demo', action: 'sleep', params: { ms: 6000, steps: 3 } })).task;
    const b = (await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'after a' }, dependsOn: [a.id] }))
      .task;
    const opened = await openTask(b.id);
    const { page } = opened;
    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Suspended');
    const waitsFor = page.getByRole('list', { name: 'Waits for' });
    expect(await waitsFor.getByRole('link').textContent()).toContain(a.id);
    expect(await page.getByText('No task waits for it.').isVisible()).toBe(true);
    expect(await page.locator('.task-timeline').textContent()).toContain('Not started: waits for the tasks it depends on');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-suspended.png`, fullPage: true });

    await expect.poll(() => shownState(page).textContent(), { timeout: 20_000 }).toBe('Succeeded');
    expect(await waitsFor.locator('.state').textContent()).toBe('Succeeded');

    await waitsFor.getByRole('link').click();
    await page.getByRole('heading', { name: `Task ${a.id}`, level: 1 }).waitFor(WAIT);
    const waitedForBy = page.getByRole('list', { name: 'Waited for by' });
    expect(await waitedForBy.getByRole('link').textContent()).toContain(b.id);
    expect(await waitedForBy.locator('.state').textContent()).toBe('Succeeded');
    expect(await page.getByText('It waits for no task.').isVisible()).toBe(true);
    await closeClean(opened);
  });

  it('shows the queue position of a pending task', async () => {
    const { server } = harness;
    const runAt = new Date(Date.now() + 3600_000).toISOString();
    const ids: string[] = [];
    for (let index = 0; index < 3; index++) {
      ids.push((await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: `later ${index}` }, runAt })).task.id);
    }
    const last = ids.at(-1)!;
    expect((await taskFields(last, 'state queuePosition')).queuePosition).toBe(2);
    const opened = await openTask(last, { width: 390, height: 800 });
    const { page } = opened;
    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Pending');
    const summary = page.locator('.task-summary');
    expect(await summary.textContent()).toContain('Queue position2 tasks ahead in its queue');
    expect(await summary.textContent()).toContain('Not before');
    expect(await page.locator('.task-timeline').textContent()).toContain('Not started yet');
    // Small screens scroll inside the blocks that need it, not the whole page sideways.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-pending.png`, fullPage: true });

    // By keyboard: the focus moves from the button, which goes, to what happened.
    page.on('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Cancel task' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Cancelled');
    const said = page.getByRole('status').filter({ hasText: 'The task was cancelled.' });
    await said.waitFor(WAIT);
    await expect.poll(() => said.evaluate((element) => element === document.activeElement), WAIT).toBe(true);
    await closeClean(opened);
  });

  it('shows the typed refusal when a retry is not allowed', async () => {
    const { server } = harness;
    const a = (await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {} })).task;
    const b = (await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: 'never' }, dependsOn: [a.id] }))
      .task;
    expect((await waitForTask(server, server.adminToken, b.id)).error.code).toBe('DEPENDENCY_FAILED');
    const opened = await openTask(b.id);
    const { page } = opened;
    await page.getByRole('button', { name: 'Retry task' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor(WAIT);
    expect(await alert.textContent()).toMatch(/^The task was not retried: ./);
    expect(await alert.evaluate((element) => element === document.activeElement)).toBe(true);
    expect((await taskFields(b.id, 'state retries')).retries).toBe(0);
    expect(await shownState(page).textContent()).toBe('Failed');
    expect(await page.getByRole('list', { name: 'Waits for' }).locator('.state').textContent()).toBe('Failed');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-refused.png` });
    await closeClean(opened);
  });

  it('shows another key’s retried task to a MEMBER key, which sees only that key’s name', async () => {
    const { server } = harness;
    const member = await createKey(server, 'default', 'MEMBER');
    const { task } = await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {} });
    await waitForTask(server, server.adminToken, task.id);
    const retried = await query(server, server.adminToken, `mutation ($id: ID!) { retryTask(id: $id) { __typename } }`, { id: task.id });
    expect(retried.retryTask.__typename).toBe('RetryTaskSuccess');
    await waitForTask(server, server.adminToken, task.id);

    const opened = await openPage(harness);
    const { page } = opened;
    await signIn(harness, page, member, `/dashboard/tasks/${encodeURIComponent(task.id)}`);
    await signedIn(page);
    await page.getByRole('heading', { name: `Task ${task.id}`, level: 1 }).waitFor(WAIT);
    await expect.poll(() => shownState(page).textContent(), WAIT).toBe('Failed');
    expect(await page.locator('.task-summary').textContent()).toContain('Submitted by keybootstrap');
    expect(await page.locator('.task-timeline li').filter({ hasText: /^Retried by key bootstrap/ }).count()).toBe(1);
    expect(await page.getByRole('alert').count()).toBe(0);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-member.png`, fullPage: true });
    await closeClean(opened);
  });

  it('says clearly when there is no task with the id, or it is another organisation’s', async () => {
    const { server } = harness;
    const otherKey = await createKey(server, 'elsewhere', 'ADMIN');
    const foreign = (await submit(server, otherKey, { service: 'demo', action: 'echo', params: { message: 'theirs' } })).task.id;
    for (const id of [globalId('Task', 987_654), 'not-an-id', foreign]) {
      const opened = await openPage(harness);
      const { page } = opened;
      await signIn(harness, page, server.adminToken, `/dashboard/tasks/${encodeURIComponent(id)}`);
      await signedIn(page);
      const alert = page.getByRole('alert');
      await alert.waitFor(WAIT);
      expect(await alert.textContent()).toContain('No task with this id');
      expect(await page.getByRole('heading', { name: `Task ${id}`, level: 1 }).isVisible()).toBe(true);
      expect(await page.getByRole('link', { name: 'Back to tasks' }).getAttribute('href')).toBe('/dashboard/tasks');
      if (id === foreign) await page.screenshot({ path: `${SCREENSHOTS}/dashboard-task-unknown.png` });
      await closeClean(opened);
    }
  });
});
