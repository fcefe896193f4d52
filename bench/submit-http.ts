import {
  formatNumber,
  heading,
  latencySummary,
  line,
  postGraphQL,
  runIfMain,
  runLoad,
  startServerProcess,
  type LoadResult,
  type SectionResult,
  type ServerProcess,
} from './lib.js';
import { benchPostgres, freshPgDatabase, meterDatabase, processCpuMs, startPgServerProcess } from './postgres.js';

// (b) submitTask over HTTP, against `{ __typename }` on the same server as the ceiling: what the
// GraphQL layer and the queue cost above yoga's floor. The server runs its worker as `taskport
// serve` does (concurrency 8), so the submitted tasks are processed while the load goes on.

const CONNECTIONS = 10;
const SECONDS = 10;
const WARM_UP_SECONDS = 2;
const AIM_RATIO_PERCENT = 80;

const SUBMIT = `mutation($input: SubmitTaskInput!){ submitTask(input:$input){ __typename ... on SubmitTaskSuccess { task { id } } } }`;
const SUBMIT_VARIABLES = { input: { service: 'demo', action: 'echo', params: { message: 'bench' } } };
const TYPENAME = `{ __typename }`;

async function load(
  server: ServerProcess,
  body: Record<string, unknown>,
  expectInBody: string,
  seconds: number,
): Promise<LoadResult> {
  return runLoad({
    url: server.url,
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify(body),
    connections: CONNECTIONS,
    duration: seconds,
    expectInBody,
  }).result;
}

interface Measured {
  result: LoadResult;
  /** CPU time per response, in µs, of the server's process and of PostgreSQL's; null where not measured. */
  serverCpuUs: number | null;
  postgresCpuUs: number | null;
}

/**
 * A load with the CPU it cost beside it: with autocannon on one of two cores, the server has the
 * other, so CPU per response is what a ratio of req/s comes down to, and it moves less than req/s
 * on a shared host. On PostgreSQL the database's server takes its CPU from the same two cores.
 */
async function measured(
  server: ServerProcess,
  postgresDatabase: string | null,
  body: Record<string, unknown>,
  expectInBody: string,
  seconds: number,
): Promise<Measured> {
  const meter = postgresDatabase === null ? null : await meterDatabase(postgresDatabase);
  const before = processCpuMs(server.pid);
  const result = await load(server, body, expectInBody, seconds);
  const after = processCpuMs(server.pid);
  const postgresCpuMs = meter === null ? null : (await meter.read()).cpuMs;
  const perResponseUs = (ms: number | null) => (ms === null || result.requests === 0 ? null : (ms * 1000) / result.requests);
  return {
    result,
    serverCpuUs: before === null || after === null ? null : perResponseUs(after - before),
    postgresCpuUs: perResponseUs(postgresCpuMs),
  };
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

export async function submitHttpSection(): Promise<SectionResult> {
  heading(`(b) submitTask over HTTP: autocannon in its own process, ${CONNECTIONS} connections, ${SECONDS} s per run`);
  return measureOn(await startServerProcess({ concurrency: 8 }), null, 'http   ');
}

/** The same runs with the server on PostgreSQL (a fresh database on the bench's server). */
export async function submitHttpPgSection(): Promise<SectionResult> {
  const postgres = await benchPostgres();
  heading(`(b) submitTask over HTTP on PostgreSQL: autocannon in its own process, ${CONNECTIONS} connections, ${SECONDS} s per run`);
  line('PostgreSQL', postgres.describe);
  const database = await freshPgDatabase();
  return measureOn(await startPgServerProcess(database, { concurrency: 8 }), database.name, 'pg-http');
}

async function measureOn(server: ServerProcess, postgresDatabase: string | null, summaryName: string): Promise<SectionResult> {
  try {
    // The one response a client would see, checked in full.
    const sample = await postGraphQL<{ submitTask: { __typename: string; task?: { id: string } } }>(
      server.url,
      server.token,
      SUBMIT,
      SUBMIT_VARIABLES,
    );
    if (sample.data?.submitTask.__typename !== 'SubmitTaskSuccess' || !sample.data.submitTask.task?.id) {
      throw new Error(`submitTask did not succeed: ${JSON.stringify(sample)}`);
    }
    line('sample submitTask response', JSON.stringify(sample));

    await load(server, { query: TYPENAME }, '"Query"', WARM_UP_SECONDS);
    await load(server, { query: SUBMIT, variables: SUBMIT_VARIABLES }, '"SubmitTaskSuccess"', WARM_UP_SECONDS);

    const typenameRun = await measured(server, postgresDatabase, { query: TYPENAME }, '{"data":{"__typename":"Query"}}', SECONDS);
    const typename = typenameRun.result;
    checkResponses('{ __typename }', typename);
    const submitRun = await measured(
      server,
      postgresDatabase,
      { query: SUBMIT, variables: SUBMIT_VARIABLES },
      '"__typename":"SubmitTaskSuccess"',
      SECONDS,
    );
    const submit = submitRun.result;
    checkResponses('submitTask', submit);

    const typenameLatency = latencySummary(typename.samples);
    const submitLatency = latencySummary(submit.samples);
    const ratio = (100 * submit.requestsPerSecond) / typename.requestsPerSecond;
    const describe = (result: LoadResult, latency: ReturnType<typeof latencySummary>) =>
      `${formatNumber(result.requestsPerSecond)} req/s, p50 ${formatNumber(latency.p50)} ms, ` +
      `p99 ${formatNumber(latency.p99)} ms, max ${formatNumber(latency.max)} ms ` +
      `(${result.requests.toLocaleString('en')} responses, all 2xx and as expected)`;
    const cpu = (run: Measured) =>
      run.serverCpuUs === null
        ? ''
        : `, CPU per response: server ${formatNumber(run.serverCpuUs)} µs` +
          (run.postgresCpuUs === null ? '' : `, PostgreSQL ${formatNumber(run.postgresCpuUs)} µs`);
    line('{ __typename } (ceiling)', describe(typename, typenameLatency) + cpu(typenameRun));
    line('submitTask demo.echo', describe(submit, submitLatency) + cpu(submitRun));
    line('sample body from the submitTask run', submit.sampleBody ?? '(none)');
    line('ratio submitTask / __typename', `${formatNumber(ratio, 0)}% (aim >= ${AIM_RATIO_PERCENT}%)`);
    const total = (run: Measured) => (run.serverCpuUs === null ? null : run.serverCpuUs + (run.postgresCpuUs ?? 0));
    const typenameCpu = total(typenameRun);
    const submitCpu = total(submitRun);
    if (typenameCpu !== null && submitCpu !== null) {
      // The load holds the server's core busy either way, so req/s goes as the inverse of CPU per response.
      line(
        'CPU the aim allows a submission',
        `${formatNumber((typenameCpu * 100) / AIM_RATIO_PERCENT)} µs (${formatNumber(typenameCpu)} / ${AIM_RATIO_PERCENT}%); it took ${formatNumber(submitCpu)} µs`,
      );
    }
    return {
      summary:
        `${summaryName} submitTask ${formatNumber(submit.requestsPerSecond)} req/s p99 ${formatNumber(submitLatency.p99)} ms` +
        ` | __typename ${formatNumber(typename.requestsPerSecond)} req/s p99 ${formatNumber(typenameLatency.p99)} ms` +
        ` | ratio ${formatNumber(ratio, 0)}%`,
    };
  } finally {
    await server.stop();
  }
}

runIfMain(import.meta.url, submitHttpSection);
