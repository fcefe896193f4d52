import {
  echoInput,
  formatNumber,
  heading,
  line,
  median,
  now,
  percentile,
  postGraphQL,
  runIfMain,
  sleep,
  startServerProcess,
  submitBatch,
  type SectionResult,
  type ServerProcess,
} from './lib.js';
import { benchPostgres, freshPgDatabase, startPgServerProcess } from './postgres.js';

// (c) taskStatuses for 10,000 ids in one POST: half the tasks are PENDING far in the future (so
// the answer carries queue positions), half have run to SUCCEEDED.

const IDS = 10_000;
const BATCH = 1_000;
const WARM_UPS = 3;
const RUNS = 20;

const STATUSES = `query($ids:[ID!]!){ taskStatuses(ids:$ids){ id found state status queuePosition resultRetrieved retrievalProtocol error { code } } }`;

interface Status {
  id: string;
  found: boolean;
  state: string | null;
  queuePosition: number | null;
}

export async function taskStatusesSection(): Promise<SectionResult> {
  heading(`(c) taskStatuses for ${IDS.toLocaleString('en')} ids over HTTP, ${RUNS} sequential requests after ${WARM_UPS} warm-ups`);
  return measureOn(await startServerProcess({ concurrency: 8 }), 'status ');
}

/** The same requests with the server on PostgreSQL (a fresh database on the bench's server). */
export async function taskStatusesPgSection(): Promise<SectionResult> {
  const postgres = await benchPostgres();
  heading(
    `(c) taskStatuses for ${IDS.toLocaleString('en')} ids over HTTP on PostgreSQL, ${RUNS} sequential requests after ${WARM_UPS} warm-ups`,
  );
  line('PostgreSQL', postgres.describe);
  return measureOn(await startPgServerProcess(await freshPgDatabase(), { concurrency: 8 }), 'pg-status');
}

async function measureOn(server: ServerProcess, summaryName: string): Promise<SectionResult> {
  try {
    const runAt = new Date(Date.now() + 365 * 86_400_000).toISOString();
    const ids: string[] = [];
    for (let first = 0; first < IDS; first += BATCH) {
      const inputs = Array.from({ length: BATCH }, (_, offset) =>
        echoInput(first + offset, (first + offset) % 2 === 0 ? { runAt } : {}),
      );
      ids.push(...(await submitBatch(server.url, server.token, inputs)));
    }

    const fetchStatuses = async () =>
      (await postGraphQL<{ taskStatuses: Status[] }>(server.url, server.token, STATUSES, { ids })).data!.taskStatuses;

    // Wait for the due half to finish, so that the worker does not run beside the timed requests.
    const deadline = Date.now() + 60_000;
    let statuses = await fetchStatuses();
    while (statuses.some((status) => status.state !== 'SUCCEEDED' && status.state !== 'PENDING')) {
      if (Date.now() > deadline) throw new Error('the due tasks did not finish within 60 s');
      await sleep(200);
      statuses = await fetchStatuses();
    }
    const pending = statuses.filter((status) => status.state === 'PENDING');
    if (statuses.length !== IDS || statuses.some((status) => !status.found)) {
      throw new Error(`expected ${IDS} found statuses, got ${statuses.filter((status) => status.found).length}`);
    }
    if (pending.length !== IDS / 2 || pending.some((status) => status.queuePosition === null)) {
      throw new Error(`expected ${IDS / 2} PENDING tasks with queue positions, got ${pending.length}`);
    }
    const positions = pending.map((status) => status.queuePosition!);
    line(
      'answer',
      `${statuses.length.toLocaleString('en')} statuses: ${pending.length.toLocaleString('en')} PENDING ` +
        `(queue positions ${Math.min(...positions)}..${Math.max(...positions)}, ${new Set(positions).size} distinct), ` +
        `${(statuses.length - pending.length).toLocaleString('en')} SUCCEEDED`,
    );

    for (let run = 0; run < WARM_UPS; run++) await fetchStatuses();
    const timings: number[] = [];
    const requestBody = JSON.stringify({ query: STATUSES, variables: { ids } });
    let responseBytes = 0;
    for (let run = 0; run < RUNS; run++) {
      const started = now();
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${server.token}` },
        body: requestBody,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      timings.push(now() - started);
      responseBytes = text.length;
      if (!response.ok || text.includes('"errors"')) throw new Error(`taskStatuses failed: ${text.slice(0, 300)}`);
    }
    const requestBytes = requestBody.length;
    const p50 = median(timings);
    const p95 = percentile(timings, 95);
    line('request / response size', `${formatNumber(requestBytes / 1024, 0)} KiB / ${formatNumber(responseBytes / 1024, 0)} KiB`);
    line(
      'round trip (client fetch, send to last byte)',
      `median ${formatNumber(p50)} ms, p95 ${formatNumber(p95)} ms, min ${formatNumber(Math.min(...timings))} ms, ` +
        `max ${formatNumber(Math.max(...timings))} ms (aim: median < 100 ms)`,
    );
    return {
      summary: `${summaryName} taskStatuses x ${IDS.toLocaleString('en')} ids median ${formatNumber(p50)} ms p95 ${formatNumber(p95)} ms`,
    };
  } finally {
    await server.stop();
  }
}

runIfMain(import.meta.url, taskStatusesSection);
