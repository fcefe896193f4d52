import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { DASHBOARD_FOLDER } from '../src/http/dashboard.js';
import { startServer, type TestServer } from '../test/helpers.js';

// The dashboard in a real Chromium against a real server, as a person uses it: the built pages
// (npm ci builds them), a real key, and no request to any other origin.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const SCREENSHOTS = 'test-results';

export interface Harness {
  server: TestServer;
  origin: string;
  browser: Browser;
}

/** One server and one Chromium for a test file, started before its tests and stopped after them. */
export function useDashboard(): Harness {
  const harness = {} as Harness;
  beforeAll(async () => {
    // TASKPORT_TEST_DASHBOARD points at another build (one made while the sources change).
    harness.server = await startServer({}, { dashboardFolder: process.env.TASKPORT_TEST_DASHBOARD ?? DASHBOARD_FOLDER });
    harness.origin = new URL(harness.server.url).origin;
    harness.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await harness.browser?.close();
    await harness.server?.stop();
  });
  return harness;
}

export interface OpenedPage {
  page: Page;
  /** Every URL the page requested, in order. */
  requested: string[];
  /** The requested URLs outside the server's origin; a test expects none. */
  fromOtherOrigins(): string[];
  /** What the page logged as errors, such as a Content-Security-Policy refusal. */
  consoleErrors: string[];
  /** "STATUS URL" of every response of 400 or more. */
  failedResponses: string[];
  close(): Promise<void>;
}

/** A page in a fresh context (its own sessionStorage) that records every request it makes. */
export async function openPage(harness: Harness, viewport = { width: 1280, height: 800 }): Promise<OpenedPage> {
  const context = await harness.browser.newContext({ viewport });
  const page = await context.newPage();
  const requested: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  const failedResponses: string[] = [];
  page.on('response', (response) => {
    if (response.status() >= 400) failedResponses.push(`${response.status()} ${response.url()}`);
  });
  return {
    page,
    requested,
    consoleErrors,
    failedResponses,
    fromOtherOrigins: () => requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== harness.origin),
    close: () => context.close(),
  };
}

/** Signs in on the sign-in page at `path` (the overview by default) and waits for the signed-in shell. */
export async function signIn(harness: Harness, page: Page, key: string, path = '/dashboard/'): Promise<void> {
  await page.goto(`${harness.origin}${path}`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Waits until the signed-in shell shows (its Sign out button). */
export async function signedIn(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: 10_000 });
}
