import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Page } from 'playwright-core';
import { loadConfig } from '../src/config.js';
import { DASHBOARD_FOLDER } from '../src/http/dashboard.js';
import { startTaskport } from '../src/main.js';

// `npm run screenshots`: the README's pictures of the dashboard, taken in Chromium from a real server
// with a few demo tasks in every state. Run it after a change to the pages and commit docs/*.png.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = new URL('.', import.meta.url).pathname;
const TIMEOUT_MS = 15_000;

const folder = mkdtempSync(join(tmpdir(), 'taskport-screenshots-'));
const token = `tp_docs_${randomBytes(12).toString('hex')}`;
const config = loadConfig({
  HOST: '127.0.0.1',
  PORT: '0',
  TASKPORT_DB: join(folder, 'taskport.db'),
  TASKPORT_BOOTSTRAP_TOKEN: token,
  TASKPORT_LOG_LEVEL: 'warn',
});
const taskport = await startTaskport(config, pino({ level: 'warn' }), { dashboardFolder: DASHBOARD_FOLDER });

async function graphql(query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(taskport.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

// One batch per call: the default rate limit takes 10 submissions a second.
const SUBMIT_TASKS = `mutation ($inputs: [SubmitTaskInput!]!) { submitTasks(inputs: $inputs) { ... on SubmitTasksSuccess { tasks { id } } ... on Error { message } } }`;
async function submit(inputs: Record<string, unknown>[]): Promise<string[]> {
  const { submitTasks } = await graphql(SUBMIT_TASKS, { inputs });
  if (!submitTasks.tasks) throw new Error(submitTasks.message);
  return submitTasks.tasks.map((task: { id: string }) => task.id);
}

async function shoot(page: Page, path: string, ready: string, file: string): Promise<void> {
  await page.goto(`${new URL(taskport.url).origin}${path}`);
  await page.locator(ready).first().waitFor({ timeout: TIMEOUT_MS });
  // Live pages settle: the next refresh or event has landed.
  await page.waitForTimeout(2500);
  await page.screenshot({ path: join(OUT, file) });
  console.log(`docs/${file}`);
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run'] });
try {
  const later = new Date(Date.now() + 3_600_000).toISOString();
  const [running] = await submit([{ service: 'demo', action: 'sleep', params: { ms: 60_000, steps: 60 } }]);
  await submit([
    ...Array.from({ length: 24 }, (_, index) => ({ service: 'demo', action: 'echo', params: { message: `hello ${index}` } })),
    ...Array.from({ length: 3 }, () => ({ service: 'demo', action: 'fail', params: {}, maxAttempts: 1 })),
    ...Array.from({ length: 4 }, () => ({ service: 'demo', action: 'echo', params: { message: 'later' }, runAt: later })),
    { service: 'demo', action: 'echo', params: { message: 'after the sleep' }, dependsOn: [running] },
  ]);
  await new Promise((resolve) => setTimeout(resolve, 4000));

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript((key) => sessionStorage.setItem('taskport.apiKey', key), token);
  const page = await context.newPage();
  await shoot(page, '/dashboard/', 'tr[data-state="succeeded"] td', 'dashboard-overview.png');
  await shoot(page, '/dashboard/tasks', 'main tbody tr a[href*="/dashboard/tasks/"]', 'dashboard-tasks.png');
  await shoot(page, `/dashboard/tasks/${running}`, 'main h1', 'dashboard-task.png');
} finally {
  await browser.close();
  await taskport.stop();
  rmSync(folder, { recursive: true, force: true });
}
