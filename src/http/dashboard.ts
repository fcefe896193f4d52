import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

export const DASHBOARD_PATH = '/dashboard';

/** Where `npm run build:dashboard` (run by `npm ci`'s prepare) puts the built pages. */
export const DASHBOARD_FOLDER = fileURLToPath(new URL('../../dist-dashboard', import.meta.url));

/** Answers the request when it is for the dashboard, and says whether it did. */
export type DashboardRoutes = (request: IncomingMessage, response: ServerResponse) => boolean;

// The pages load nothing from another origin: scripts and styles are the build's own files, the API
// is this server's /graphql over HTTP and WebSocket. Nothing may frame them.
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Vite's hashed file names: a name is served only if it is one of these, so no path leaves the folder. */
const ASSET_NAME = /^[A-Za-z0-9_-]+(?:[.-][A-Za-z0-9_-]+)*\.[a-z0-9]+$/;

/** Files of a build never change under their names: each is read once, and the build's few files bound the cache. */
const MAX_CACHED_FILES = 500;

function pathOf(url: string | undefined): string {
  const query = url?.indexOf('?') ?? -1;
  return query < 0 ? (url ?? '') : url!.slice(0, query);
}

/**
 * The dashboard at /dashboard/: the built index.html for every page path (the pages route in the
 * browser), never cached, so that a new build is picked up at once; the hashed assets under
 * /dashboard/assets/, cached for a year and immutable. Without a build, a page that says how to make one.
 */
export function dashboardRoutes(options: { logger: Logger; folder?: string }): DashboardRoutes {
  const folder = options.folder ?? DASHBOARD_FOLDER;
  const built = existsSync(join(folder, 'index.html'));
  if (!built) options.logger.info({ folder }, 'the dashboard is not built: run npm run build:dashboard to serve it at /dashboard');
  const cache = new Map<string, Promise<Buffer | null>>();
  const read = (file: string): Promise<Buffer | null> => {
    let content = cache.get(file);
    if (!content) {
      content = readFile(join(folder, file)).catch(() => null);
      if (cache.size < MAX_CACHED_FILES) cache.set(file, content);
    }
    return content;
  };

  return (request, response) => {
    const path = pathOf(request.url);
    if (path !== DASHBOARD_PATH && !path.startsWith(`${DASHBOARD_PATH}/`)) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('GET or HEAD only\n');
      return true;
    }
    if (path === DASHBOARD_PATH) {
      response.writeHead(301, { location: `${DASHBOARD_PATH}/` }).end();
      return true;
    }
    if (!built) {
      response
        .writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
        .end('The dashboard is not built. Run `npm run build:dashboard` (npm ci runs it), then restart the server.\n');
      return true;
    }
    const assetsPrefix = `${DASHBOARD_PATH}/assets/`;
    if (path.startsWith(assetsPrefix)) {
      const name = path.slice(assetsPrefix.length);
      const extension = name.slice(name.lastIndexOf('.'));
      if (!ASSET_NAME.test(name) || !CONTENT_TYPES[extension]) {
        response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('no such file\n');
        return true;
      }
      void read(join('assets', name)).then((content) => {
        if (!content) {
          response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('no such file\n');
          return;
        }
        response.writeHead(200, {
          'content-type': CONTENT_TYPES[extension]!,
          'cache-control': 'public, max-age=31536000, immutable',
          ...SECURITY_HEADERS,
        });
        response.end(request.method === 'HEAD' ? undefined : content);
      });
      return true;
    }
    void read('index.html').then((content) => {
      if (!content) {
        response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('the dashboard build is incomplete\n');
        return;
      }
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', ...SECURITY_HEADERS });
      response.end(request.method === 'HEAD' ? undefined : content);
    });
    return true;
  };
}
