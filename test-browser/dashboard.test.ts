import { describe, expect, it } from 'vitest';
import { createKey, query, submit, waitForTask } from '../test/helpers.js';
import { openPage, SCREENSHOTS, signedIn, signIn, useDashboard } from './harness.js';

const harness = useDashboard();

describe('the dashboard in Chromium', () => {
  it('signs in with a real key and shows the counts of the tasks the test submitted', async () => {
    const { server } = harness;
    const ids = [];
    for (let index = 0; index < 3; index++) {
      ids.push((await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: `m${index}` } })).task.id);
    }
    ids.push((await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {}, maxAttempts: 1 })).task.id);
    for (const id of ids) await waitForTask(server, server.adminToken, id);

    const opened = await openPage(harness);
    const { page } = opened;
    await signIn(harness, page, server.adminToken);
    await expect.poll(() => page.getByRole('heading', { name: 'Overview' }).isVisible(), { timeout: 10_000 }).toBe(true);
    const stateCount = (state: string) => page.getByRole('row', { name: new RegExp(`^${state}\\b`) }).getByRole('cell').last();
    await expect.poll(() => stateCount('Succeeded').textContent(), { timeout: 10_000 }).toBe('3');
    expect(await stateCount('Failed').textContent()).toBe('1');
    const throughput = page.getByRole('figure');
    await expect.poll(() => throughput.textContent(), { timeout: 10_000 }).toMatch(/3 succeeded.*1 failed.*0 cancelled/);
    expect(await page.locator('.chart canvas').count()).toBe(1);
    // Each queue draws its 15 minutes; the tasks all ended in the last one, the line's highest point.
    const lines = page.locator('.queues tbody .sparkline polyline');
    expect(await lines.count()).toBe(2);
    const points = ((await lines.first().getAttribute('points')) ?? '').split(' ');
    expect(points).toHaveLength(15);
    expect(points.at(-1)).toBe('90.0,1.0');
    expect(await page.getByRole('heading', { name: 'Allocations' }).isVisible()).toBe(true);
    // This test's server is the one process, running no task of its 4 slots.
    const workers = page.getByRole('region', { name: 'Worker processes' });
    expect(await workers.getByRole('row').nth(1).getByRole('cell').nth(2).textContent()).toBe('0 / 4');
    expect(opened.consoleErrors).toEqual([]);
    expect(opened.failedResponses).toEqual([]);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-overview.png`, fullPage: true });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it("fits a phone-width window: nothing but the tables' own scrolling regions is wider than the screen", async () => {
    const opened = await openPage(harness, { width: 390, height: 844 });
    const { page } = opened;
    await signIn(harness, page, harness.server.adminToken);
    await page.getByRole('heading', { name: 'Tasks by state' }).waitFor({ timeout: 10_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-overview-phone.png`, fullPage: true });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('keeps the tab signed in over a reload, and signs out with the reason once the key is revoked', async () => {
    const { server } = harness;
    const member = await createKey(server, 'default', 'MEMBER');
    const opened = await openPage(harness);
    const { page } = opened;
    await signIn(harness, page, member);
    await signedIn(page);
    await page.reload();
    await signedIn(page);
    expect(await page.getByRole('heading', { name: 'Overview' }).isVisible()).toBe(true);

    const { viewer } = await query(server, member, '{ viewer { key { id } } }');
    const revoked = await query(server, server.adminToken, 'mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: viewer.key.id });
    expect(revoked.revokeApiKey.__typename).toBe('RevokeApiKeySuccess');
    await page.reload();
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 10_000 });
    expect(await alert.textContent()).toContain('The API key was refused');
    expect(await page.getByLabel('API key').isVisible()).toBe(true);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-revoked-key.png` });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });

  it('shows a clear error for a wrong key, and nothing of the API', async () => {
    const opened = await openPage(harness);
    const { page } = opened;
    await signIn(harness, page, 'tp_not_a_key_of_this_server');
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.isVisible(), { timeout: 10_000 }).toBe(true);
    expect((await alert.textContent())?.length).toBeGreaterThan(0);
    expect(await page.getByRole('heading', { name: 'Overview' }).count()).toBe(0);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-wrong-key.png` });
    expect(opened.fromOtherOrigins()).toEqual([]);
    await opened.close();
  });
});
