import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { query, startServer, submit, type TestServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = '/tmp/graphiql.png';

/** Data URLs and blob URLs of the page's own origin are made in the page; anything else left the machine. */
function isFromOrigin(url: string, origin: string): boolean {
  if (url.startsWith('data:')) return true;
  return new URL(url).origin === origin;
}

describe('GraphiQL in headless Chromium, with no other origin reachable', () => {
  let server: TestServer;
  let origin: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const foreignRequests: string[] = [];
  const eventStreamRequests: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: the GraphiQL test needs Debian's chromium. Install it with "apt-get install -y chromium" (.ci/run does).`,
      );
    }
    server = await startServer();
    origin = new URL(server.url).origin;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    context.on('request', (request) => {
      if (!isFromOrigin(request.url(), origin)) foreignRequests.push(`${request.method()} ${request.url()}`);
      if (request.headers()['accept']?.includes('text/event-stream')) {
        const { origin: requestOrigin, pathname } = new URL(request.url());
        eventStreamRequests.push(`${requestOrigin}${pathname}`);
      }
    });
    // As behind a firewall: a page that needs a CDN stays blank here even on a machine with internet.
    await context.route(
      (url) => !isFromOrigin(url.href, origin),
      (route) => route.abort('internetdisconnected'),
    );
    // Below vitest's test timeout, so that a page that never renders fails with Playwright's reason.
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(server.url);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const queryEditor = () => page.locator('.graphiql-editor[data-mode-id="graphql"]').first();
  const resultPane = () => page.locator('.result-window');

  async function replaceText(editor: Locator, text: string): Promise<void> {
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    // insertText, not typing: Monaco would add a closing brace for every opening one typed.
    await page.keyboard.insertText(text);
  }

  async function useKey(token: string): Promise<void> {
    await page.getByRole('button', { name: 'Headers', exact: true }).click();
    const headersEditor = page.locator('.graphiql-editor[data-mode-id="json"]').nth(1);
    await headersEditor.waitFor({ state: 'visible' });
    await replaceText(headersEditor, JSON.stringify({ Authorization: `Bearer ${token}` }));
  }

  async function run(operation: string): Promise<void> {
    await replaceText(queryEditor(), operation);
    await page.getByRole('button', { name: /^Execute query/ }).click();
  }

  test('GET /graphql renders the GraphiQL editor from the server alone: no request goes to another origin', async () => {
    try {
      await page.locator('.graphiql-container').first().waitFor();
      await queryEditor().locator('.monaco-editor').waitFor();
    } catch (error) {
      throw new Error(
        `GraphiQL did not render; title ${JSON.stringify(await page.title())}, ` +
          `page errors ${JSON.stringify(pageErrors)}, requests to other origins ${JSON.stringify(foreignRequests)}`,
        { cause: error },
      );
    }
    expect(await page.title()).toBe('Taskport GraphiQL');
    expect(pageErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });

  test('a query run in GraphiQL with the admin key in Headers shows its result', async () => {
    await useKey(server.adminToken);
    await run('{ viewer { organisation key { name role } } }');
    await resultPane().getByText('"ADMIN"').waitFor();
    const shown = (await resultPane().locator('.view-lines').innerText()).replace(/\s+/g, ' ');
    expect(shown).toContain('"organisation": "default"');
    await page.screenshot({ path: SCREENSHOT });
    expect(foreignRequests).toEqual([]);
  });

  test('a subscription run in GraphiQL streams over SSE from the same origin until the task ends', async () => {
    const submitted = await submit(server, server.adminToken, {
      service: 'demo',
      action: 'echo',
      params: { message: 'graphiql' },
      // Due in an hour: the task waits, PENDING, until the test cancels it.
      runAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(submitted.__typename).toBe('SubmitTaskSuccess');
    const task = submitted.task;
    await useKey(server.adminToken);
    await run(`subscription { taskUpdated(id: "${task.id}") { state } }`);
    await resultPane().getByText('"PENDING"').waitFor();

    const cancelled = await query(server, server.adminToken, `mutation ($id: ID!) { cancelTask(id: $id) { __typename } }`, {
      id: task.id,
    });
    expect(cancelled.cancelTask.__typename).toBe('CancelTaskSuccess');
    await resultPane().getByText('"CANCELLED"').waitFor();

    expect(eventStreamRequests).toContain(server.url);
    expect(foreignRequests).toEqual([]);
  });
});

describe('TASKPORT_GRAPHIQL', () => {
  test('defaults to true; false and true are read, anything else is a configuration error', () => {
    expect(loadConfig({}).graphiql).toBe(true);
    expect(loadConfig({ TASKPORT_GRAPHIQL: 'false' }).graphiql).toBe(false);
    expect(loadConfig({ TASKPORT_GRAPHIQL: 'true' }).graphiql).toBe(true);
    expect(() => loadConfig({ TASKPORT_GRAPHIQL: 'maybe' })).toThrow(ConfigError);
  });

  test('=false: a browser GET /graphql gets no GraphiQL page, and queries still work', async () => {
    const server = await startServer({ graphiql: loadConfig({ TASKPORT_GRAPHIQL: 'false' }).graphiql });
    try {
      const response = await fetch(server.url, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
      const body = await response.text();
      expect(response.headers.get('content-type') ?? '').not.toContain('text/html');
      expect(body).not.toMatch(/graphiql/i);
      expect((await query(server, server.adminToken, '{ viewer { organisation } }')).viewer.organisation).toBe('default');
    } finally {
      await server.stop();
    }
  });
});
