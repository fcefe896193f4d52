import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_FOLDER } from '../src/http/dashboard.js';
import { startServer, submit, waitForTask, type TestServer } from '../test/helpers.js';

// The dashboard in a real Chromium against a real server, as a person uses it: the built pages
// (npm ci builds them), a real key, and no request to any other origin.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOTS = 'test-results';

let server: TestServer;
let origin: string;
let browser: Browser;

beforeAll(async () => {
  server = await startServer({}, { dashboardFolder: DASHBOARD_FOLDER });
  origin = new URL(server.url).origin;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page in a fresh context that records every request it makes. */
async function openPage(): Promise<{ page: Page; requested: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const requested: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  return { page, requested };
}

function fromOtherOrigins(requested: readonly string[]): string[] {
  return requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin);
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(`${origin}/dashboard/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('the dashboard in Chromium', () => {
  it('signs in with a real key and shows the counts of the tasks the test submitted', async () => {
    const ids = [];
    for (let index = 0; index < 3; index++) {
      ids.push((await submit(server, server.adminToken, { service: 'demo', action: 'echo', params: { message: `m${index}` } })).task.id);
    }
    ids.push((await submit(server, server.adminToken, { service: 'demo', action: 'fail', params: {}, maxAttempts: 1 })).task.id);
    for (const id of ids) await waitForTask(server, server.adminToken, id);

    const { page, requested } = await openPage();
    await signIn(page, server.adminToken);
    await expect.poll(() => page.getByRole('heading', { name: 'Overview' }).isVisible(), { timeout: 10_000 }).toBe(true);
    const stateCount = (state: string) => page.getByRole('row', { name: new RegExp(`^${state}\\b`) }).getByRole('cell').last();
    await expect.poll(() => stateCount('Succeeded').textContent(), { timeout: 10_000 }).toBe('3');
    expect(await stateCount('Failed').textContent()).toBe('1');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-overview.png`, fullPage: true });
    expect(fromOtherOrigins(requested)).toEqual([]);
    await page.context().close();
  });

  it('shows a clear error for a wrong key, and nothing of the API', async () => {
    const { page, requested } = await openPage();
    await signIn(page, 'tp_not_a_key_of_this_server');
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.isVisible(), { timeout: 10_000 }).toBe(true);
    expect((await alert.textContent())?.length).toBeGreaterThan(0);
    expect(await page.getByRole('heading', { name: 'Overview' }).count()).toBe(0);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-wrong-key.png` });
    expect(fromOtherOrigins(requested)).toEqual([]);
    await page.context().close();
  });
});
