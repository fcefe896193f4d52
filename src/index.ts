/**
 * The package's public API: what a user's services file imports, and a server to embed in a Node
 * program. Anything not exported here is internal and may change without notice.
 */
import { loadCatalog, type ServiceSource } from './catalog/load.js';
import { ConfigError, loadConfig, type Config } from './config.js';

export { defineAction, defineService, TaskFailure } from './catalog/index.js';
export type {
  ActionDefinition,
  ActionInput,
  Execution,
  Handler,
  HandlerAccount,
  HandlerContext,
  HandlerLogLevel,
  HandlerTask,
  ParameterDefinition,
  ParameterType,
  ParamsOf,
  ServiceDefinition,
  TaskFailureOptions,
} from './catalog/index.js';
export { ServiceDefinitionError } from './catalog/load.js';
export { ConfigError } from './config.js';

export type LogLevel = Config['logLevel'];

/**
 * `taskport serve`'s settings under camel-case names, each named after the variable it stands for;
 * an absent one takes that variable's default (the README's Configuration table). The process's
 * environment is not read.
 */
export interface TaskportOptions {
  /** PORT; 0 for any free port. */
  port?: number;
  /** HOST */
  host?: string;
  /** TASKPORT_DB: a SQLite file, relative to the working directory, or ':memory:'; or a postgres:// URL. */
  database?: string;
  /** TASKPORT_DB_POOL_SIZE: PostgreSQL connections of this process. */
  poolSize?: number;
  /** TASKPORT_LEASE_SECONDS: how long a dead worker's tasks wait before another takes them. */
  leaseSeconds?: number;
  /** TASKPORT_CONCURRENCY */
  concurrency?: number;
  /** TASKPORT_BOOTSTRAP_TOKEN: the first ADMIN key of an empty database; one is generated and printed when absent. */
  bootstrapToken?: string;
  /** TASKPORT_RETRY_BASE_MS */
  retryBaseMs?: number;
  /** TASKPORT_SHUTDOWN_GRACE_MS: how long stop() lets running tasks finish. */
  shutdownGraceMs?: number;
  /** TASKPORT_LOG_LEVEL */
  logLevel?: LogLevel;
  /** TASKPORT_REALTIME_WAIT_MS */
  realtimeWaitMs?: number;
  /** TASKPORT_PUBLIC_URL */
  publicUrl?: string;
  /** TASKPORT_GRAPHIQL */
  graphiql?: boolean;
  /** TASKPORT_SERVICES: module paths (relative to the working directory) or the definitions themselves. */
  services?: readonly ServiceSource[];
  /** TASKPORT_DEMO: whether the demo service is offered too. */
  demo?: boolean;
}

export interface RunningTaskport {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  url: string;
  /** Stops claiming, lets running tasks finish within the grace period, closes connections and the database. */
  stop(): Promise<void>;
}

type Setting = Exclude<keyof TaskportOptions, 'services'>;

/**
 * Each setting, the variable it stands for and the kind of value it takes: the values are then
 * checked by the same rules as the environment's.
 */
const SETTINGS: Record<Setting, { variable: string; kind: 'number' | 'string' | 'boolean' }> = {
  port: { variable: 'PORT', kind: 'number' },
  host: { variable: 'HOST', kind: 'string' },
  database: { variable: 'TASKPORT_DB', kind: 'string' },
  poolSize: { variable: 'TASKPORT_DB_POOL_SIZE', kind: 'number' },
  leaseSeconds: { variable: 'TASKPORT_LEASE_SECONDS', kind: 'number' },
  concurrency: { variable: 'TASKPORT_CONCURRENCY', kind: 'number' },
  bootstrapToken: { variable: 'TASKPORT_BOOTSTRAP_TOKEN', kind: 'string' },
  retryBaseMs: { variable: 'TASKPORT_RETRY_BASE_MS', kind: 'number' },
  shutdownGraceMs: { variable: 'TASKPORT_SHUTDOWN_GRACE_MS', kind: 'number' },
  logLevel: { variable: 'TASKPORT_LOG_LEVEL', kind: 'string' },
  realtimeWaitMs: { variable: 'TASKPORT_REALTIME_WAIT_MS', kind: 'number' },
  publicUrl: { variable: 'TASKPORT_PUBLIC_URL', kind: 'string' },
  graphiql: { variable: 'TASKPORT_GRAPHIQL', kind: 'boolean' },
  demo: { variable: 'TASKPORT_DEMO', kind: 'boolean' },
};

function configFrom(options: TaskportOptions): Config {
  if (typeof options !== 'object' || options === null) throw new ConfigError('startTaskport: options must be an object');
  const problems: string[] = [];
  const variables: Record<string, string> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || name === 'services') continue;
    const setting = Object.hasOwn(SETTINGS, name) ? SETTINGS[name as Setting] : undefined;
    if (!setting) {
      problems.push(`  ${name}: is not an option`);
    } else if (typeof value !== setting.kind || (typeof value === 'number' && !Number.isFinite(value))) {
      problems.push(`  ${name}: must be a ${setting.kind}`);
    } else if (value === '') {
      // The environment takes an empty variable for an absent one; an option given empty is a mistake.
      problems.push(`  ${name}: must not be empty`);
    } else {
      // One setting at a time, so that a refusal is told under the option's name, not its variable's.
      try {
        loadConfig({ [setting.variable]: String(value) });
        variables[setting.variable] = String(value);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        const reasons = error.message.split('\n').slice(1).map((line) => line.trim().replace(`${setting.variable}: `, ''));
        problems.push(`  ${name}: ${reasons.join('; ')}`);
      }
    }
  }
  if (options.services !== undefined && !Array.isArray(options.services)) {
    problems.push('  services: must be an array of module paths or service definitions');
  }
  if (problems.length > 0) throw new ConfigError(`Invalid startTaskport options:\n${problems.join('\n')}`);
  return loadConfig(variables);
}

/**
 * Starts the API and its worker in this process, as `taskport serve` does, and resolves once it
 * listens. Unlike `taskport serve`, it leaves the process's signals and uncaught errors to the
 * program that embeds it.
 */
export async function startTaskport(options: TaskportOptions = {}): Promise<RunningTaskport> {
  const config = configFrom(options);
  // Loaded here rather than at the top: a services file imports this module for defineService
  // alone, and need not load the server with it.
  const [{ startTaskport: start }, { createLogger }] = await Promise.all([import('./main.js'), import('./logger.js')]);
  const catalog = await loadCatalog({ services: options.services ?? [], demo: config.demo });
  const taskport = await start(config, createLogger(config.logLevel), { catalog });
  return { url: taskport.url, stop: () => taskport.stop() };
}
