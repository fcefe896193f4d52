import {
  formatNumber,
  heading,
  latencySummary,
  line,
  percentile,
  postGraphQL,
  runIfMain,
  runLoad,
  spawnTypeScript,
  startServerProcess,
  type LoadOptions,
  type LoadResult,
  type SectionResult,
  type ServerProcess,
} from './lib.js';
import { benchPostgres, freshPgDatabase, processCpuMs, startPgServerProcess } from './postgres.js';
import type { SubmitWaitOptions, SubmitWaitResult } from './submit-wait-process.js';

// (e) Real-time execution: POST /execute/<allocation> answers with the outcome of the call.
// autocannon runs against one server (concurrency 8): GET /healthz, the HTTP stack's ceiling (no
// yoga, no GraphQL); demo.echo and demo.fraud-score on allocations of 8 instances. They take turns
// over ROUNDS rounds, so that a busy host slows all three alike, and the ratio to /healthz is each
// round's. The server's CPU time per response is read beside each run: on a shared host it moves far
// less than req/s. The reference is what a client does without execution URLs: submitTask, wait
// over a taskUpdated subscription, retrieveResults, in bench/submit-wait-process.ts.

const CONNECTIONS = 10;
const SUBMIT_WAIT_SECONDS = 10;
const ROUNDS = 3;
const ROUND_SECONDS = 4;
const WARM_UP_SECONDS = 2;
const INSTANCES = 8;
const TTL_SECONDS = 3600;

const ECHO_PARAMS = { message: 'hi' };
const FRAUD_PARAMS = { amount: 1250, currency: 'EUR', country: 'BR', cardAgeDays: 12 };

const AIM_P50_MS = 2;
const AIM_P99_MS = 10;
const AIM_HEALTHZ_SHARE = 50;
const AIM_SUBMIT_WAIT_FACTOR = 5;

const CREATE_ALLOCATION = `mutation($input: CreateAllocationInput!){ createAllocation(input:$input){
  __typename ... on CreateAllocationSuccess { allocation { id instances } } ... on Error { code message } } }`;
const GENERATE_URL = `mutation($id: ID!, $ttl: Int){ generateExecutionUrl(allocationId:$id, ttlSeconds:$ttl){
  __typename ... on GenerateExecutionUrlSuccess { executionUrl { url token } } ... on Error { code message } } }`;
const ALLOCATIONS = `{ allocations { id action executions busy } }`;

interface Endpoint {
  allocationId: string;
  url: string;
  token: string;
}

async function allocate(server: ServerProcess, action: string): Promise<Endpoint> {
  const created = await postGraphQL(server.url, server.token, CREATE_ALLOCATION, {
    input: { name: `bench ${action}`, service: 'demo', action, instances: INSTANCES },
  });
  const allocation = created.data.createAllocation;
  if (allocation.__typename !== 'CreateAllocationSuccess') throw new Error(`createAllocation: ${JSON.stringify(allocation)}`);
  const generated = await postGraphQL(server.url, server.token, GENERATE_URL, {
    id: allocation.allocation.id,
    ttl: TTL_SECONDS,
  });
  const answer = generated.data.generateExecutionUrl;
  if (answer.__typename !== 'GenerateExecutionUrlSuccess') throw new Error(`generateExecutionUrl: ${JSON.stringify(answer)}`);
  return { allocationId: allocation.allocation.id, url: answer.executionUrl.url, token: answer.executionUrl.token };
}

function executeLoad(endpoint: Endpoint, params: Record<string, unknown>, expectInBody: string, seconds: number): LoadOptions {
  return {
    url: endpoint.url,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${endpoint.token}` },
    body: JSON.stringify(params),
    connections: CONNECTIONS,
    duration: seconds,
    expectInBody,
  };
}

function healthzLoad(server: ServerProcess, seconds: number): LoadOptions {
  return {
    url: new URL('/healthz', server.url).href,
    method: 'GET',
    headers: {},
    connections: CONNECTIONS,
    duration: seconds,
    expectInBody: '{"status":"ok"}',
  };
}

/** One call, checked in full: 200, and every field of the answer where it belongs. */
async function checkOneCall(endpoint: Endpoint, params: Record<string, unknown>, check: (results: unknown) => boolean) {
  const response = await fetch(endpoint.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${endpoint.token}` },
    body: JSON.stringify(params),
  });
  const text = await response.text();
  const body = JSON.parse(text) as Record<string, unknown>;
  const shaped =
    response.status === 200 &&
    typeof body.taskId === 'string' &&
    body.state === 'SUCCEEDED' &&
    Array.isArray(body.results) &&
    check(body.results) &&
    Array.isArray(body.logs) &&
    typeof body.durationMs === 'number';
  if (!shaped) throw new Error(`POST ${endpoint.url}: HTTP ${response.status} ${text.slice(0, 500)}`);
  return text;
}

/** Every response must have been a 2xx with the expected body; otherwise the figure means nothing. */
function checkResponses(name: string, result: LoadResult): void {
  const bad = result.non2xx + result.errors + result.timeouts + result.mismatches;
  if (bad > 0 || result.requests === 0) {
    throw new Error(
      `${name}: ${result.requests} responses, ${result.non2xx} non-2xx, ${result.errors} errors, ` +
        `${result.timeouts} timeouts, ${result.mismatches} unexpected bodies; one body: ${result.sampleBody?.slice(0, 300)}`,
    );
  }
}

async function submitAndWait(server: ServerProcess, action: string, params: Record<string, unknown>): Promise<SubmitWaitResult> {
  const options: SubmitWaitOptions = {
    url: server.url,
    token: server.token,
    service: 'demo',
    action,
    params,
    loops: CONNECTIONS,
    warmUp: WARM_UP_SECONDS,
    duration: SUBMIT_WAIT_SECONDS,
  };
  const child = spawnTypeScript('submit-wait-process.ts', { BENCH_SUBMIT_WAIT: JSON.stringify(options) }, 'submit-and-wait process');
  try {
    const done = await child.waitFor((message) => message.type === 'done', (WARM_UP_SECONDS + SUBMIT_WAIT_SECONDS + 30) * 1000, 'submit-and-wait run');
    if (done.error) throw new Error(`submit-and-wait ${action}: ${String(done.error)}`);
    const result = done.result as SubmitWaitResult;
    if (result.errors > 0 || result.completed === 0) {
      throw new Error(`submit-and-wait ${action}: ${result.completed} completed, ${result.errors} errors, the first: ${result.firstError}`);
    }
    return result;
  } finally {
    await child.stop(5000);
  }
}

const ms = (value: number) => `${formatNumber(value)} ms`;

interface Measured {
  result: LoadResult;
  /** The server's CPU time per response, in µs; null without /proc. */
  cpuPerResponseUs: number | null;
}

async function measure(server: ServerProcess, options: LoadOptions, name: string): Promise<Measured> {
  const before = processCpuMs(server.pid);
  const result = await runLoad(options).result;
  const after = processCpuMs(server.pid);
  checkResponses(name, result);
  const cpuPerResponseUs = before === null || after === null ? null : ((after - before) * 1000) / result.requests;
  return { result, cpuPerResponseUs };
}

/** The runs of one load over all rounds, as one: responses over the time they took. */
function combine(runs: readonly Measured[]): { result: LoadResult; cpuPerResponseUs: number | null } {
  const requests = runs.reduce((sum, run) => sum + run.result.requests, 0);
  const durationMs = runs.reduce((sum, run) => sum + run.result.durationMs, 0);
  const cpu = runs.every((run) => run.cpuPerResponseUs !== null)
    ? runs.reduce((sum, run) => sum + run.cpuPerResponseUs! * run.result.requests, 0) / requests
    : null;
  const first = runs[0]!.result;
  return {
    cpuPerResponseUs: cpu,
    result: {
      ...first,
      requests,
      durationMs,
      requestsPerSecond: (requests * 1000) / durationMs,
      status2xx: runs.reduce((sum, run) => sum + run.result.status2xx, 0),
      samples: runs.flatMap((run) => run.result.samples),
    },
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const cpuText = (us: number | null) => (us === null ? '' : `, server CPU ${formatNumber(us)} µs per response`);

function describeLoad(result: LoadResult): { text: string; p50: number; p99: number } {
  const latency = latencySummary(result.samples);
  return {
    p50: latency.p50,
    p99: latency.p99,
    text:
      `${formatNumber(result.requestsPerSecond)} req/s, p50 ${ms(latency.p50)}, p99 ${ms(latency.p99)}, max ${ms(latency.max)} ` +
      `(${result.requests.toLocaleString('en')} responses, all 200 and as expected)`,
  };
}

function describeSubmitWait(result: SubmitWaitResult): { text: string; phases: string; p50: number; p99: number } {
  const p50 = percentile(result.latencies, 50);
  const p99 = percentile(result.latencies, 99);
  const phase = (values: number[]) => `${formatNumber(percentile(values, 50))}/${formatNumber(percentile(values, 99))}`;
  return {
    p50,
    p99,
    text:
      `${formatNumber(result.perSecond)} executions/s, p50 ${ms(p50)}, p99 ${ms(p99)}, ` +
      `max ${ms(result.latencies.reduce((found, latency) => Math.max(found, latency), 0))} (${result.completed.toLocaleString('en')} executions, no errors)`,
    phases: `submitTask ${phase(result.phases.submit)} ms, wait over SSE ${phase(result.phases.wait)} ms, retrieveResults ${phase(result.phases.retrieve)} ms`,
  };
}

const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

const HEADING =
  `real-time execution: POST /execute/<allocation>, ${INSTANCES} instances; autocannon in its own process, ` +
  `${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_SECONDS} s per load`;

export async function realtimeSection(): Promise<SectionResult> {
  heading(`(e) ${HEADING}`);
  return measureOn(await startServerProcess({ concurrency: 8 }), 'realtime');
}

/** The same runs with the server on PostgreSQL, where each call is recorded (a fresh database on the bench's server). */
export async function realtimePgSection(): Promise<SectionResult> {
  const postgres = await benchPostgres();
  heading(`(e) ${HEADING}, on PostgreSQL`);
  line('PostgreSQL', postgres.describe);
  return measureOn(await startPgServerProcess(await freshPgDatabase(), { concurrency: 8 }), 'pg-realtime');
}

async function measureOn(server: ServerProcess, summaryName: string): Promise<SectionResult> {
  try {
    const echo = await allocate(server, 'echo');
    const fraud = await allocate(server, 'fraud-score');
    line('sample demo.echo answer', await checkOneCall(echo, ECHO_PARAMS, (results) => JSON.stringify(results).includes('"message":"hi"')));
    line(
      'sample demo.fraud-score answer',
      await checkOneCall(fraud, FRAUD_PARAMS, (results) => JSON.stringify(results).includes('"decision":"')),
    );

    const echoExpected = '"state":"SUCCEEDED","results":[{"name":"result","contentType":"application/json","data":{"message":"hi"}}]';
    const fraudExpected = '"state":"SUCCEEDED","results":[{"name":"result","contentType":"application/json","data":{"score":';

    await runLoad(healthzLoad(server, 1)).result;
    await runLoad(executeLoad(echo, ECHO_PARAMS, echoExpected, WARM_UP_SECONDS)).result;
    await runLoad(executeLoad(fraud, FRAUD_PARAMS, fraudExpected, WARM_UP_SECONDS)).result;

    const healthzRuns: Measured[] = [];
    const echoRuns: Measured[] = [];
    const fraudRuns: Measured[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      healthzRuns.push(await measure(server, healthzLoad(server, ROUND_SECONDS), 'GET /healthz'));
      echoRuns.push(await measure(server, executeLoad(echo, ECHO_PARAMS, echoExpected, ROUND_SECONDS), 'realtime demo.echo'));
      fraudRuns.push(
        await measure(server, executeLoad(fraud, FRAUD_PARAMS, fraudExpected, ROUND_SECONDS), 'realtime demo.fraud-score'),
      );
    }
    const healthzAll = combine(healthzRuns);
    const echoAll = combine(echoRuns);
    const fraudAll = combine(fraudRuns);
    const healthz = healthzAll.result;
    const echoRun = echoAll.result;
    const fraudRun = fraudAll.result;
    const shareOf = (runs: readonly Measured[]) =>
      median(runs.map((run, round) => (100 * run.result.requestsPerSecond) / healthzRuns[round]!.result.requestsPerSecond));

    const fraudWait = await submitAndWait(server, 'fraud-score', FRAUD_PARAMS);
    const echoWait = await submitAndWait(server, 'echo', ECHO_PARAMS);

    // The server's own count of answered calls, against what autocannon saw.
    const { data } = await postGraphQL<{ allocations: { id: string; action: string; executions: number; busy: number }[] }>(
      server.url,
      server.token,
      ALLOCATIONS,
    );
    const counted = Object.fromEntries(data!.allocations.map((allocation) => [allocation.action, allocation]));

    const healthzText = describeLoad(healthz);
    const echoText = describeLoad(echoRun);
    const fraudText = describeLoad(fraudRun);
    const fraudWaitText = describeSubmitWait(fraudWait);
    const echoWaitText = describeSubmitWait(echoWait);
    const echoShare = shareOf(echoRuns);
    const fraudShare = shareOf(fraudRuns);
    const fraudFactor = fraudRun.requestsPerSecond / fraudWait.perSecond;
    const echoFactor = echoRun.requestsPerSecond / echoWait.perSecond;

    line('GET /healthz (ceiling of the HTTP stack)', healthzText.text + cpuText(healthzAll.cpuPerResponseUs));
    line('realtime demo.echo {"message":"hi"}', echoText.text + cpuText(echoAll.cpuPerResponseUs));
    line('realtime demo.fraud-score (fixed body)', fraudText.text + cpuText(fraudAll.cpuPerResponseUs));
    const rounds = (runs: readonly Measured[]) => runs.map((run) => formatNumber(run.result.requestsPerSecond)).join(' / ');
    line(
      `req/s in each of the ${ROUNDS} rounds`,
      `healthz ${rounds(healthzRuns)}; echo ${rounds(echoRuns)}; fraud-score ${rounds(fraudRuns)}`,
    );
    line('fraud-score body', JSON.stringify(FRAUD_PARAMS));
    line('sample body from the fraud-score run', fraudRun.sampleBody ?? '(none)');
    line(
      'executions the server counted',
      `echo ${counted.echo?.executions.toLocaleString('en')}, fraud-score ${counted['fraud-score']?.executions.toLocaleString('en')} ` +
        `(busy now ${counted.echo?.busy}/${counted['fraud-score']?.busy})`,
    );
    line('submit-and-wait demo.fraud-score', fraudWaitText.text);
    line('  of which (p50/p99)', fraudWaitText.phases);
    line('submit-and-wait demo.echo', echoWaitText.text);
    line('  of which (p50/p99)', echoWaitText.phases);
    line('ratio realtime / healthz', `echo ${formatNumber(echoShare, 0)}%, fraud-score ${formatNumber(fraudShare, 0)}% (median of the rounds)`);
    if (healthzAll.cpuPerResponseUs !== null && echoAll.cpuPerResponseUs !== null && fraudAll.cpuPerResponseUs !== null) {
      const times = (us: number) => `${formatNumber(us / healthzAll.cpuPerResponseUs!, 1)}x`;
      line(
        'server CPU per response / healthz',
        `echo ${times(echoAll.cpuPerResponseUs)}, fraud-score ${times(fraudAll.cpuPerResponseUs)}`,
      );
    }
    line(
      'ratio realtime / submit-and-wait',
      `fraud-score ${formatNumber(fraudFactor, 1)}x, echo ${formatNumber(echoFactor, 1)}x`,
    );
    const latencyOk = [echoText, fraudText].every((run) => run.p50 <= AIM_P50_MS && run.p99 <= AIM_P99_MS);
    const shareOk = Math.min(echoShare, fraudShare) >= AIM_HEALTHZ_SHARE;
    const factorOk = Math.min(fraudFactor, echoFactor) >= AIM_SUBMIT_WAIT_FACTOR;
    line(
      'aims',
      `p50 <= ${AIM_P50_MS} ms and p99 <= ${AIM_P99_MS} ms ${verdict(latencyOk)}; >= ${AIM_HEALTHZ_SHARE}% of /healthz ${verdict(shareOk)}; ` +
        `>= ${AIM_SUBMIT_WAIT_FACTOR}x submit-and-wait ${verdict(factorOk)}`,
    );

    const brief = (run: { p50: number; p99: number }) => `p50 ${ms(run.p50)} p99 ${ms(run.p99)}`;
    return {
      summary:
        `${summaryName} echo ${formatNumber(echoRun.requestsPerSecond)} req/s ${brief(echoText)}` +
        ` | fraud-score ${formatNumber(fraudRun.requestsPerSecond)} req/s ${brief(fraudText)}` +
        ` | healthz ${formatNumber(healthz.requestsPerSecond)} req/s | ratio ${formatNumber(echoShare, 0)}%/${formatNumber(fraudShare, 0)}%` +
        ` | submit-and-wait fraud-score ${formatNumber(fraudWait.perSecond)}/s ${brief(fraudWaitText)}` +
        ` | ratio ${formatNumber(fraudFactor, 1)}x`,
    };
  } finally {
    await server.stop();
  }
}

runIfMain(import.meta.url, realtimeSection);
