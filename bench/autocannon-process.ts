import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import type { LoadOptions, LoadResult } from './lib.js';

// autocannon in a process of its own, so that on two cores the server does not share a CPU with
// the client measuring it. Options come from BENCH_AUTOCANNON; the parent hears `started` and
// `done` (with every response's end time and latency) over IPC, and may send `stop` to end early.

interface AutocannonResult {
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  '2xx': number;
}

type Instance = EventEmitter & { stop(): void };
type Autocannon = (options: Record<string, unknown>, done: (error: Error | null, result: AutocannonResult) => void) => Instance;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

if (!process.send) {
  console.error('bench/autocannon-process.ts is started by the bench, with an IPC channel');
  process.exit(2);
}
const send = (message: Record<string, unknown>) => process.send!(message);
const options = JSON.parse(process.env.BENCH_AUTOCANNON ?? '{}') as LoadOptions;

const samples: [number, number][] = [];
let sampleBody: string | null = null;
const expected = options.expectInBody;
let startedAt = performance.now();

const instance = autocannon(
  {
    url: options.url,
    method: options.method ?? 'POST',
    headers: options.headers,
    ...(options.body === undefined ? {} : { body: options.body }),
    connections: options.connections,
    duration: options.duration,
    timeout: 10,
    verifyBody: (body: string) => {
      sampleBody ??= body;
      return expected === undefined || body.includes(expected);
    },
  },
  (error, result) => {
    if (error) {
      send({ type: 'done', error: String(error) });
      process.exit(1);
    }
    const durationMs = performance.now() - startedAt;
    const requests = samples.length;
    const summary: LoadResult = {
      requests,
      durationMs,
      requestsPerSecond: (requests * 1000) / durationMs,
      status2xx: result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      mismatches: result.mismatches,
      samples,
      sampleBody,
    };
    process.send!({ type: 'done', result: summary }, () => process.disconnect());
  },
);

instance.once('start', () => {
  startedAt = performance.now();
  send({ type: 'started' });
});
instance.on('response', (_client: unknown, _status: number, _bytes: number, latencyMs: number) => {
  samples.push([Date.now(), latencyMs]);
});

process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') instance.stop();
});
process.on('disconnect', () => {
  instance.stop();
  setTimeout(() => process.exit(0), 100).unref();
});
