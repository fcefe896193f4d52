import { defineAction, defineService, TaskFailure } from './types.js';

const DATA_TYPES = ['sms', 'calls', 'contacts', 'photos'] as const;
type DataType = (typeof DATA_TYPES)[number];

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A small deterministic generator, so that the same device always yields the same records. */
function seededRandom(seed: string): () => number {
  let state = 2166136261;
  for (const char of seed) state = Math.imul(state ^ char.charCodeAt(0), 16777619);
  return () => {
    state = Math.imul(state ^ (state >>> 15), 2246822507);
    state = Math.imul(state ^ (state >>> 13), 3266489909);
    state ^= state >>> 16;
    return (state >>> 0) / 4294967296;
  };
}

function syntheticRecords(type: DataType, device: string, since: string | undefined): Record<string, unknown>[] {
  const random = seededRandom(`${device}/${type}`);
  const start = since ? Date.parse(`${since}T00:00:00Z`) : Date.UTC(2026, 0, 1);
  const count = 3 + Math.floor(random() * 5);
  const phone = () => `+1555${String(Math.floor(random() * 1e7)).padStart(7, '0')}`;
  return Array.from({ length: count }, (_, index) => {
    const timestamp = new Date(start + Math.floor(random() * 30 * 86_400_000)).toISOString();
    switch (type) {
      case 'sms':
        return { from: phone(), timestamp, text: `message ${index + 1}` };
      case 'calls':
        return { number: phone(), timestamp, durationSeconds: Math.floor(random() * 600) };
      case 'contacts':
        return { name: `Contact ${index + 1}`, phone: phone() };
      case 'photos':
        return { file: `IMG_${1000 + index}.jpg`, timestamp, bytes: 100_000 + Math.floor(random() * 4e6) };
    }
  });
}

export const demoService = defineService({
  slug: 'demo',
  name: 'Demo',
  description: 'Built-in actions to try the API with: echo, sleep, fail and a data fetch against an account.',
  actions: [
    defineAction<{ message: string }>({
      slug: 'echo',
      name: 'Echo',
      description: 'Succeeds at once with the message it was given.',
      execution: ['ASYNCHRONOUS'],
      parameters: [{ slug: 'message', name: 'Message', type: 'STRING', description: 'Returned as is.' }],
      handler: ({ params }) => ({ message: params.message }),
    }),
    defineAction<{ ms: number; steps: number }>({
      slug: 'sleep',
      name: 'Sleep',
      description: 'Sleeps for ms milliseconds in steps, logging and reporting progress at each step.',
      execution: ['ASYNCHRONOUS'],
      timeoutSeconds: 900,
      parameters: [
        { slug: 'ms', name: 'Milliseconds', type: 'INTEGER', min: 0, max: 600_000 },
        { slug: 'steps', name: 'Steps', type: 'INTEGER', optional: true, min: 1, max: 1000, default: 10 },
      ],
      handler: async ({ params, signal, log, progress }) => {
        const { ms, steps } = params;
        for (let step = 1; step <= steps; step++) {
          await delay(ms / steps, signal);
          log('INFO', `step ${step} of ${steps}`);
          progress(step / steps);
        }
        return { sleptMs: ms };
      },
    }),
    defineAction<{ code?: string }>({
      slug: 'fail',
      name: 'Fail',
      description: 'Fails with the given error code (DEMO_FAILURE by default).',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 1,
      parameters: [{ slug: 'code', name: 'Error code', type: 'STRING', optional: true }],
      handler: ({ params }) => {
        throw new TaskFailure(params.code ?? 'DEMO_FAILURE', 'The demo action failed as asked.');
      },
    }),
    defineAction<{ device: string; since?: string; data: DataType[] }>({
      slug: 'fetch-data',
      name: 'Fetch data',
      description: 'Collects the requested kinds of data from a device of the account; one result per kind.',
      execution: ['ASYNCHRONOUS'],
      requiresAccount: true,
      parameters: [
        { slug: 'device', name: 'Device', type: 'STRING', description: 'Device identifier.' },
        { slug: 'since', name: 'Since', type: 'DATE', optional: true, description: 'Only data from this day on.' },
        {
          slug: 'data',
          name: 'Data',
          type: 'LIST',
          description: 'Kinds of data to collect.',
          allowedValues: DATA_TYPES,
          permissioned: true,
        },
      ],
      handler: async ({ params, account, signal, log, progress, publish }) => {
        const kinds = [...new Set(params.data)];
        log('INFO', `fetching ${kinds.join(', ')} from ${params.device} for ${account?.username}`);
        for (const [index, kind] of kinds.entries()) {
          await delay(5, signal);
          const records = syntheticRecords(kind, params.device, params.since);
          publish(kind, { device: params.device, since: params.since ?? null, records });
          log('INFO', `collected ${records.length} ${kind} records`);
          progress((index + 1) / kinds.length);
        }
      },
    }),
  ],
});
