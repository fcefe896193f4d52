import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import {
  formatNumber,
  heading,
  line,
  percentile,
  postGraphQL,
  removeFolder,
  runIfMain,
  sleep,
  spawnTypeScript,
  SUBMIT_TASKS,
  temporaryFolder,
  withTimeout,
  BENCH_RATE_LIMITS_OFF,
  type LoopDelay,
  type SectionResult,
} from './lib.js';

// Fan-out: 1,000 graphql-ws clients, each subscribed to taskUpdated for its own task while those
// tasks run (demo.sleep, 3 steps over 3 s, 250 at a time). Delivery latency is the time from the
// change the server wrote (dateStarted, dateCompleted) to the message reaching its client; memory
// is the server process's resident set with the subscriptions open, less before, per subscription.
// Then the case of issue 10: 200 sockets × 25 subscriptions of ONE task (5,000 followers), which
// stalled the server 2 s when each follower read the task for itself. The server runs with the
// per-key caps raised (TASKPORT_MAX_SOCKETS_PER_KEY, TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY), since all
// clients use the one bench key.

const CLIENTS = 1000;
const CONCURRENCY = 250;
const SLEEP_MS = 3000;
const STEPS = 3;
/** Time to open every subscription before the tasks start. */
const START_DELAY_MS = 20_000;
const ONE_TASK_SOCKETS = 200;
const ONE_TASK_SUBSCRIPTIONS_PER_SOCKET = 25;

const TASK_UPDATED = `subscription ($id: ID!) { taskUpdated(id: $id) { id state progress dateStarted dateCompleted } }`;

interface Update {
  state: string;
  progress: number | null;
  dateStarted: string | null;
  dateCompleted: string | null;
}

function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  return kib * 1024;
}

async function startServer() {
  const folder = temporaryFolder();
  const token = `tp_bench_${randomBytes(16).toString('hex')}`;
  const child = spawnTypeScript(
    'server-process.ts',
    {
      HOST: '127.0.0.1',
      PORT: '0',
      TASKPORT_DB: join(folder, 'taskport.db'),
      TASKPORT_CONCURRENCY: String(CONCURRENCY),
      TASKPORT_BOOTSTRAP_TOKEN: token,
      TASKPORT_SHUTDOWN_GRACE_MS: '2000',
      TASKPORT_LOG_LEVEL: 'warn',
      TASKPORT_MAX_SOCKETS_PER_KEY: String(CLIENTS + ONE_TASK_SOCKETS + 10),
      TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY: String(CLIENTS + ONE_TASK_SOCKETS * ONE_TASK_SUBSCRIPTIONS_PER_SOCKET + 10),
      NODE_ENV: process.env.NODE_ENV ?? 'production',
      ...BENCH_RATE_LIMITS_OFF,
    },
    'server process',
  );
  const ready = await child.waitFor((message) => message.type === 'ready', 30_000, 'server process start');
  return {
    url: String(ready.url),
    token,
    pid: child.process.pid!,
    loopDelay: async () => (await child.request({ type: 'loop-delay' })).loopDelay as LoopDelay,
    stop: async () => {
      await child.stop();
      removeFolder(folder);
    },
  };
}

function client(url: string, token: string): Client {
  return createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
  });
}

/** Follows one task; calls `onUpdate` with the receipt time of each message; resolves on complete. */
function follow(target: Client, id: string, onUpdate: (update: Update, receivedAt: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    target.subscribe<{ taskUpdated: Update }>(
      { query: TASK_UPDATED, variables: { id } },
      {
        next: (result) => {
          if (result.errors) reject(new Error(JSON.stringify(result.errors)));
          else onUpdate(result.data!.taskUpdated, Date.now());
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: resolve,
      },
    );
  });
}

async function submitSleeps(url: string, token: string, count: number, runAt: Date): Promise<string[]> {
  const inputs = Array.from({ length: count }, () => ({
    service: 'demo',
    action: 'sleep',
    params: { ms: SLEEP_MS, steps: STEPS },
    runAt: runAt.toISOString(),
  }));
  const ids: string[] = [];
  for (let start = 0; start < inputs.length; start += 1000) {
    const answer = await postGraphQL(url, token, SUBMIT_TASKS, { inputs: inputs.slice(start, start + 1000) });
    const batch = answer.data?.submitTasks;
    if (batch?.__typename !== 'SubmitTasksSuccess') throw new Error(`submitTasks: ${JSON.stringify(answer)}`);
    ids.push(...batch.tasks.map((task: { id: string }) => task.id));
  }
  return ids;
}

const ms = (value: number) => `${formatNumber(value)} ms`;

export async function fanoutSection(): Promise<SectionResult> {
  heading(`fanout: ${CLIENTS} graphql-ws clients, each following its own task (demo.sleep ${SLEEP_MS} ms, concurrency ${CONCURRENCY})`);
  const server = await startServer();
  const clients: Client[] = [];
  try {
    // Warm the code paths up, so that the memory measured is the subscriptions'.
    const [warmId] = await submitSleeps(server.url, server.token, 1, new Date());
    const warm = client(server.url, server.token);
    await follow(warm, warmId!, () => {});
    await warm.dispose();
    await sleep(500);
    const residentBefore = residentBytes(server.pid);

    const runAt = new Date(Date.now() + START_DELAY_MS);
    const ids = await submitSleeps(server.url, server.token, CLIENTS, runAt);
    const startLatencies: number[] = [];
    const finishLatencies: number[] = [];
    let firstMessages = 0;
    let messages = 0;
    let allFirst: () => void = () => {};
    const allSubscribed = new Promise<void>((resolve) => (allFirst = resolve));
    const openedAt = Date.now();
    const done = ids.map((id) => {
      const own = client(server.url, server.token);
      clients.push(own);
      let first = true;
      let started = false;
      return follow(own, id, (update, receivedAt) => {
        messages += 1;
        if (first) {
          first = false;
          if (++firstMessages === CLIENTS) allFirst();
        }
        if (!started && update.dateStarted && update.state !== 'PENDING') {
          started = true;
          startLatencies.push(receivedAt - Date.parse(update.dateStarted));
        }
        if (update.dateCompleted) finishLatencies.push(receivedAt - Date.parse(update.dateCompleted));
      });
    });
    await withTimeout(START_DELAY_MS, 'opening the subscriptions', allSubscribed);
    const openMs = Date.now() - openedAt;
    await sleep(500);
    const residentOpen = residentBytes(server.pid);
    if (Date.now() > runAt.getTime()) console.warn('  (the tasks started before every subscription was open)');
    await server.loopDelay();
    await withTimeout(120_000, 'the tasks to finish', Promise.all(done));
    const loop = await server.loopDelay();
    const perSubscription = (residentOpen - residentBefore) / CLIENTS;

    line('subscriptions opened', `${CLIENTS} in ${ms(openMs)}`);
    line('messages received', formatNumber(messages));
    line('delivery of the start (p50 / p99 / max)', `${ms(percentile(startLatencies, 50))} / ${ms(percentile(startLatencies, 99))} / ${ms(Math.max(...startLatencies))}`);
    line('delivery of the end (p50 / p99 / max)', `${ms(percentile(finishLatencies, 50))} / ${ms(percentile(finishLatencies, 99))} / ${ms(Math.max(...finishLatencies))}`);
    line('server memory per open subscription', `${formatNumber(perSubscription / 1024, 1)} KiB (resident set, socket included)`);
    line('server event loop while they ran (max / p99)', `${ms(loop.maxMs)} / ${ms(loop.p99Ms)}`);
    await Promise.all(clients.splice(0).map((open) => open.dispose()));

    heading(`fanout: one task, ${ONE_TASK_SOCKETS} sockets × ${ONE_TASK_SUBSCRIPTIONS_PER_SOCKET} subscriptions`);
    const oneRunAt = new Date(Date.now() + START_DELAY_MS);
    const [oneId] = await submitSleeps(server.url, server.token, 1, oneRunAt);
    const oneFinish: number[] = [];
    let oneFirst = 0;
    let oneAllFirst: () => void = () => {};
    const oneSubscribed = new Promise<void>((resolve) => (oneAllFirst = resolve));
    const followers = ONE_TASK_SOCKETS * ONE_TASK_SUBSCRIPTIONS_PER_SOCKET;
    const oneDone: Promise<void>[] = [];
    for (let socket = 0; socket < ONE_TASK_SOCKETS; socket += 1) {
      const shared = client(server.url, server.token);
      clients.push(shared);
      for (let index = 0; index < ONE_TASK_SUBSCRIPTIONS_PER_SOCKET; index += 1) {
        let first = true;
        oneDone.push(
          follow(shared, oneId!, (update, receivedAt) => {
            if (first) {
              first = false;
              if (++oneFirst === followers) oneAllFirst();
            }
            if (update.dateCompleted) oneFinish.push(receivedAt - Date.parse(update.dateCompleted));
          }),
        );
      }
    }
    await withTimeout(START_DELAY_MS, 'opening the subscriptions', oneSubscribed);
    await server.loopDelay();
    await withTimeout(60_000, 'the task to finish', Promise.all(oneDone));
    const oneLoop = await server.loopDelay();
    line('delivery of the end to all (p50 / p99 / max)', `${ms(percentile(oneFinish, 50))} / ${ms(percentile(oneFinish, 99))} / ${ms(Math.max(...oneFinish))}`);
    line('server event loop while it ran (max / p99)', `${ms(oneLoop.maxMs)} / ${ms(oneLoop.p99Ms)}`);

    return {
      summary:
        `fanout  ${CLIENTS} clients: start p50 ${ms(percentile(startLatencies, 50))} p99 ${ms(percentile(startLatencies, 99))}, ` +
        `end p50 ${ms(percentile(finishLatencies, 50))} p99 ${ms(percentile(finishLatencies, 99))}, ` +
        `${formatNumber(perSubscription / 1024, 1)} KiB per subscription | one task × ${followers}: end p99 ${ms(percentile(oneFinish, 99))}, ` +
        `longest stall ${ms(oneLoop.maxMs)}`,
    };
  } finally {
    await Promise.all(clients.map((open) => open.dispose()));
    await server.stop();
  }
}

runIfMain(import.meta.url, fanoutSection);
