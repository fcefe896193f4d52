import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import type { TaskChange } from '../src/domain/events.js';
import { startTaskport } from '../src/main.js';

// The server under test, started as `taskport serve` starts it (config from the environment),
// in a process of its own. The bench talks to it over the IPC channel only, so the product gets no
// extra routes: `ready` with the url, then answers to `loop-delay`, `watch-drain` and `stop`.
// Without the IPC channel (the bench died) it stops.

if (!process.send) {
  console.error('bench/server-process.ts is started by the bench, with an IPC channel');
  process.exit(2);
}
const send = (message: Record<string, unknown>) => process.send!(message);

const LOOP_DELAY_RESOLUTION_MS = 1;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
loopDelay.enable();

// Beside the histogram, each long gap between two ticks of a 5 ms timer is kept with the CPU time
// this process used during it: a gap spent on the CPU is the server blocking its own loop; a gap
// without CPU is the machine running something else (a busy host, not the product).
const STALL_MS = 20;
let stalls: { wallMs: number; cpuMs: number }[] = [];
let lastTick = performance.now();
let lastCpu = process.cpuUsage();
setInterval(() => {
  const tick = performance.now();
  const cpu = process.cpuUsage();
  if (tick - lastTick > STALL_MS) {
    stalls.push({ wallMs: tick - lastTick, cpuMs: (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000 });
  }
  lastTick = tick;
  lastCpu = cpu;
}, 5).unref();

// Garbage-collection pauses, so that a stall on the CPU can be told apart from one in the product's code.
let longestGcMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) longestGcMs = Math.max(longestGcMs, entry.duration);
}).observe({ entryTypes: ['gc'] });

function readLoopDelay() {
  const toMs = (ns: number) => ns / 1e6;
  const longest = stalls.reduce<{ wallMs: number; cpuMs: number } | null>(
    (found, stall) => (found === null || stall.wallMs > found.wallMs ? stall : found),
    null,
  );
  const result = {
    longestGcMs,
    stallsOver20Ms: stalls.length,
    longestStall: longest,
    // The histogram records whole intervals between samples, so an idle loop shows the resolution.
    maxMs: Math.max(0, toMs(loopDelay.max) - LOOP_DELAY_RESOLUTION_MS),
    p99Ms: Math.max(0, toMs(loopDelay.percentile(99)) - LOOP_DELAY_RESOLUTION_MS),
    meanMs: Math.max(0, toMs(loopDelay.mean) - LOOP_DELAY_RESOLUTION_MS),
    samples: loopDelay.count,
  };
  loopDelay.reset();
  stalls = [];
  longestGcMs = 0;
  return result;
}

const config = loadConfig(process.env);
const logger = pino({ level: config.logLevel }, pino.destination(2));
const taskport = await startTaskport(config, logger);
const viewer = await taskport.engine.authenticate(config.bootstrapToken ?? '');
if (!viewer) throw new Error('the bootstrap token does not authenticate');
const organisationId = viewer.organisation.id;

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const forced = setTimeout(() => process.exit(code || 1), 10_000);
  forced.unref();
  try {
    await taskport.stop();
  } finally {
    process.exit(code);
  }
}
process.on('disconnect', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

interface Request {
  id: number;
  type: string;
  expect?: number;
  timeoutMs?: number;
}

process.on('message', (request: Request) => {
  switch (request.type) {
    case 'loop-delay':
      send({ replyTo: request.id, loopDelay: readLoopDelay() });
      return;
    case 'watch-drain':
      watchDrain(request);
      return;
    case 'stop':
      void stop(0);
      return;
    default:
      send({ replyTo: request.id, error: `unknown request ${request.type}` });
  }
});

/**
 * Counts SUCCEEDED transitions in the organisation until `expect` have happened. The event-loop
 * monitor is reset at the first claim, so that what it reports covers the drain only.
 */
function watchDrain(request: Request): void {
  const expect = request.expect ?? 0;
  let succeeded = 0;
  let failed = 0;
  let firstClaimAt = 0;
  const finish = (error?: string) => {
    stopListening();
    clearTimeout(timer);
    const lastSucceededAt = Date.now();
    send({
      replyTo: request.id,
      ...(error ? { error } : {}),
      drain: { succeeded, failed, firstClaimAt, lastSucceededAt, loopDelay: readLoopDelay() },
    });
  };
  const timer = setTimeout(
    () => finish(`only ${succeeded} of ${expect} tasks succeeded (${failed} failed) within ${request.timeoutMs} ms`),
    request.timeoutMs ?? 60_000,
  );
  const stopListening = taskport.engine.events.listen('organisation', organisationId, (change: TaskChange) => {
    if (change.kind !== 'STATE_CHANGED') return;
    if (change.state === 'PROCESSING' && firstClaimAt === 0) {
      firstClaimAt = Date.now();
      loopDelay.reset();
      stalls = [];
      longestGcMs = 0;
    } else if (change.state === 'SUCCEEDED') {
      succeeded += 1;
      if (succeeded === expect) finish();
    } else if (change.state === 'FAILED' || change.state === 'CANCELLED') {
      failed += 1;
    }
  });
}

send({ type: 'ready', url: taskport.url, organisationId });
