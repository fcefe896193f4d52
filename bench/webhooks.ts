import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  echoInput,
  formatNumber,
  heading,
  line,
  percentile,
  runIfMain,
  startServerProcess,
  submitBatch,
  type SectionResult,
  type ServerProcess,
} from './lib.js';
import { benchPostgres, freshPgDatabase, startPgServerProcess } from './postgres.js';

// Webhook delivery: 1,000 tasks, each naming a webhook, submitted in one batch so that they end
// within a fraction of a second of each other; a receiver in this process answers 204 and notes when
// each message arrived. Latency is from the task's end (dateCompleted in the message, written by the
// server on this machine's clock) to the message's arrival; throughput is messages over the time from
// the first end to the last arrival. The server sends at most TASKPORT_WEBHOOK_MAX_IN_FLIGHT (16) at once.

const TASKS = 1000;
const ROUNDS = 3;

interface Arrival {
  endedAt: number;
  arrivedAt: number;
}

async function startReceiver(): Promise<{ url: string; arrivals: Arrival[]; server: Server }> {
  const arrivals: Arrival[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const arrivedAt = Date.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { task: { dateCompleted: string } } };
      arrivals.push({ endedAt: Date.parse(body.data.task.dateCompleted), arrivedAt });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, arrivals, server };
}

async function measureOn(start: () => Promise<ServerProcess>, name: string): Promise<SectionResult> {
  const receiver = await startReceiver();
  const server = await start();
  const rates: number[] = [];
  const latencies: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      receiver.arrivals.splice(0);
      const inputs = Array.from({ length: TASKS }, (_, index) => echoInput(index, { webhook: { url: receiver.url } }));
      await submitBatch(server.url, server.token, inputs);
      const deadline = Date.now() + 120_000;
      while (receiver.arrivals.length < TASKS && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      if (receiver.arrivals.length < TASKS) throw new Error(`${receiver.arrivals.length} of ${TASKS} messages arrived in 120 s`);
      const firstEnd = Math.min(...receiver.arrivals.map((arrival) => arrival.endedAt));
      const lastArrival = Math.max(...receiver.arrivals.map((arrival) => arrival.arrivedAt));
      const rate = (TASKS / Math.max(lastArrival - firstEnd, 1)) * 1000;
      const roundLatencies = receiver.arrivals.map((arrival) => arrival.arrivedAt - arrival.endedAt);
      rates.push(rate);
      latencies.push(...roundLatencies);
      line(
        `round ${round + 1}`,
        `${formatNumber(rate)} deliveries/s, end to arrival p50 ${formatNumber(percentile(roundLatencies, 50))} ms, p99 ${formatNumber(percentile(roundLatencies, 99))} ms`,
      );
    }
  } finally {
    await server.stop();
    receiver.server.close();
  }
  const summary = `${name} ${TASKS} ending at once: ${formatNumber(Math.min(...rates))}–${formatNumber(Math.max(...rates))} deliveries/s, end to arrival p50 ${formatNumber(percentile(latencies, 50))} ms, p99 ${formatNumber(percentile(latencies, 99))} ms`;
  return { summary };
}

const SERVER_ENV = { TASKPORT_WEBHOOK_ALLOW_PRIVATE: 'true' };

export async function webhooksSection(): Promise<SectionResult> {
  heading(`webhook delivery on SQLite: ${TASKS} tasks ending at once, each with a webhook to a local receiver, ${ROUNDS} rounds`);
  return measureOn(() => startServerProcess({ concurrency: 8, env: SERVER_ENV }), 'webhooks   ');
}

export async function webhooksPgSection(): Promise<SectionResult> {
  const postgres = await benchPostgres();
  heading(`webhook delivery on PostgreSQL: ${TASKS} tasks ending at once, each with a webhook to a local receiver, ${ROUNDS} rounds`);
  line('PostgreSQL', postgres.describe);
  return measureOn(async () => startPgServerProcess(await freshPgDatabase(), { concurrency: 8, env: SERVER_ENV }), 'pg-webhooks');
}

runIfMain(import.meta.url, webhooksSection);
