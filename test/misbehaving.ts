import { Catalog, defineAction, defineService, TaskFailure } from '../src/catalog/index.js';
import { demoService } from '../src/catalog/demo.js';

/**
 * Handlers that do what a careless or hostile handler might, for tests that check that each one
 * fails only its own attempt. Served beside the demo service, whose echo shows the server still works.
 */

const MiB = 1024 * 1024;

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** A barrier a test opens from outside, to hold a handler at a known point. */
export class Gate {
  #open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.#open = resolve));
  open(): void {
    this.#open();
  }
}

/** The gates of the `gated` action: `reached` opens when the handler runs, `release` lets it go on. */
export const gated = { reached: new Gate(), release: new Gate(), finish: new Gate() };

export function resetGated(): void {
  gated.reached = new Gate();
  gated.release = new Gate();
  gated.finish = new Gate();
}

const RETURNS = {
  bigint: () => ({ total: 10n }),
  cycle: () => {
    const node: Record<string, unknown> = {};
    node.self = node;
    return node;
  },
  function: () => () => 1,
  symbol: () => Symbol('result'),
  'throwing-tojson': () => ({
    toJSON() {
      throw new Error('no JSON for you');
    },
  }),
} as const;
const RETURN_KINDS = Object.keys(RETURNS) as (keyof typeof RETURNS)[];

const THROWS: Record<string, () => unknown> = {
  string: () => {
    throw 'a plain string';
  },
  undefined: () => {
    throw undefined;
  },
  object: () => {
    throw { reason: 'not an Error' };
  },
  'revoked-proxy': () => {
    throw revokedProxy();
  },
  'throwing-message': () => {
    const error = new Error();
    Object.defineProperty(error, 'message', {
      get() {
        throw new Error('the message getter throws');
      },
    });
    throw error;
  },
  'bad-code': () => {
    throw new TaskFailure(42 as unknown as string, 'a code that is not a string');
  },
  'huge-message': () => {
    throw new TaskFailure('HUGE', 'm'.repeat(2 * MiB));
  },
};

export const misbehavingService = defineService({
  slug: 'misbehave',
  name: 'Misbehaving handlers',
  actions: [
    defineAction({
      slug: 'publish',
      name: 'Publish',
      description: 'Publishes `count` string results of `bytes` characters each.',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [
        { slug: 'count', name: 'Count', type: 'INTEGER' },
        { slug: 'bytes', name: 'Bytes', type: 'INTEGER' },
        { slug: 'failFirstAttempt', name: 'Fail the first attempt', type: 'BOOLEAN', optional: true },
        { slug: 'later', name: 'From a timer, outside the handler', type: 'BOOLEAN', optional: true },
      ],
      handler: async ({ params, publish, attempt, signal }) => {
        const text = 'r'.repeat(params.bytes);
        const publishAll = () => {
          for (let index = 0; index < params.count; index++) publish(`part-${index}`, text);
        };
        if (params.later) {
          // A throw from here would be an uncaught exception: publish must not throw.
          setTimeout(publishAll, 0);
          await untilAborted(signal);
          return;
        }
        publishAll();
        if (params.failFirstAttempt && attempt === 1) throw new TaskFailure('AGAIN', 'the first attempt fails');
      },
    }),
    defineAction({
      slug: 'return-large',
      name: 'Return a large value',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [{ slug: 'bytes', name: 'Bytes', type: 'INTEGER' }],
      handler: ({ params }) => 'x'.repeat(params.bytes),
    }),
    defineAction({
      slug: 'return',
      name: 'Return what JSON cannot hold',
      description: 'A revoked proxy is published: returned, the promise machinery itself would reject on it.',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [
        { slug: 'kind', name: 'Kind', type: 'STRING', allowedValues: [...RETURN_KINDS, 'revoked-proxy'] },
      ],
      handler: async ({ params, publish }) => {
        if (params.kind === 'revoked-proxy') return publish('result', revokedProxy());
        return RETURNS[params.kind]();
      },
    }),
    defineAction({
      slug: 'throw',
      name: 'Throw from an async handler',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [{ slug: 'kind', name: 'Kind', type: 'STRING', allowedValues: Object.keys(THROWS) }],
      handler: async ({ params }) => THROWS[params.kind]!(),
    }),
    defineAction({
      slug: 'throw-sync',
      name: 'Throw before returning a promise',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [],
      handler: () => {
        throw 'thrown synchronously';
      },
    }),
    defineAction({
      slug: 'throw-outside',
      name: 'Throw from callbacks outside the attempt',
      description: 'A timer that throws and a rejected promise nobody awaits; the handler itself succeeds.',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 1,
      parameters: [],
      handler: async () => {
        setTimeout(() => {
          throw new Error('thrown from a timer of the handler');
        }, 0);
        void Promise.reject(new Error('rejected and never awaited'));
        await new Promise((resolve) => setTimeout(resolve, 20));
        return 'returned';
      },
    }),
    defineAction({
      slug: 'prepare-throws',
      name: 'A prepare that throws a non-Error',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 1,
      parameters: [],
      prepare: () => {
        throw undefined;
      },
      handler: () => 'never',
    }),
    defineAction({
      slug: 'hang',
      name: 'Never settle',
      description: 'Ignores its signal and never returns.',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [],
      handler: () => new Promise(() => {}),
    }),
    defineAction({
      slug: 'reject-after-abort',
      name: 'Reject after the signal fired',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 1,
      parameters: [],
      handler: async ({ signal, log, publish }) => {
        await untilAborted(signal);
        await new Promise((resolve) => setTimeout(resolve, 5));
        log('INFO', 'still here after the signal');
        publish('late', 'after the signal');
        throw 'rejected after the signal';
      },
    }),
    defineAction({
      slug: 'log',
      name: 'Log badly',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [
        { slug: 'kind', name: 'Kind', type: 'STRING', allowedValues: ['huge-line', 'flood', 'garbage'] },
      ],
      handler: ({ params, log }) => {
        const say = log as (level: unknown, message: unknown) => void;
        switch (params.kind) {
          case 'huge-line':
            say('INFO', 'é'.repeat(MiB));
            break;
          case 'flood':
            for (let line = 0; line < 1000; line++) say('INFO', `${line} `.padEnd(16 * 1024, 'f'));
            break;
          case 'garbage':
            say('LOUD', 'an unknown level');
            say('INFO', {
              toString() {
                throw new Error('no string for you');
              },
            });
            say('INFO', Symbol('message'));
            say(undefined, undefined);
            say('WARN', revokedProxy());
            break;
        }
        return { logged: params.kind };
      },
    }),
    defineAction({
      slug: 'progress',
      name: 'Report garbage progress',
      execution: ['ASYNCHRONOUS'],
      maxAttempts: 1,
      parameters: [],
      handler: ({ progress }) => {
        const report = progress as (value: unknown) => void;
        for (const value of [Number.NaN, '0.5', 1n, {}, null, undefined, Infinity, -3, 7, revokedProxy(), 0.25]) {
          report(value);
        }
        return 'done';
      },
    }),
    defineAction({
      slug: 'bad-publish',
      name: 'Publish with a bad name or content type',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [{ slug: 'kind', name: 'Kind', type: 'STRING', allowedValues: ['name', 'content-type', 'long-name'] }],
      handler: ({ params, publish }) => {
        const put = publish as (name: unknown, data: unknown, contentType?: unknown) => void;
        if (params.kind === 'name') put(42, 'data');
        if (params.kind === 'long-name') put('n'.repeat(10_000), 'data');
        if (params.kind === 'content-type') put('result', 'data', { type: 'json' });
      },
    }),
    defineAction({
      slug: 'gated',
      name: 'Run while a test holds it',
      description: 'Logs and reports progress between the gates of `gated`, then finishes or waits for its signal.',
      execution: ['ASYNCHRONOUS'],
      parameters: [],
      handler: async ({ log, progress, signal }) => {
        log('INFO', 'started');
        gated.reached.open();
        await gated.release.opened;
        log('INFO', 'working during the grace period');
        progress(0.5);
        await Promise.race([gated.finish.opened, untilAborted(signal)]);
        if (signal.aborted) throw signal.reason;
        return { finished: true };
      },
    }),
  ],
});

export function misbehavingCatalog(): Catalog {
  return new Catalog([demoService, misbehavingService]);
}
