import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { query, startServer } from './helpers.js';

// The server's side of the dashboard: a build's pages and assets at /dashboard with the headers
// browsers cache and confine them by, and a clear answer when there is no build.

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function build(): string {
  const folder = mkdtempSync(join(tmpdir(), 'taskport-dashboard-'));
  folders.push(folder);
  mkdirSync(join(folder, 'assets'));
  writeFileSync(join(folder, 'index.html'), '<!doctype html><title>Taskport</title><script type="module" src="/dashboard/assets/index-Ab12_cd.js"></script>');
  writeFileSync(join(folder, 'assets', 'index-Ab12_cd.js'), 'console.log("dashboard")');
  return folder;
}

/** A raw GET, so that a path with dot segments reaches the server as written. */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const outgoing = httpRequest({ host: target.hostname, port: target.port, path, method: 'GET' }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    outgoing.on('error', reject).end();
  });
}

describe('the dashboard route', () => {
  it('serves the built pages: index.html for every page path, never cached; hashed assets for a year; a strict CSP', async () => {
    const server = await startServer({}, { dashboardFolder: build() });
    const origin = new URL(server.url).origin;

    const bare = await fetch(`${origin}/dashboard`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/dashboard/');

    for (const path of ['/dashboard/', '/dashboard/tasks?state=FAILED', '/dashboard/tasks/VGFzazox']) {
      const page = await fetch(`${origin}${path}`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('cache-control')).toBe('no-cache');
      const policy = page.headers.get('content-security-policy')!;
      expect(policy).toContain("default-src 'none'");
      expect(policy).toContain("script-src 'self'");
      expect(policy).toContain("connect-src 'self'");
      expect(policy).toContain("frame-ancestors 'none'");
      expect(await page.text()).toContain('<title>Taskport</title>');
    }

    const asset = await fetch(`${origin}/dashboard/assets/index-Ab12_cd.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log("dashboard")');

    expect((await fetch(`${origin}/dashboard/assets/missing-123.js`)).status).toBe(404);
    expect((await rawGet(server.url, '/dashboard/assets/../../package.json')).status).toBe(404);
    expect((await rawGet(server.url, '/dashboard/assets/%2e%2e%2fpackage.json')).status).toBe(404);
    expect((await fetch(`${origin}/dashboard/`, { method: 'POST' })).status).toBe(405);

    // The API beside it is unchanged.
    expect((await query(server, server.adminToken, '{ viewer { organisation } }')).viewer.organisation).toBe('default');
    await server.stop();
  });

  it('says how to build the dashboard when there is no build', async () => {
    const missing = join(tmpdir(), `taskport-no-dashboard-${process.pid}-${Date.now()}`);
    const server = await startServer({}, { dashboardFolder: missing });
    const page = await fetch(`${new URL(server.url).origin}/dashboard/`);
    expect(page.status).toBe(503);
    expect(await page.text()).toContain('npm run build:dashboard');
    await server.stop();
  });
});
