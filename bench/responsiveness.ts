import {
  echoInput,
  formatNumber,
  heading,
  latencySummary,
  line,
  now,
  perSecond,
  runIfMain,
  runLoad,
  sleep,
  startServerProcess,
  submitBatch,
  type Drain,
  type LoadOptions,
  type LoadResult,
  type SectionResult,
  type ServerProcess,
} from './lib.js';

// (d) Does the API stay responsive while the in-process worker drains a deep queue? 20,000
// demo.echo tasks are submitted over HTTP with one runAt a few seconds ahead, so that all of them
// fall due at once; autocannon sends `{ __typename }` throughout, and the server reports its
// event-loop delay over the drain. Two references put the figure in context: the same load with
// no drain, and the same drain with no load.

const TASKS = 20_000;
const BATCH = 1_000;
const CONNECTIONS = 10;
const BASELINE_SECONDS = 3;
/** Between the last submission and runAt: the load generator's start, and margin. */
const LOAD_START_MS = 3_000;

const TYPENAME_BODY = JSON.stringify({ query: '{ __typename }' });
const TYPENAME_ANSWER = '{"data":{"__typename":"Query"}}';

function typenameLoad(server: ServerProcess, duration: number): LoadOptions {
  return {
    url: server.url,
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${server.token}` },
    body: TYPENAME_BODY,
    connections: CONNECTIONS,
    duration,
    expectInBody: TYPENAME_ANSWER,
  };
}

function checkLoad(result: LoadResult): void {
  const bad = result.non2xx + result.errors + result.timeouts + result.mismatches;
  if (bad > 0) throw new Error(`{ __typename }: ${bad} failed or unexpected responses of ${result.requests}`);
}

/** Submits TASKS demo.echo tasks, all due at `runAt`; returns how long the submissions took. */
async function queueEchoTasks(server: ServerProcess, runAt: number): Promise<number> {
  const started = now();
  for (let first = 0; first < TASKS; first += BATCH) {
    const inputs = Array.from({ length: BATCH }, (_, offset) => echoInput(first + offset, { runAt: new Date(runAt).toISOString() }));
    await submitBatch(server.url, server.token, inputs);
  }
  return now() - started;
}

const drainMs = (drain: Drain) => drain.lastSucceededAt - drain.firstClaimAt;

function describeDrain(drain: Drain): string {
  return `${formatNumber(drainMs(drain), 0)} ms = ${formatNumber(perSecond(drain.succeeded, drainMs(drain)))} tasks/s (${drain.failed} failed)`;
}

function describeLoopDelay(loopDelay: Drain['loopDelay']): string {
  const longest = loopDelay.longestStall;
  const cpu =
    longest === null
      ? ''
      : `; ${loopDelay.stallsOver20Ms} gaps > 20 ms, the longest ${formatNumber(longest.wallMs)} ms of which ${formatNumber(longest.cpuMs)} ms on the CPU; longest GC pause ${formatNumber(loopDelay.longestGcMs)} ms`;
  return `longest stall ${formatNumber(loopDelay.maxMs)} ms, p99 ${formatNumber(loopDelay.p99Ms)} ms, mean ${formatNumber(loopDelay.meanMs)} ms${cpu}`;
}

export async function responsivenessSection(): Promise<SectionResult> {
  heading(`(d) responsiveness while the worker (concurrency 8) drains ${TASKS.toLocaleString('en')} demo.echo tasks`);
  const server = await startServerProcess({ concurrency: 8 });
  try {
    // Warm-up: one batch through submission and the worker, and a second of load.
    const warmUpStarted = now();
    const warmUpDrain = server.watchDrain(BATCH, 30_000);
    await submitBatch(server.url, server.token, Array.from({ length: BATCH }, (_, index) => echoInput(index)));
    const batchMs = now() - warmUpStarted;
    await warmUpDrain;
    checkLoad(await runLoad(typenameLoad(server, 1)).result);
    const submitEstimateMs = Math.min(30_000, Math.max(2_000, 2 * (TASKS / BATCH) * batchMs));

    // Reference 1: the same load, no drain.
    await server.loopDelay();
    const idle = await runLoad(typenameLoad(server, BASELINE_SECONDS)).result;
    const idleLoopDelay = await server.loopDelay();
    checkLoad(idle);
    const idleLatency = latencySummary(idle.samples);
    line(`reference: { __typename } load, no drain`, `${formatNumber(idle.requestsPerSecond)} req/s, p99 ${formatNumber(idleLatency.p99)} ms, max ${formatNumber(idleLatency.max)} ms`);
    line('  server event-loop delay', describeLoopDelay(idleLoopDelay));

    // Reference 2: the same drain, no load.
    const quietDrain = server.watchDrain(TASKS, 90_000);
    const quietSubmitMs = await queueEchoTasks(server, Date.now() + submitEstimateMs + 500);
    const quiet = await quietDrain;
    line(
      'queued over HTTP (submitTasks x 1,000)',
      `${TASKS.toLocaleString('en')} tasks in ${formatNumber(quietSubmitMs, 0)} ms = ${formatNumber(perSecond(TASKS, quietSubmitMs))} tasks/s`,
    );
    line('reference: drain, no HTTP load', describeDrain(quiet));
    line('  server event-loop delay', describeLoopDelay(quiet.loopDelay));

    // The figure: the drain under load.
    const runAt = Date.now() + submitEstimateMs + LOAD_START_MS;
    const drain = server.watchDrain(TASKS, 90_000);
    const submitMs = await queueEchoTasks(server, runAt);
    if (Date.now() > runAt) line('warning', `submitting took ${formatNumber(submitMs, 0)} ms: the drain began before the load`);
    const load = runLoad(typenameLoad(server, 120));
    await load.started;
    const leadMs = runAt - Date.now();
    if (leadMs < 0) line('warning', `the load generator started ${-leadMs} ms after the drain began`);
    else await sleep(leadMs);
    let drained: Drain;
    try {
      drained = await drain;
    } finally {
      load.stop();
    }
    const result = await load.result;
    checkLoad(result);
    const during = result.samples.filter(([at]) => at >= drained.firstClaimAt && at <= drained.lastSucceededAt);
    const latency = latencySummary(during);
    const duringRate = perSecond(during.length, drainMs(drained));

    line(`drain under { __typename } load (${CONNECTIONS} conns)`, describeDrain(drained));
    line('  server event-loop delay', `${describeLoopDelay(drained.loopDelay)} (aim: longest stall < 50 ms)`);
    line(
      '  { __typename } during the drain',
      `${formatNumber(duringRate)} req/s, p50 ${formatNumber(latency.p50)} ms, p99 ${formatNumber(latency.p99)} ms, ` +
        `max ${formatNumber(latency.max)} ms (${during.length.toLocaleString('en')} responses, all 2xx)`,
    );
    return {
      summary:
        `drain   ${TASKS.toLocaleString('en')} tasks under load in ${formatNumber(drainMs(drained), 0)} ms (${formatNumber(perSecond(TASKS, drainMs(drained)))} tasks/s; ` +
        `${formatNumber(perSecond(TASKS, drainMs(quiet)))} tasks/s without load)` +
        ` | longest stall ${formatNumber(drained.loopDelay.maxMs)} ms` +
        ` | __typename meanwhile ${formatNumber(duringRate)} req/s p99 ${formatNumber(latency.p99)} ms`,
    };
  } finally {
    await server.stop();
  }
}

runIfMain(import.meta.url, responsivenessSection);
