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
import { benchPostgres, freshPgDatabase, processCpuMs, startPgServerProcess } from './postgres.js';
import { parse } from 'graphql';
import { tierOf } from '../src/limits/requests.js';
import { createRateLimiter } from '../src/limits/rate-limiter.js';

// What the per-key rate limits cost, two ways. (1) In this process, the check one operation
// pays: its tier from the document, then a count in each window (memory for SQLite; PostgreSQL
// with its leases), per operation. (2) `{ __typename }` over HTTP from one key, against a server
// without limits (TASKPORT_RATE_LIMITS=false) and one with them, so high that nothing is refused
// and every request is counted. Runs alternate (off, on, off, on) so that a drift of the machine
// falls on both; the best run of each is compared, and so is the server's CPU time per request,
// which other load on a shared machine disturbs far less than req/s. autocannon runs in its own
// process.

const CONNECTIONS = 10;
const SECONDS = 8;
const WARM_UP_SECONDS = 2;
const ROUNDS = 3;
const CHECKS = 200_000;
const WINDOWS = [
  { points: 100_000, perSeconds: 1 },
  { points: 1_000_000, perSeconds: 60 },
];
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

/** Microseconds per check: the tier of a parsed `{ __typename }`, then one point of each window. */
async function checkCost(database: string): Promise<number> {
  const limiter = await createRateLimiter(database, { warn: (message) => console.error(message) });
  const document = parse('{ __typename }');
  try {
    const started = performance.now();
    for (let index = 0; index < CHECKS; index += 1) {
      const verdict = await limiter.consume(`${tierOf(document)}:${index % 100}`, WINDOWS);
      if (!verdict.admitted) throw new Error('the limiter refused under its limit');
    }
    return ((performance.now() - started) * 1000) / CHECKS;
  } finally {
    await limiter.close();
  }
}

async function runOn(label: string, start: (env: Record<string, string>) => Promise<ServerProcess>): Promise<string> {
  const best = { off: 0, on: 0 };
  const cpuPerRequest = { off: [] as number[], on: [] as number[] };
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const [name, env] of [
      ['off', LIMITS_OFF],
      ['on', LIMITS_ON],
    ] as const) {
      const server = await start(env);
      try {
        await measure(server, WARM_UP_SECONDS);
        const cpuBefore = processCpuMs(server.pid);
        const result = await measure(server, SECONDS);
        const cpuAfter = processCpuMs(server.pid);
        const cpuUs = cpuBefore === null || cpuAfter === null ? NaN : ((cpuAfter - cpuBefore) * 1000) / result.requests;
        cpuPerRequest[name].push(cpuUs);
        const latency = latencySummary(result.samples);
        line(
          `${label} round ${round}, limits ${name.padEnd(3)}`,
          `${formatNumber(result.requestsPerSecond)} req/s, p50 ${formatNumber(latency.p50)} ms, p99 ${formatNumber(latency.p99)} ms, ` +
            `server CPU ${formatNumber(cpuUs, 0)} µs/request (${result.requests.toLocaleString('en')} responses, all 200)`,
        );
        best[name] = Math.max(best[name], result.requestsPerSecond);
      } finally {
        await server.stop();
      }
    }
  }
  const cost = (100 * (best.off - best.on)) / best.off;
  const cpu = { off: Math.min(...cpuPerRequest.off), on: Math.min(...cpuPerRequest.on) };
  const cpuCost = (100 * (cpu.on - cpu.off)) / cpu.off;
  line(`${label} best of ${ROUNDS}`, `off ${formatNumber(best.off)} req/s, on ${formatNumber(best.on)} req/s: ${formatNumber(cost, 1)}% apart (aim < 5%)`);
  line(
    `${label} least server CPU per request`,
    `off ${formatNumber(cpu.off, 0)} µs, on ${formatNumber(cpu.on, 0)} µs: ${formatNumber(cpuCost, 1)}% more with the limits`,
  );
  return (
    `${label} __typename off ${formatNumber(best.off)} / on ${formatNumber(best.on)} req/s (${formatNumber(cost, 1)}%), ` +
    `CPU ${formatNumber(cpu.off, 0)} / ${formatNumber(cpu.on, 0)} µs per request`
  );
}

export async function limiterSection(): Promise<SectionResult> {
  heading(
    `(l) rate limiter cost: { __typename } from one key, ${CONNECTIONS} connections, ${SECONDS} s per run, ` +
      `limits ${LIMITS_ON.TASKPORT_RATE_OTHER} (nothing refused) against TASKPORT_RATE_LIMITS=false`,
  );
  const memoryCheck = await checkCost(':memory:');
  line('check per operation, SQLite (memory)', `${formatNumber(memoryCheck, 2)} µs (${CHECKS.toLocaleString('en')} checks, 100 keys)`);
  const postgres = await benchPostgres();
  line('PostgreSQL', postgres.describe);
  const checkDatabase = await freshPgDatabase();
  let pgCheck: number;
  try {
    pgCheck = await checkCost(checkDatabase.url);
  } finally {
    await checkDatabase.drop();
  }
  line('check per operation, PostgreSQL (leases)', `${formatNumber(pgCheck, 2)} µs (${CHECKS.toLocaleString('en')} checks, 100 keys)`);
  const sqlite = await runOn('sqlite', (env) => startServerProcess({ concurrency: 8, env }));
  const pg = await runOn('pg', async (env) => startPgServerProcess(await freshPgDatabase(), { concurrency: 8, env }));
  return {
    summary: `limiter check ${formatNumber(memoryCheck, 2)} µs (memory) / ${formatNumber(pgCheck, 2)} µs (pg) | ${sqlite} | ${pg}`,
  };
}

runIfMain(import.meta.url, limiterSection);
