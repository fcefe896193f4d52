import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

// Every metric Taskport exports, declared once. A registry of its own rather than prom-client's
// global one, so that an application embedding Taskport keeps its own metrics apart.
//
// Counters and histograms count what this process did (standard for Prometheus, which sums
// processes); the gauges of tasks and queues are read from the database, so on PostgreSQL every
// process reports the same whole-database figures.

export const metricsRegistry = new Registry();

const registers = [metricsRegistry];

export const tasksByState = new Gauge({
  name: 'taskport_tasks',
  help: 'Tasks in the database, by state (read at scrape time, cached briefly)',
  labelNames: ['state'] as const,
  registers,
});

export const queueDepth = new Gauge({
  name: 'taskport_queue_depth',
  help: 'PENDING tasks of each queue (service and action), due or not',
  labelNames: ['service', 'action'] as const,
  registers,
});

export const queueOldestDueAge = new Gauge({
  name: 'taskport_queue_oldest_pending_age_seconds',
  help: 'How long the longest-waiting due PENDING task of each queue has been due (0 when none is due)',
  labelNames: ['service', 'action'] as const,
  registers,
});

export const tasksProcessed = new Counter({
  name: 'taskport_tasks_processed_total',
  help: 'Tasks this process brought to a terminal state, by action and outcome (SUCCEEDED, FAILED, CANCELLED)',
  labelNames: ['service', 'action', 'outcome'] as const,
  registers,
});

export const taskDuration = new Histogram({
  name: 'taskport_task_duration_seconds',
  help: 'From the start of its last attempt to its end, for the tasks this process finished, by action',
  labelNames: ['service', 'action'] as const,
  buckets: [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 60, 300, 1800],
  registers,
});

export const graphqlOperationDuration = new Histogram({
  name: 'taskport_graphql_operation_duration_seconds',
  help: 'GraphQL queries and mutations over HTTP and WebSocket, by type and root fields (never the client-chosen operation name)',
  labelNames: ['type', 'operation'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers,
});

export const webhookAttempts = new Counter({
  name: 'taskport_webhook_attempts_total',
  help: 'Webhook delivery attempts this process made, by outcome (SUCCEEDED, FAILED, REFUSED)',
  labelNames: ['outcome'] as const,
  registers,
});

export const webhookAttemptDuration = new Histogram({
  name: 'taskport_webhook_attempt_duration_seconds',
  help: 'From sending a webhook message to its receiver’s answer (or the timeout), by outcome',
  labelNames: ['outcome'] as const,
  buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
  registers,
});

/** Incremented by the rate limiter, once per refused request; `tier` is `submit`, `other` or `execute`. */
export const rateLimitRejections = new Counter({
  name: 'taskport_rate_limit_rejections_total',
  help: 'Requests refused by a rate limit, by tier',
  labelNames: ['tier'] as const,
  registers,
});

export const openSubscriptions = new Gauge({
  name: 'taskport_open_subscriptions',
  help: 'GraphQL subscriptions open on this process (SSE and WebSocket)',
  registers,
});

/** Incremented by the execution route, once per answered call; `status` is the HTTP status it answered. */
export const realtimeCalls = new Counter({
  name: 'taskport_realtime_calls_total',
  help: 'Calls to execution URLs, by HTTP status answered',
  labelNames: ['status'] as const,
  registers,
});

let processMetricsStarted = false;

/**
 * prom-client's process metrics: event-loop lag, heap, CPU, handles. Started by the first server
 * of the process rather than on import, so that a library user or a CLI command gets no timers.
 */
export function startProcessMetrics(): void {
  if (processMetricsStarted) return;
  processMetricsStarted = true;
  collectDefaultMetrics({ register: metricsRegistry });
}
