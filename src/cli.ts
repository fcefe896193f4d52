import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ServiceDefinitionError } from './catalog/definitions.js';
import { loadCatalog } from './catalog/load.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { parseRateList } from './domain/rate-limits.js';
import { FAIR_SHARE_BOUNDS, ROLES, type Role } from './domain/types.js';
import { createEngine, ValidationError } from './engine/index.js';
import { createLogger } from './logger.js';
import type { ProcessRole } from './main.js';
import { redactedLocation } from './storage/errors.js';
import { DatabaseOpenError, migrateDatabase, openStorage, type ServedActions } from './storage/index.js';

function configOrExit() {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

const program = new Command('taskport').description('Self-hostable asynchronous task API over GraphQL');

interface CatalogFlags {
  services?: string[];
  /** False only when --no-demo was given. */
  demo: boolean;
}

/** The configuration with the catalog flags applied: each overrides its variable. */
function configWith(flags: CatalogFlags): Config {
  const config = configOrExit();
  return {
    ...config,
    services: flags.services ? flags.services.map((path) => resolve(path)) : config.services,
    demo: flags.demo && config.demo,
  };
}

function catalogFlags(command: Command): Command {
  return command
    .option(
      '--services <path>',
      'a module whose services to offer (repeatable; overrides TASKPORT_SERVICES)',
      (path: string, earlier: string[] | undefined) => [...(earlier ?? []), path],
    )
    .option('--no-demo', 'do not offer the built-in demo service (overrides TASKPORT_DEMO)');
}

interface WorkerFlags {
  actions?: ServedActions;
  concurrency?: number;
}

/** A refused flag value exits 2, as a refused variable does, where commander's default is 1. */
function usageError(message: string): InvalidArgumentError {
  const error = new InvalidArgumentError(message);
  error.exitCode = 2;
  return error;
}

function usageExit(message: string): never {
  process.stderr.write(`taskport: ${message}\n`);
  process.exit(2);
}

function parseActions(list: string): ServedActions {
  const names = [...new Set(list.split(',').map((name) => name.trim()).filter((name) => name !== ''))];
  if (names.length === 0) throw usageError('must name at least one action, e.g. demo.echo');
  return names.map((name) => {
    const match = /^([^.]+)\.([^.]+)$/.exec(name);
    if (!match) throw usageError(`${name} is not service.action, e.g. demo.echo`);
    return { service: match[1]!, action: match[2]! };
  });
}

/** TASKPORT_CONCURRENCY's bound too. */
const MAX_CONCURRENCY = 1024;

function parseConcurrency(value: string): number {
  const concurrency = Number(value);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw usageError(`must be a whole number from 1 to ${MAX_CONCURRENCY}`);
  }
  return concurrency;
}

function workerFlags(command: Command): Command {
  return command
    .option('--actions <list>', 'comma-separated service.action the worker claims, e.g. demo.echo,images.resize (default: every action)', parseActions)
    .option('--concurrency <n>', `tasks the worker runs at once, 1 to ${MAX_CONCURRENCY} (overrides TASKPORT_CONCURRENCY)`, parseConcurrency);
}

/** Starts a process of `role` and stays until a signal stops it. */
async function start(role: ProcessRole, flags: CatalogFlags & WorkerFlags): Promise<void> {
  const configured = configWith(flags);
  const config = { ...configured, concurrency: flags.concurrency ?? configured.concurrency };
  // Outside production, graphql-js checks every type test against other copies of itself: about
  // a tenth of the time of a 10,000-id taskStatuses. It must be set before graphql loads.
  process.env.NODE_ENV ??= 'production';
  const { serve, UnknownActionError } = await import('./main.js');
  try {
    await serve(config, createLogger(config.logLevel), { role, ...(flags.actions ? { actions: flags.actions } : {}) });
  } catch (error) {
    if (error instanceof UnknownActionError) usageExit(`--actions: ${error.message}`);
    throw error;
  }
}

workerFlags(catalogFlags(program.command('serve')))
  .description('start the API and the worker (configured by environment variables, see README)')
  .option('--no-worker', 'serve the API only: tasks are accepted here and run by `taskport worker` processes')
  .action(async (flags: CatalogFlags & WorkerFlags & { worker: boolean }) => {
    if (!flags.worker && (flags.actions || flags.concurrency !== undefined)) {
      usageExit('--no-worker runs no tasks: --actions and --concurrency are for a process with a worker');
    }
    await start(flags.worker ? 'all' : 'api', flags);
  });

workerFlags(catalogFlags(program.command('worker')))
  .description('run tasks only, listening on no port, beside `taskport serve --no-worker` on the same database')
  .action((flags: CatalogFlags & WorkerFlags) => start('worker', flags));

program
  .command('migrate')
  .description('create or upgrade the database schema, then exit')
  .action(async () => {
    const config = configOrExit();
    await migrateDatabase(config.database);
    process.stdout.write(`database ${redactedLocation(config.database)} is up to date\n`);
  });

const ROLE_NAMES = ROLES.map((role) => role.toLowerCase()).join(' or ');

type KeyCreateFlags = CatalogFlags & {
  organisation: string;
  role: Role;
  name: string;
  permissions?: unknown;
  rateSubmit?: ReturnType<typeof rateListFlag>;
  rateOther?: ReturnType<typeof rateListFlag>;
};

/** "5/s,50/m", as TASKPORT_RATE_SUBMIT takes it. */
function rateListFlag(value: string) {
  const windows = parseRateList(value);
  if (typeof windows === 'string') throw new InvalidArgumentError(windows);
  return windows;
}

const key = program.command('key').description('manage API keys');
catalogFlags(key.command('create'))
  .description('create an API key and print its token alone on stdout (the organisation is created if new)')
  .requiredOption('--organisation <name>', 'organisation the key belongs to')
  .option('--role <role>', ROLE_NAMES, (value) => {
    const role = value.toUpperCase();
    if (!(ROLES as readonly string[]).includes(role)) throw new InvalidArgumentError(`must be ${ROLE_NAMES}`);
    return role as Role;
  }, 'MEMBER' satisfies Role)
  .option('--name <name>', 'a name to recognise the key by', 'cli')
  .option('--permissions <json>', 'what the key may run, e.g. \'{"demo":{"echo":{}}}\' (default: everything)', (value) => {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw new InvalidArgumentError('must be JSON');
    }
  })
  .option('--rate-submit <list>', "the key's own submit limit, e.g. 5/s,50/m (default: TASKPORT_RATE_SUBMIT)", rateListFlag)
  .option('--rate-other <list>', "the key's own limit of every other operation, e.g. 50/s,900/m (default: TASKPORT_RATE_OTHER)", rateListFlag)
  .action(async (options: KeyCreateFlags) => {
    const config = configWith(options);
    // Permissions may name the user's services: they are checked against the catalog serve offers.
    const catalog = await loadCatalog({ services: config.services, demo: config.demo });
    const storage = await openStorage(config.database);
    try {
      const engine = createEngine({ storage, catalog });
      const created = await engine.provisionApiKey({
        organisation: options.organisation,
        role: options.role,
        name: options.name,
        permissions: options.permissions,
        rateLimits: { submit: options.rateSubmit, other: options.rateOther },
      });
      process.stdout.write(`${created.token}\n`);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      process.stderr.write(`--${error.field}: ${error.message}\n`);
      process.exitCode = 2;
    } finally {
      await storage.close();
    }
  });

/** A whole number within `bounds`, for a flag. */
function wholeNumberIn(bounds: { min: number; max: number }) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < bounds.min || number > bounds.max) {
      throw new InvalidArgumentError(`must be a whole number from ${bounds.min} to ${bounds.max}`);
    }
    return number;
  };
}

const organisation = program.command('org').description("manage organisations' share of the queues");
organisation
  .command('set <name>')
  .description("set an organisation's fair-share weight and concurrency cap, then print them")
  .option('--weight <n>', `its share of each queue against the others waiting there (default 1; ${FAIR_SHARE_BOUNDS.weight.min} to ${FAIR_SHARE_BOUNDS.weight.max})`, wholeNumberIn(FAIR_SHARE_BOUNDS.weight))
  .option('--max-concurrency <n>', 'the most of its tasks that run at once over every queue and worker, or "none"', (value) =>
    value === 'none' ? value : wholeNumberIn(FAIR_SHARE_BOUNDS.maxConcurrency)(value),
  )
  .action(async (name: string, options: { weight?: number; maxConcurrency?: number | 'none' }) => {
    if (options.weight === undefined && options.maxConcurrency === undefined) usageExit('org set: give --weight, --max-concurrency or both');
    const config = configOrExit();
    const storage = await openStorage(config.database);
    try {
      const { weight, maxConcurrency } = options;
      const changed = await storage.records.setOrganisationShare(name, {
        ...(weight === undefined ? {} : { weight }),
        ...(maxConcurrency === undefined ? {} : { maxConcurrency: maxConcurrency === 'none' ? null : maxConcurrency }),
      });
      if (!changed) {
        process.stderr.write(`taskport: no organisation is named ${JSON.stringify(name)} (keys create them: key create --organisation)\n`);
        process.exitCode = 2;
        return;
      }
      process.stdout.write(`${JSON.stringify({ organisation: changed.name, weight: changed.weight, maxConcurrency: changed.maxConcurrency })}\n`);
    } finally {
      await storage.close();
    }
  });

program
  .command('print-schema')
  .description('print the GraphQL schema (SDL) the server serves')
  .action(async () => {
    const { printSchemaText } = await import('./graphql/schema.js');
    process.stdout.write(printSchemaText());
  });

/** Failures an operator causes and can fix, as one line naming the setting to change. */
function operatorFault(error: unknown): string | null {
  if (error instanceof ServiceDefinitionError) return error.message;
  if (error instanceof DatabaseOpenError) return `${error.message} (set TASKPORT_DB to another path)`;
  const { code, port, address } = (error ?? {}) as NodeJS.ErrnoException & { port?: number; address?: string };
  if (code === 'EADDRINUSE') return `port ${port} is in use on ${address}; set PORT to another port`;
  if (code === 'EACCES' && port !== undefined) return `port ${port} needs privileges; set PORT to 1024 or above`;
  if (code === 'EADDRNOTAVAIL') return `${address} is not an address of this machine; set HOST`;
  return null;
}

try {
  await program.parseAsync();
} catch (error) {
  const fault = operatorFault(error);
  if (!fault) throw error;
  process.stderr.write(`taskport: ${fault}\n`);
  process.exit(1);
}
