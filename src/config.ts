import { resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_RATE_LISTS, parseRateList, type RateLimitWindows } from './domain/rate-limits.js';
import { isPostgresUrl } from './storage/location.js';
import { SYNCHRONOUS_MODES, type SynchronousMode } from './storage/durability.js';
import { DEFAULT_WEBHOOK_RETRY_SCHEDULE, parseRetrySchedule } from './webhooks/retry-schedule.js';
import type { WebhookDeliverySettings } from './webhooks/delivery.js';

const portNumber = z.coerce.number().int().min(0).max(65535);

/** "10/s,100/m": see parseRateList. */
const retrySchedule = z
  .string()
  .optional()
  .transform((text, context) => {
    if (text === undefined) return [...DEFAULT_WEBHOOK_RETRY_SCHEDULE];
    const parsed = parseRetrySchedule(text);
    if (!parsed.ok) {
      context.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }
    if (parsed.delaysMs[0] !== 0) {
      context.addIssue({ code: 'custom', message: 'the first delay is the first attempt, which is immediate: start with 0s' });
      return z.NEVER;
    }
    return parsed.delaysMs;
  });

const rateList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, context) => {
      const windows = parseRateList(text);
      if (typeof windows === 'string') {
        context.addIssue({ code: 'custom', message: windows });
        return z.NEVER;
      }
      return windows;
    });

const environmentSchema = z.object({
  PORT: portNumber.default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  TASKPORT_DB: z.string().min(1).default('./data/taskport.db'),
  TASKPORT_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(8),
  TASKPORT_BOOTSTRAP_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  TASKPORT_RETRY_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(1000),
  TASKPORT_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
  TASKPORT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TASKPORT_REALTIME_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(250),
  TASKPORT_PUBLIC_URL: z
    .url({ protocol: /^https?$/, message: 'must be an http(s) URL, e.g. https://tasks.example.com' })
    .optional(),
  TASKPORT_GRAPHIQL: z.stringbool({ error: 'must be true or false' }).default(true),
  TASKPORT_SERVICES: z.string().optional(),
  TASKPORT_DEMO: z.stringbool({ error: 'must be true or false' }).default(true),
  TASKPORT_LEASE_SECONDS: z.coerce.number().min(1).max(3600).default(30),
  TASKPORT_DB_POOL_SIZE: z.coerce.number().int().min(1).max(1000).default(10),
  TASKPORT_MAX_SOCKETS_PER_KEY: z.coerce.number().int().min(1).max(100_000).default(20),
  TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY: z.coerce.number().int().min(1).max(1_000_000).default(100),
  TASKPORT_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(5000),
  TASKPORT_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  TASKPORT_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
  TASKPORT_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(5000),
  TASKPORT_INTROSPECTION: z.stringbool({ error: 'must be true or false' }).default(true),
  TASKPORT_RETENTION_DAYS: z.coerce.number().min(0).max(36_500).default(30),
  TASKPORT_SYNCHRONOUS: z.enum(SYNCHRONOUS_MODES, { error: `must be ${SYNCHRONOUS_MODES.join(' or ')}` }).default('NORMAL'),
  TASKPORT_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  TASKPORT_METRICS_PORT: portNumber.optional(),
  TASKPORT_RATE_LIMITS: z.stringbool({ error: 'must be true or false' }).default(true),
  TASKPORT_RATE_SUBMIT: rateList(DEFAULT_RATE_LISTS.submit),
  TASKPORT_RATE_OTHER: rateList(DEFAULT_RATE_LISTS.other),
  TASKPORT_RATE_EXECUTE: rateList(DEFAULT_RATE_LISTS.execute),
  TASKPORT_WEBHOOK_RETRY_SCHEDULE: retrySchedule,
  TASKPORT_WEBHOOK_ALLOW_PRIVATE: z.stringbool({ error: 'must be true or false' }).default(false),
  TASKPORT_WEBHOOK_MAX_IN_FLIGHT: z.coerce.number().int().min(0).max(10_000).default(16),
  TASKPORT_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
});

export interface RateLimitSettings {
  /** False: nothing is rate limited (a gateway in front does it, or a benchmark measures without). */
  enabled: boolean;
  /** Per key, for keys without limits of their own. */
  submit: RateLimitWindows;
  other: RateLimitWindows;
  /** Per execution token, on /execute/... */
  execute: RateLimitWindows;
}

export interface Config {
  port: number;
  host: string;
  database: string;
  concurrency: number;
  bootstrapToken: string | undefined;
  retryBaseMs: number;
  shutdownGraceMs: number;
  logLevel: z.infer<typeof environmentSchema>['TASKPORT_LOG_LEVEL'];
  /** How long a real-time call waits for a busy allocation before a 503. */
  realtimeWaitMs: number;
  /** Where clients reach this server; execution URLs are built from it, else from the request. */
  publicUrl: string | undefined;
  /** Whether a browser's GET /graphql gets GraphiQL; servers reachable by strangers may not want it. */
  graphiql: boolean;
  /** Absolute paths of the modules whose services are offered, besides the demo's. */
  services: string[];
  /** Whether the built-in demo service is offered; production servers may not want demo.sleep. */
  demo: boolean;
  /** How long a running task stays its worker's without a renewal: a dead worker's tasks wait this long. */
  leaseMs: number;
  /** PostgreSQL: connections this process keeps open, besides the one that listens for events. */
  poolSize: number;
  /** Open graphql-ws sockets per API key, in this process. */
  maxSocketsPerKey: number;
  /** Open subscriptions per API key over graphql-ws and SSE together, in this process. */
  maxSubscriptionsPerKey: number;
  /** Open TCP connections (HTTP and WebSocket) this process accepts at once. */
  maxConnections: number;
  /** How long a client may take to send a whole request, headers and body. */
  requestTimeoutMs: number;
  /** How long a client may take to send a request's headers. */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number;
  /** Whether the schema answers introspection (__schema, __type); GraphiQL needs it. */
  introspection: boolean;
  /** Days terminal tasks are kept after they completed, then deleted with their logs and results; 0 keeps them for ever. */
  retentionDays: number;
  /** SQLite: FULL syncs every commit to disk (power-loss durability); ignored on PostgreSQL. */
  synchronous: SynchronousMode;
  /** When set, GET /metrics requires "Authorization: Bearer <it>"; open otherwise, as exporters are. */
  metricsToken: string | undefined;
  /** A worker-only process serves /readyz and /metrics on this port; processes with an API serve them on theirs. */
  metricsPort: number | undefined;
  rateLimits: RateLimitSettings;
  webhooks: WebhookDeliverySettings;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const env = parsed.data;
  return {
    port: env.PORT,
    host: env.HOST,
    database: databaseLocation(env.TASKPORT_DB),
    concurrency: env.TASKPORT_CONCURRENCY,
    bootstrapToken: env.TASKPORT_BOOTSTRAP_TOKEN,
    retryBaseMs: env.TASKPORT_RETRY_BASE_MS,
    shutdownGraceMs: env.TASKPORT_SHUTDOWN_GRACE_MS,
    logLevel: env.TASKPORT_LOG_LEVEL,
    realtimeWaitMs: env.TASKPORT_REALTIME_WAIT_MS,
    publicUrl: env.TASKPORT_PUBLIC_URL?.replace(/\/+$/, ''),
    graphiql: env.TASKPORT_GRAPHIQL,
    services: modulePaths(env.TASKPORT_SERVICES),
    demo: env.TASKPORT_DEMO,
    leaseMs: Math.round(env.TASKPORT_LEASE_SECONDS * 1000),
    poolSize: env.TASKPORT_DB_POOL_SIZE,
    maxSocketsPerKey: env.TASKPORT_MAX_SOCKETS_PER_KEY,
    maxSubscriptionsPerKey: env.TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY,
    maxConnections: env.TASKPORT_MAX_CONNECTIONS,
    requestTimeoutMs: env.TASKPORT_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: env.TASKPORT_HEADERS_TIMEOUT_MS,
    keepAliveTimeoutMs: env.TASKPORT_KEEP_ALIVE_TIMEOUT_MS,
    introspection: env.TASKPORT_INTROSPECTION,
    retentionDays: env.TASKPORT_RETENTION_DAYS,
    synchronous: env.TASKPORT_SYNCHRONOUS,
    metricsToken: env.TASKPORT_METRICS_TOKEN,
    metricsPort: env.TASKPORT_METRICS_PORT,
    rateLimits: {
      enabled: env.TASKPORT_RATE_LIMITS,
      submit: env.TASKPORT_RATE_SUBMIT,
      other: env.TASKPORT_RATE_OTHER,
      execute: env.TASKPORT_RATE_EXECUTE,
    },
    webhooks: {
      retryScheduleMs: env.TASKPORT_WEBHOOK_RETRY_SCHEDULE,
      allowPrivate: env.TASKPORT_WEBHOOK_ALLOW_PRIVATE,
      maxInFlight: env.TASKPORT_WEBHOOK_MAX_IN_FLIGHT,
      timeoutMs: env.TASKPORT_WEBHOOK_TIMEOUT_MS,
    },
  };
}

/** A postgres:// URL as given; a SQLite path resolved against the working directory. */
export function databaseLocation(value: string): string {
  if (value === ':memory:' || isPostgresUrl(value)) return value;
  return resolve(value);
}

/** A comma-separated list of module paths, each resolved against the working directory. */
export function modulePaths(list: string | undefined): string[] {
  return (list ?? '')
    .split(',')
    .map((path) => path.trim())
    .filter((path) => path !== '')
    .map((path) => resolve(path));
}

const DAY_MS = 86_400_000;

/** The engine's retentionMs: null when retention is off. */
export function retentionMs(config: Pick<Config, 'retentionDays'>): number | null {
  return config.retentionDays > 0 ? Math.round(config.retentionDays * DAY_MS) : null;
}
