import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Shared by every figure: temporary databases, a server and a load generator each in a process of
// their own (on two cores, a load generator that shares the server's process measures itself), and
// the arithmetic. Everything started here is killed and removed when the bench exits, however it exits.

const BENCH_FOLDER = dirname(fileURLToPath(import.meta.url));
const PROJECT_FOLDER = resolve(BENCH_FOLDER, '..');

// ------------------------------------------------------------------ cleanup

const temporaryFolders = new Set<string>();
const children = new Set<ChildProcess>();

function killChildrenNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

function removeFoldersNow(): void {
  for (const folder of temporaryFolders) rmSync(folder, { recursive: true, force: true });
  temporaryFolders.clear();
}

process.on('exit', () => {
  killChildrenNow();
  removeFoldersNow();
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, killing child processes and removing temporary folders\n`);
    process.exit(130);
  });
}

/** A fresh folder under the system temp dir, removed when the bench exits (or earlier by `removeFolder`). */
export function temporaryFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'taskport-bench-'));
  temporaryFolders.add(folder);
  return folder;
}

export function removeFolder(folder: string): void {
  rmSync(folder, { recursive: true, force: true });
  temporaryFolders.delete(folder);
}

// ------------------------------------------------------------------ time and numbers

export const now = (): number => performance.now();

/** Rejects after `ms` so that no step of the bench can hang it. */
export async function withTimeout<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const median = (values: readonly number[]) => percentile(values, 50);

/** 12345.6 -> "12,346"; small values keep a decimal or two. */
export function formatNumber(value: number, decimals?: number): string {
  if (!Number.isFinite(value)) return String(value);
  const digits = decimals ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function perSecond(count: number, elapsedMs: number): number {
  return (count * 1000) / elapsedMs;
}

// ------------------------------------------------------------------ child processes

interface Envelope {
  replyTo?: number;
  [key: string]: unknown;
}

/** A child process spoken to over its IPC channel: requests carry an id, answers name it in `replyTo`. */
export class IpcChild {
  readonly process: ChildProcess;
  readonly #waiting = new Map<number, { resolve: (value: Envelope) => void; reject: (error: Error) => void }>();
  readonly #listeners = new Set<(message: Envelope) => void>();
  #nextId = 1;
  readonly exited: Promise<number | null>;

  constructor(child: ChildProcess, label: string) {
    this.process = child;
    children.add(child);
    child.on('message', (message: Envelope) => {
      if (typeof message.replyTo === 'number') {
        const waiter = this.#waiting.get(message.replyTo);
        this.#waiting.delete(message.replyTo);
        if (message.error) waiter?.reject(new Error(`${label}: ${String(message.error)}`));
        else waiter?.resolve(message);
      }
      for (const listener of this.#listeners) listener(message);
    });
    child.on('error', () => {});
    this.exited = new Promise((resolve) => {
      // 'close' rather than 'exit': it waits for the IPC channel, so no message is still in flight.
      child.once('close', (code, signal) => {
        children.delete(child);
        const error = new Error(`${label} exited (code ${code}, signal ${signal})`);
        for (const waiter of this.#waiting.values()) waiter.reject(error);
        this.#waiting.clear();
        resolve(code);
      });
    });
  }

  request(message: Record<string, unknown>, timeoutMs = 30_000): Promise<Envelope> {
    const id = this.#nextId++;
    const answer = new Promise<Envelope>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
    });
    this.send({ ...message, id });
    return withTimeout(timeoutMs, `${String(message.type)} request`, answer);
  }

  /** The first message for which `accept` is true. */
  waitFor(accept: (message: Envelope) => boolean, timeoutMs: number, what: string): Promise<Envelope> {
    let listener: ((message: Envelope) => void) | undefined;
    const found = new Promise<Envelope>((resolve, reject) => {
      listener = (message) => {
        if (accept(message)) resolve(message);
      };
      this.#listeners.add(listener);
      void this.exited.then((code) => reject(new Error(`${what}: the process exited (code ${code}) first`)));
    });
    return withTimeout(timeoutMs, what, found).finally(() => this.#listeners.delete(listener!));
  }

  /** A failed send means the child has gone, which `exited` reports; the callback keeps it from throwing. */
  send(message: Record<string, unknown>): void {
    if (this.process.connected) this.process.send(message, () => {});
  }

  /** Asks politely, then kills after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function spawnTypeScript(script: string, env: Record<string, string>, label: string): IpcChild {
  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_FOLDER, script)], {
    cwd: PROJECT_FOLDER,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new IpcChild(child, label);
}

// ------------------------------------------------------------------ the server process

export interface LoopDelay {
  /** Longest stall: the monitor's largest delay minus its 1 ms sampling interval. */
  maxMs: number;
  p99Ms: number;
  meanMs: number;
  samples: number;
  /** Gaps of more than 20 ms between ticks of a 5 ms timer in the server. */
  stallsOver20Ms: number;
  /** The longest such gap, with the CPU time the server process used during it. */
  longestStall: { wallMs: number; cpuMs: number } | null;
  /** The longest garbage-collection pause. */
  longestGcMs: number;
}

export interface Drain {
  succeeded: number;
  failed: number;
  /** Wall-clock (Date.now()) of the first claim and of the last success, as the server saw them. */
  firstClaimAt: number;
  lastSucceededAt: number;
  loopDelay: LoopDelay;
}

export interface ServerProcess {
  url: string;
  /** The server's process id, for its CPU time (processCpuMs of bench/postgres.ts). */
  pid: number | undefined;
  token: string;
  organisationId: number;
  database: string;
  /** Starts counting successes in the token's organisation; resolves once `expect` tasks have succeeded. */
  watchDrain(expect: number, timeoutMs: number): Promise<Drain>;
  /** The event-loop delay since the last reset, and a reset. */
  loopDelay(): Promise<LoopDelay>;
  stop(): Promise<void>;
}

/** `node --import tsx bench/server-process.ts`: startTaskport as `taskport serve` runs it, on 127.0.0.1 and port 0. */
/**
 * The benchmarks submit far past the default rate limits from one key: their server processes run
 * without them unless told (bench/limiter.ts measures what the limits cost).
 */
export const BENCH_RATE_LIMITS_OFF = { TASKPORT_RATE_LIMITS: 'false' };

export async function startServerProcess(
  options: { concurrency?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const folder = temporaryFolder();
  const database = join(folder, 'taskport.db');
  const token = `tp_bench_${randomBytes(16).toString('hex')}`;
  const child = spawnTypeScript(
    'server-process.ts',
    {
      HOST: '127.0.0.1',
      PORT: '0',
      TASKPORT_DB: database,
      TASKPORT_CONCURRENCY: String(options.concurrency ?? 8),
      TASKPORT_BOOTSTRAP_TOKEN: token,
      TASKPORT_SHUTDOWN_GRACE_MS: '2000',
      TASKPORT_LOG_LEVEL: 'warn',
      // What `taskport serve` sets when the environment does not say.
      NODE_ENV: process.env.NODE_ENV ?? 'production',
      ...BENCH_RATE_LIMITS_OFF,
      ...options.env,
    },
    'server process',
  );
  let ready: Envelope;
  try {
    ready = await child.waitFor((message) => message.type === 'ready', 30_000, 'server process start');
  } catch (error) {
    await child.stop(1000);
    removeFolder(folder);
    throw error;
  }
  return {
    url: String(ready.url),
    pid: child.process.pid,
    token,
    organisationId: Number(ready.organisationId),
    database,
    watchDrain: async (expect, timeoutMs) => {
      const answer = await child.request({ type: 'watch-drain', expect, timeoutMs }, timeoutMs + 5000);
      return answer.drain as Drain;
    },
    loopDelay: async () => (await child.request({ type: 'loop-delay' })).loopDelay as LoopDelay,
    stop: async () => {
      await child.stop();
      removeFolder(folder);
    },
  };
}

// ------------------------------------------------------------------ the load generator process

export interface LoadOptions {
  url: string;
  /** POST unless told. */
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Not sent with GET. */
  body?: string;
  connections: number;
  /** Seconds; a run can also be ended early with `stop()`. */
  duration: number;
  /** Every response body must contain this, or it counts as a mismatch. */
  expectInBody?: string;
}

export interface LoadResult {
  requests: number;
  durationMs: number;
  requestsPerSecond: number;
  status2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  /** From every response: [wall-clock end (Date.now()), latency ms]. */
  samples: [number, number][];
  /** One response body, as sent by the server. */
  sampleBody: string | null;
}

export interface LoadRun {
  /** Resolves when the load generator has sent its first requests. */
  started: Promise<void>;
  result: Promise<LoadResult>;
  /** Ends the run now; `result` then resolves. */
  stop(): void;
}

/** autocannon in `bench/autocannon-process.ts`, a process of its own. */
export function runLoad(options: LoadOptions): LoadRun {
  const child = spawnTypeScript('autocannon-process.ts', { BENCH_AUTOCANNON: JSON.stringify(options) }, 'autocannon process');
  const bound = (options.duration + 30) * 1000;
  const started = child.waitFor((message) => message.type === 'started', 30_000, 'autocannon start').then(() => {});
  const result = child
    .waitFor((message) => message.type === 'done', bound, 'autocannon run')
    .then((message) => message.result as LoadResult)
    .finally(() => void child.stop(5000));
  // Whoever awaits only one of the two must not get an unhandled rejection from the other.
  started.catch(() => {});
  result.catch(() => {});
  return {
    started,
    result,
    stop: () => child.send({ type: 'stop' }),
  };
}

export function latencySummary(samples: readonly [number, number][]) {
  const latencies = samples.map(([, latency]) => latency);
  return {
    count: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    // Not Math.max(...latencies): past ~120,000 arguments it overflows the stack.
    max: latencies.length === 0 ? Number.NaN : latencies.reduce((found, latency) => Math.max(found, latency)),
  };
}

// ------------------------------------------------------------------ GraphQL over HTTP

export async function postGraphQL<Data = any>(
  url: string,
  token: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ data?: Data; errors?: { message: string }[] }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await response.json()) as { data?: Data; errors?: { message: string }[] };
  if (!response.ok || body.errors) {
    throw new Error(`HTTP ${response.status}: ${JSON.stringify(body.errors ?? body).slice(0, 500)}`);
  }
  return body;
}

export const SUBMIT_TASKS = `mutation ($inputs: [SubmitTaskInput!]!) {
  submitTasks(inputs: $inputs) {
    __typename
    ... on SubmitTasksSuccess { tasks { id } }
    ... on Error { code message }
  }
}`;

/** One submitTasks request; the global ids of the tasks it created, or an error naming the failure. */
export async function submitBatch(url: string, token: string, inputs: Record<string, unknown>[]): Promise<string[]> {
  const { data } = await postGraphQL<{
    submitTasks: { __typename: string; tasks?: { id: string }[]; code?: string; message?: string };
  }>(url, token, SUBMIT_TASKS, { inputs });
  const result = data!.submitTasks;
  if (result.__typename !== 'SubmitTasksSuccess') throw new Error(`submitTasks: ${result.code} ${result.message}`);
  return result.tasks!.map((task) => task.id);
}

export function echoInput(index: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { service: 'demo', action: 'echo', params: { message: `bench ${index}` }, ...extra };
}

// ------------------------------------------------------------------ sections

export interface SectionResult {
  /** One line for the summary table, e.g. `engine  submit ... | ...`. */
  summary: string;
}

export type Section = () => Promise<SectionResult>;

/** Lets each figure's script run on its own: `tsx bench/engine.ts`. */
export function runIfMain(moduleUrl: string, section: Section): void {
  if (process.argv[1] === undefined || pathToFileURL(resolve(process.argv[1])).href !== moduleUrl) return;
  section().then(
    (result) => {
      console.log(`\n${result.summary}`);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

export function heading(text: string): void {
  console.log(`\n== ${text}`);
}

export function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(44)} ${value}`);
}
