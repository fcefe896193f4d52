import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { TaskEngine } from '../domain/api.js';
import { metricsRegistry, queueDepth, queueOldestDueAge, startProcessMetrics, tasksByState } from '../metrics.js';

export const READINESS_PATH = '/readyz';
export const METRICS_PATH = '/metrics';

export interface OperationsOptions {
  engine: TaskEngine;
  logger: Logger;
  /** When set, /metrics requires "Authorization: Bearer <it>". */
  metricsToken?: string | undefined;
}

/** Answers the request when it is for /readyz or /metrics, and says whether it did. */
export type OperationsRoutes = (request: IncomingMessage, response: ServerResponse) => boolean;

const sha256 = (text: string) => createHash('sha256').update(text).digest();
const BEARER = /^Bearer\s+(\S+)\s*$/i;

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  response.end(JSON.stringify(body));
}

function pathOf(url: string | undefined): string {
  const query = url?.indexOf('?') ?? -1;
  return query < 0 ? (url ?? '') : url!.slice(0, query);
}

/** The probes and the scrape: plain HTTP beside yoga, as load balancers and Prometheus expect them. */
export function operationsRoutes(options: OperationsOptions): OperationsRoutes {
  const { engine, logger } = options;
  // Compared as hashes, so that the comparison takes as long whatever the length sent.
  const expectedToken = options.metricsToken ? sha256(options.metricsToken) : null;
  startProcessMetrics();

  const answerReadiness = async (response: ServerResponse) => {
    const readiness = await engine.readiness();
    sendJson(response, readiness.status === 'ready' ? 200 : 503, readiness);
  };

  const authorised = (request: IncomingMessage): boolean => {
    if (!expectedToken) return true;
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    return token !== undefined && timingSafeEqual(sha256(token), expectedToken);
  };

  const refreshTaskGauges = async () => {
    tasksByState.reset();
    queueDepth.reset();
    queueOldestDueAge.reset();
    try {
      const stats = await engine.taskStats();
      const now = Date.now();
      for (const [state, count] of Object.entries(stats.byState)) tasksByState.set({ state }, count);
      for (const queue of stats.queues) {
        const labels = { service: queue.service, action: queue.action };
        queueDepth.set(labels, queue.pending);
        queueOldestDueAge.set(labels, Math.max(0, now - queue.earliestDueAt) / 1000);
      }
    } catch (error) {
      // The process's own metrics still go out; the database's are missing from this scrape.
      logger.warn({ err: error }, 'metrics: reading task figures from the database failed');
    }
  };

  const answerMetrics = async (request: IncomingMessage, response: ServerResponse) => {
    if (!authorised(request)) {
      sendJson(response, 401, { error: { code: 'UNAUTHENTICATED', message: 'Send the metrics token as "Authorization: Bearer <token>"' } }, {
        'www-authenticate': 'Bearer realm="metrics"',
      });
      return;
    }
    await refreshTaskGauges();
    const text = await metricsRegistry.metrics();
    response.writeHead(200, { 'content-type': metricsRegistry.contentType, 'cache-control': 'no-store' });
    response.end(text);
  };

  const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => Promise<void>> = {
    [READINESS_PATH]: (_request, response) => answerReadiness(response),
    [METRICS_PATH]: answerMetrics,
  };

  return (request, response) => {
    const route = routes[pathOf(request.url)];
    if (!route) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendJson(response, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'Use GET' } }, { allow: 'GET, HEAD' });
      return true;
    }
    route(request, response).catch((error: unknown) => {
      logger.error({ err: error, path: pathOf(request.url) }, 'operations endpoint failed');
      if (!response.headersSent) sendJson(response, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' } });
      else response.destroy();
    });
    return true;
  };
}

/**
 * /readyz and /metrics on a port of their own, for a worker-only process (TASKPORT_METRICS_PORT):
 * it serves no API, and its counters of the tasks it runs would otherwise not reach Prometheus.
 */
export async function listenForOperations(
  routes: OperationsRoutes,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    if (routes(request, response)) return;
    sendJson(response, 404, { error: { code: 'NOT_FOUND', message: `This process serves ${READINESS_PATH} and ${METRICS_PATH} only` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
