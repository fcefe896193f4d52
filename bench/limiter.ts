import {
  formatNumber,
  heading,
  latencySummary,
  line,
  runIfMain,
  runLoad,
  startServerProcess,
  type LoadResult,
  type SectionResult,
  type ServerProcess,
} from './lib.js';
import { benchPostgres, freshPgDatabase, startPgServerProcess } from './postgres.js';

// What the per-key rate limits cost: `{ __typename }` over HTTP from one key, against a server
// without limits (TASKPORT_RATE_LIMITS=false) and one with them, so high that nothing is refused
// and every request is counted. Runs alternate (off, on, off, on) so that a drift of the machine
// falls on both; the best run of each is compared. autocannon runs in its own process.

const CONNECTIONS = 10;
const SECONDS = 8;
const WARM_UP_SECONDS = 2;
const ROUNDS = 2;
const TYPENAME_BODY = JSON.stringify({ query: '{ __typename }' });
const EXPECTED = '{"data":{"__typename":"Query"}}';

const LIMITS_ON = {
  TASKPORT_RATE_LIMITS: 'true',
  TASKPORT_RATE_OTHER: '100000/s,1000000/m',
  TASKPORT_RATE_SUBMIT: '100000/s,1000000/m',
};
const LIMITS_OFF = { TASKPORT_RATE_LIMITS: 'false' };

async function measure(server: ServerProcess, seconds: number): Promise<LoadResult> {
  const result = await runLoad({
    url: server.url,
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${server.token}` },
    body: TYPENAME_BODY,
    connections: CONNECTIONS,
    duration: seconds,
    expectInBody: EXPECTED,
  }).result;
  const bad = result.non2xx + result.errors + result.timeouts + result.mismatches;
  if (bad > 0 || result.requests === 0) {
    throw new Error(
      `${result.requests} responses, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.mismatches} unexpected bodies; ` +
        `one body: ${result.sampleBody?.slice(0, 300)}`,
    );
  }
  return result;
}

async function runOn(label: string, start: (env: Record<string, string>) => Promise<ServerProcess>): Promise<string> {
  const best = { off: 0, on: 0 };
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const [name, env] of [
      ['off', LIMITS_OFF],
      ['on', LIMITS_ON],
    ] as const) {
      const server = await start(env);
      try {
        await measure(server, WARM_UP_SECONDS);
        const result = await measure(server, SECONDS);
        const latency = latencySummary(result.samples);
        line(
          `${label} round ${round}, limits ${name.padEnd(3)}`,
          `${formatNumber(result.requestsPerSecond)} req/s, p50 ${formatNumber(latency.p50)} ms, p99 ${formatNumber(latency.p99)} ms ` +
            `(${result.requests.toLocaleString('en')} responses, all 200)`,
        );
        best[name] = Math.max(best[name], result.requestsPerSecond);
      } finally {
        await server.stop();
      }
    }
  }
  const cost = (100 * (best.off - best.on)) / best.off;
  line(`${label} best of ${ROUNDS}`, `off ${formatNumber(best.off)} req/s, on ${formatNumber(best.on)} req/s: ${formatNumber(cost, 1)}% apart (aim < 5%)`);
  return `${label} __typename off ${formatNumber(best.off)} / on ${formatNumber(best.on)} req/s (${formatNumber(cost, 1)}%)`;
}

export async function limiterSection(): Promise<SectionResult> {
  heading(
    `(l) rate limiter cost: { __typename } from one key, ${CONNECTIONS} connections, ${SECONDS} s per run, ` +
      `limits ${LIMITS_ON.TASKPORT_RATE_OTHER} (nothing refused) against TASKPORT_RATE_LIMITS=false`,
  );
  const sqlite = await runOn('sqlite', (env) => startServerProcess({ concurrency: 8, env }));
  const postgres = await benchPostgres();
  line('PostgreSQL', postgres.describe);
  const pg = await runOn('pg', async (env) => startPgServerProcess(await freshPgDatabase(), { concurrency: 8, env }));
  return { summary: `limiter ${sqlite} | ${pg}` };
}

runIfMain(import.meta.url, limiterSection);
