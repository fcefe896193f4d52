import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type BrowserContext } from 'playwright-core';
import { loadConfig } from '../src/config.js';
import { startTaskport } from '../src/main.js';
import { BENCH_RATE_LIMITS_OFF, formatNumber, heading, line, median, removeFolder, runIfMain, temporaryFolder, type SectionResult } from './lib.js';
import { benchPostgres } from './postgres.js';
import { pgStore, sqliteStore, TASKS } from './scale.js';

// (db) The dashboard's first render at scale: the 1,000,000 tasks of the scale figure (bench/scale.ts),
// the pages built from the sources as they are (into a folder of the bench's own), served by a real server, and a real Chromium. Each page is
// loaded LOADS times after one warm-up, in one browser context (its assets cached, as for a person
// who comes back); the time is the page's own performance.now() when the first row with data appears,
// counted from the start of its navigation, each load once the previous one's reads have ended. The
// aggregates' server-side p99 is section `aggregates`.

const LOADS = 10;
const AIM_MS = 300;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// What sign-in leaves in the tab (dashboard/src/session.ts): a load is a person's reload, or a link
// opened in a tab that has signed in.
const SESSION_ITEMS = { key: 'taskport.apiKey', viewer: 'taskport.viewer' };

/** The pages, and the element whose appearance is the first render of each. */
const PAGES: ReadonlyArray<{ name: string; path: string; ready: string }> = [
  { name: 'task list', path: '/dashboard/tasks', ready: 'main tbody tr a[href*="/dashboard/tasks/"]' },
  { name: 'task list, state FAILED of svc3', path: '/dashboard/tasks?state=FAILED&service=svc3', ready: 'main tbody tr a[href*="/dashboard/tasks/"]' },
  { name: 'task list, one poll', path: `/dashboard/tasks?poll=poll_${Math.floor(TASKS / 2000)}`, ready: 'main tbody tr a[href*="/dashboard/tasks/"]' },
  { name: 'overview', path: '/dashboard/', ready: 'tr[data-state="succeeded"] td' },
];

/** Installed before any script of the page: the session as sign-in leaves it, and a watch for `ready`. */
function initScript({ session, ready }: { session: Record<string, string>; ready: string }): void {
  for (const [item, value] of Object.entries(session)) sessionStorage.setItem(item, value);
  const observer = new MutationObserver(() => {
    const element = document.querySelector(ready);
    if (element && element.textContent !== '') {
      (window as unknown as { firstRender: number }).firstRender = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, { childList: true, subtree: true, characterData: true });
}

async function firstRender(context: BrowserContext, origin: string, session: Record<string, string>, page: (typeof PAGES)[number]): Promise<number> {
  const tab = await context.newPage();
  try {
    await tab.addInitScript(initScript, { session, ready: page.ready });
    await tab.goto(`${origin}${page.path}`);
    try {
      const handle = await tab.waitForFunction(() => (window as unknown as { firstRender?: number }).firstRender, undefined, { timeout: 30_000 });
      if (process.env.BENCH_DASHBOARD_TIMINGS) {
        console.log(
          await tab.evaluate(() =>
            performance
              .getEntries()
              .map((entry) => `${entry.name.replace(location.origin, '').slice(0, 40)} ${Math.round(entry.startTime)}+${Math.round(entry.duration)}`)
              .join('\n'),
          ),
        );
      }
      const rendered = (await handle.jsonValue()) as number;
      // The reads a page makes after its first render (queue places, newer tasks) end before the
      // next load, so that one load is timed at a time.
      await tab.waitForLoadState('networkidle', { timeout: 10_000 }).catch(() => {});
      return rendered;
    } catch (error) {
      const text = await tab.locator('main').innerText().catch(() => '(no main element)');
      throw new Error(`${page.name} did not render within 30 s; the page says: ${text.slice(-700)}`, { cause: error });
    }
  } finally {
    await tab.close();
  }
}

/** The dashboard as `npm run build:dashboard` builds it, into `folder`. */
function buildDashboard(folder: string): void {
  execFileSync('npx', ['vite', 'build', '--config', 'dashboard/vite.config.ts', '--logLevel', 'warn', '--outDir', folder, '--emptyOutDir'], {
    stdio: 'inherit',
  });
}

async function measure(database: string, organisation: string): Promise<{ worst: number; rows: string[] }> {
  const pages = temporaryFolder();
  buildDashboard(pages);
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    TASKPORT_DB: database,
    TASKPORT_LOG_LEVEL: 'warn',
    // The seeded tasks are a year old: retention would delete the finished ones under the bench.
    TASKPORT_RETENTION_DAYS: '0',
    NODE_ENV: 'production',
    ...BENCH_RATE_LIMITS_OFF,
  });
  const taskport = await startTaskport(config, pino({ level: 'warn' }), { dashboardFolder: pages });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run'] });
  try {
    const { token } = await taskport.engine.provisionApiKey({ organisation, role: 'ADMIN', name: 'dashboard-bench' });
    const origin = new URL(taskport.url).origin;
    const viewer = await fetch(taskport.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ viewer { organisation key { name role } } }' }),
    }).then(async (response) => ((await response.json()) as { data: { viewer: unknown } }).data.viewer);
    const session = { [SESSION_ITEMS.key]: token, [SESSION_ITEMS.viewer]: JSON.stringify(viewer) };
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    let worst = 0;
    const rows: string[] = [];
    for (const page of PAGES) {
      await firstRender(context, origin, session, page);
      const times: number[] = [];
      for (let load = 0; load < LOADS; load++) times.push(await firstRender(context, origin, session, page));
      const p50 = median(times);
      worst = Math.max(worst, p50);
      line(page.name, `p50 ${formatNumber(p50)} ms, max ${formatNumber(Math.max(...times))} ms ${p50 <= AIM_MS ? '(within' : '(OVER'} the ${AIM_MS} ms aim)`);
      rows.push(`${page.name} p50 ${formatNumber(p50)} ms`);
    }
    await context.close();
    return { worst, rows };
  } finally {
    await browser.close();
    await taskport.stop();
    removeFolder(pages);
  }
}

function outcome(store: string, result: { worst: number; rows: string[] }): string {
  return `dashboard ${store} first render, p50 of ${LOADS} loads: ${result.rows.join(', ')} (aim ${AIM_MS} ms)`;
}

export async function dashboardSection(): Promise<SectionResult> {
  heading(`(db) dashboard first render in Chromium: ${TASKS.toLocaleString('en')} tasks, SQLite`);
  const folder = temporaryFolder();
  try {
    const full = await sqliteStore(folder, true);
    await full.close();
    line('seeding', `${formatNumber(full.seedMs / 1000, 1)} s`);
    return { summary: outcome('SQLite', await measure(join(folder, 'full.db'), 'scale-a')) };
  } finally {
    removeFolder(folder);
  }
}

export async function dashboardPgSection(): Promise<SectionResult> {
  const postgres = await benchPostgres();
  heading(`(db) dashboard first render in Chromium: ${TASKS.toLocaleString('en')} tasks, PostgreSQL`);
  line('PostgreSQL', postgres.describe);
  const full = await pgStore(true);
  try {
    await full.close();
    line('seeding', `${formatNumber(full.seedMs / 1000, 1)} s`);
    return { summary: outcome('PostgreSQL', await measure(full.url, 'scale-a')) };
  } finally {
    await full.drop();
  }
}

runIfMain(import.meta.url, process.argv.includes('--pg') ? dashboardPgSection : dashboardSection);
