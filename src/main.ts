import type { Logger } from 'pino';
import type { Catalog } from './catalog/index.js';
import { loadCatalog } from './catalog/load.js';
import { retentionMs, type Config } from './config.js';
import { createEngine, type Engine } from './engine/index.js';
import { servedActions } from './engine/worker.js';
import { listenForOperations, operationsRoutes } from './http/operations.js';
import { dashboardRoutes } from './http/dashboard.js';
import { createServer, type RunningServer } from './http/server.js';
import { createRequestRateLimits, UNLIMITED } from './limits/requests.js';
import { redactedLocation } from './storage/errors.js';
import { openStorage, type ServedActions } from './storage/index.js';
import { observeTaskOutcomes } from './task-metrics.js';
import { webhookAttemptDuration, webhookAttempts } from './metrics.js';

/**
 * What this process does: `all` serves the API and runs tasks, `api` only serves the API (its
 * tasks are run by `worker` processes on the same database), `worker` only runs tasks.
 */
export type ProcessRole = 'all' | 'api' | 'worker';

interface RunningProcess {
  role: ProcessRole;
  engine: Engine;
  /** Stops claiming, lets running tasks finish within the grace period, closes connections and the database. */
  stop(): Promise<void>;
}

/** A process that serves the API (role `all` or `api`). */
export interface RunningTaskport extends RunningProcess {
  role: 'all' | 'api';
  url: string;
  port: number;
}

/** A worker-only process: it listens on no port. */
export interface RunningWorker extends RunningProcess {
  role: 'worker';
  url: null;
  port: null;
  /** Where it serves /readyz and /metrics: TASKPORT_METRICS_PORT (the port chosen for 0), or null without one. */
  metricsPort: number | null;
}

/** `actions` names an action the catalog does not have: the start stops before anything opens. */
export class UnknownActionError extends Error {
  override name = 'UnknownActionError';
}

/** `actions` checked against the catalog; every action of the catalog when absent. */
function actionsToServe(catalog: Catalog, actions: ServedActions | undefined): ServedActions {
  if (!actions) return servedActions(catalog);
  for (const { service, action } of actions) {
    if (catalog.action(service, action)) continue;
    const known = servedActions(catalog).map((served) => `${served.service}.${served.action}`);
    throw new UnknownActionError(
      `${service}.${action} is not an action of the loaded services (they have: ${known.join(', ') || 'none'})`,
    );
  }
  return actions;
}

/**
 * The composition root: the catalog, storage, then the engine and its worker, then HTTP.
 * `catalog` replaces the services of the configuration (tests bring handlers of their own).
 */
export async function startTaskport(
  config: Config,
  logger: Logger,
  options?: StartOptions & { role?: 'all' | 'api' },
): Promise<RunningTaskport>;
export async function startTaskport(
  config: Config,
  logger: Logger,
  options: StartOptions & { role: 'worker' },
): Promise<RunningWorker>;
export async function startTaskport(
  config: Config,
  logger: Logger,
  options?: StartOptions,
): Promise<RunningTaskport | RunningWorker>;
export async function startTaskport(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningTaskport | RunningWorker> {
  const role = options.role ?? 'all';
  const runsWorker = role !== 'api';
  const servesApi = role !== 'worker';
  // First: a bad services module or action must stop the start before it opens the database or the port.
  const catalog = options.catalog ?? (await loadCatalog({ services: config.services, demo: config.demo }));
  const actions = runsWorker ? actionsToServe(catalog, options.actions) : [];
  const offered = catalog.services().map((service) => service.slug);
  if (offered.length === 0) {
    // An API-only process is a fair thing to start, but most likely a forgotten --services.
    logger.warn('no services: the demo is off and no --services or TASKPORT_SERVICES were given, so nothing can be submitted');
  }
  const storageLogger = logger.child({ component: 'storage' });
  const storage = await openStorage(config.database, {
    poolSize: config.poolSize,
    warn: (message, error) => storageLogger.warn({ err: error }, message),
    synchronous: config.synchronous,
  });
  const events = observeTaskOutcomes(storage.events);
  const engine = createEngine({
    storage,
    events,
    catalog,
    logger: logger.child({ component: 'engine' }),
    concurrency: config.concurrency,
    retryBaseMs: config.retryBaseMs,
    realtimeWaitMs: config.realtimeWaitMs,
    leaseMs: config.leaseMs,
    retentionMs: retentionMs(config),
    worker: runsWorker,
    actions,
    rateLimits: { submit: config.rateLimits.submit, other: config.rateLimits.other },
    webhooks: config.webhooks,
    onWebhookAttempt: ({ outcome, durationMs }) => {
      webhookAttempts.inc({ outcome });
      webhookAttemptDuration.observe({ outcome }, durationMs / 1000);
    },
  });
  // Listening comes first: a start that cannot listen must not create the first key it would
  // never print, nor requeue the running tasks of the server that holds the port.
  let server: RunningServer | null = null;
  let rateLimits = UNLIMITED;
  if (servesApi) {
    try {
      if (config.rateLimits.enabled) {
        rateLimits = await createRequestRateLimits({
          database: config.database,
          engine,
          anonymous: config.rateLimits.other,
          execute: config.rateLimits.execute,
          logger: logger.child({ component: 'rate-limits' }),
        });
      }
      server = await createServer({
        engine,
        host: config.host,
        port: config.port,
        logger,
        publicUrl: config.publicUrl,
        graphiql: config.graphiql,
        operations: operationsRoutes({ engine, logger, metricsToken: config.metricsToken }),
        dashboard: dashboardRoutes({ logger, ...(options.dashboardFolder ? { folder: options.dashboardFolder } : {}) }),
        transport: config,
        rateLimits,
      });
    } catch (error) {
      await rateLimits.close();
      await storage.close();
      throw error;
    }
  }
  let operationsListener: Awaited<ReturnType<typeof listenForOperations>> | null = null;
  if (!server && config.metricsPort !== undefined) {
    try {
      const routes = operationsRoutes({ engine, logger, metricsToken: config.metricsToken });
      operationsListener = await listenForOperations(routes, config.host, config.metricsPort);
    } catch (error) {
      await storage.close();
      throw error;
    }
  }
  // Only a process with an API makes the first key: a worker's log is not where an operator
  // looks for it, and the API process that must run beside the worker makes it on its start.
  const bootstrapped = server ? await engine.bootstrap(config.bootstrapToken) : null;
  await engine.start();
  if (bootstrapped?.generated) {
    process.stdout.write(
      `\nCreated the first API key (ADMIN, organisation "default"). It is shown only this once:\n\n` +
        `    ${bootstrapped.token}\n\n` +
        `Send it as "Authorization: Bearer <key>". In GraphiQL, paste {"Authorization": "Bearer <key>"} into Headers.\n\n`,
    );
  }
  logger.info(
    {
      role,
      ...(server ? { url: server.url } : {}),
      ...(operationsListener ? { metricsPort: operationsListener.port } : {}),
      database: redactedLocation(config.database),
      services: offered,
      actions: actions.map(({ service, action }) => `${service}.${action}`),
      ...(runsWorker ? { concurrency: config.concurrency } : {}),
    },
    'Taskport is ready',
  );

  // The worker's timers do not hold the process: like a listening server, a running worker does, until stopped.
  const keepAlive = server ? null : setInterval(() => {}, 2 ** 31 - 1);
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      await engine.stop(config.shutdownGraceMs);
      if (keepAlive) clearInterval(keepAlive);
      await operationsListener?.close();
      await server?.close();
      await rateLimits.close();
      await storage.close();
    })();
    return stopping;
  };
  if (!server) return { role: 'worker', url: null, port: null, metricsPort: operationsListener?.port ?? null, engine, stop };
  return { role: role === 'api' ? 'api' : 'all', url: server.url, port: server.port, engine, stop };
}

export interface StartOptions {
  /** The services to serve; those of `config.services` and `config.demo` when absent. */
  catalog?: Catalog;
  /** `all` when absent. */
  role?: ProcessRole;
  /** The actions the worker claims, each one of the catalog's; all of them when absent. Ignored by role `api`. */
  actions?: ServedActions;
  /** The built dashboard; the package's dist-dashboard when absent. */
  dashboardFolder?: string;
}

/**
 * A handler's own callbacks (a timer that throws, a promise nobody awaits) fail outside any
 * attempt, where no try can catch them. Node would end the process, and with it every running
 * task of every organisation: the server logs them and serves on instead.
 */
function surviveHandlerFaults(logger: Logger): void {
  process.on('uncaughtException', (error) => {
    logger.error({ err: error }, 'uncaught exception, most likely from a handler callback outside its attempt; serving on');
  });
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled rejection, most likely from a handler promise nobody awaited; serving on');
  });
}

export async function serve(config: Config, logger: Logger, options: StartOptions = {}): Promise<void> {
  surviveHandlerFaults(logger);
  const starting = startTaskport(config, logger, options);
  // Listened for before the ready line, so that a signal sent as soon as it appears is not lost;
  // a start that fails is reported by the caller.
  const shutdown = (signal: NodeJS.Signals) => {
    logger.info({ signal, grace: config.shutdownGraceMs }, 'shutting down: no new tasks are claimed');
    starting.then((taskport) => taskport.stop(), () => {}).then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await starting;
}
