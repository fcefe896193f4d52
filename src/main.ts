import type { Logger } from 'pino';
import type { Catalog } from './catalog/index.js';
import { loadCatalog } from './catalog/load.js';
import type { Config } from './config.js';
import { createEngine, type Engine } from './engine/index.js';
import { createServer, type RunningServer } from './http/server.js';
import { openStorage } from './storage/index.js';

export interface RunningTaskport {
  url: string;
  port: number;
  engine: Engine;
  /** Stops claiming, lets running tasks finish within the grace period, closes connections and the database. */
  stop(): Promise<void>;
}

/**
 * The composition root: the catalog, storage, then the engine and its worker, then HTTP.
 * `catalog` replaces the services of the configuration (tests bring handlers of their own).
 */
export async function startTaskport(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningTaskport> {
  // First: a bad services module must stop the start before it opens the database or the port.
  const catalog = options.catalog ?? (await loadCatalog({ services: config.services, demo: config.demo }));
  const offered = catalog.services().map((service) => service.slug);
  if (offered.length === 0) {
    // An API-only process is a fair thing to start, but most likely a forgotten --services.
    logger.warn('no services: the demo is off and no --services or TASKPORT_SERVICES were given, so nothing can be submitted');
  }
  const storage = await openStorage(config.database);
  const engine = createEngine({
    storage,
    catalog,
    logger: logger.child({ component: 'engine' }),
    concurrency: config.concurrency,
    retryBaseMs: config.retryBaseMs,
    realtimeWaitMs: config.realtimeWaitMs,
    leaseMs: config.leaseMs,
  });
  // Listening comes first: a start that cannot listen must not create the first key it would
  // never print, nor requeue the running tasks of the server that holds the port.
  let server: RunningServer;
  try {
    server = await createServer({
      engine,
      host: config.host,
      port: config.port,
      logger,
      publicUrl: config.publicUrl,
      graphiql: config.graphiql,
    });
  } catch (error) {
    await storage.close();
    throw error;
  }
  const bootstrapped = await engine.bootstrap(config.bootstrapToken);
  await engine.start();
  if (bootstrapped?.generated) {
    process.stdout.write(
      `\nCreated the first API key (ADMIN, organisation "default"). It is shown only this once:\n\n` +
        `    ${bootstrapped.token}\n\n` +
        `Send it as "Authorization: Bearer <key>". In GraphiQL, paste {"Authorization": "Bearer <key>"} into Headers.\n\n`,
    );
  }
  logger.info(
    { url: server.url, database: config.database, concurrency: config.concurrency, services: offered },
    'Taskport is ready',
  );

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      await engine.stop(config.shutdownGraceMs);
      await server.close();
      await storage.close();
    })();
    return stopping;
  };
  return { url: server.url, port: server.port, engine, stop };
}

export interface StartOptions {
  /** The services to serve; those of `config.services` and `config.demo` when absent. */
  catalog?: Catalog;
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
