import { defineAction, defineService, TaskFailure, type ParameterDefinition, type ParamsOf } from './types.js';

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

function signalReason(reason: unknown): string {
  if (reason instanceof Error) return 'reason' in reason ? String(reason.reason) : reason.message;
  return String(reason);
}

const FRAUD_SCORE_PARAMETERS = [
  { slug: 'amount', name: 'Amount', type: 'NUMBER', min: 0 },
  { slug: 'currency', name: 'Currency', type: 'STRING', allowedValues: ['EUR', 'USD', 'GBP', 'BRL'] },
  { slug: 'country', name: 'Country', type: 'STRING', description: 'ISO 3166 alpha-2 code of the card holder.' },
  { slug: 'cardAgeDays', name: 'Card age in days', type: 'INTEGER', optional: true, min: 0 },
] as const satisfies readonly ParameterDefinition[];
type FraudScoreParams = ParamsOf<typeof FRAUD_SCORE_PARAMETERS>;

interface ScoringTable {
  countryRisk: Map<string, number>;
  homeCurrency: Map<string, FraudScoreParams['currency']>;
  /** Upper bounds of amount bands in US dollars, with the risk each adds. */
  amountBands: { upTo: number; risk: number }[];
  toDollars: Record<FraudScoreParams['currency'], number>;
}

/** What a real scorer would load from a model file or a database, built once per instance. */
function buildScoringTable(): ScoringTable {
  const countryRisk = new Map<string, number>();
  for (const country of ['GB', 'DE', 'FR', 'NL', 'SE', 'US', 'CA', 'IE']) countryRisk.set(country, 0.05);
  for (const country of ['BR', 'MX', 'AR', 'IN', 'TR']) countryRisk.set(country, 0.15);
  for (const country of ['NG', 'RU', 'VN']) countryRisk.set(country, 0.35);
  return {
    countryRisk,
    homeCurrency: new Map([
      ['GB', 'GBP'],
      ['US', 'USD'],
      ['BR', 'BRL'],
      ...['DE', 'FR', 'NL', 'IE'].map((country) => [country, 'EUR'] as const),
    ]),
    amountBands: [
      { upTo: 100, risk: 0 },
      { upTo: 1_000, risk: 0.1 },
      { upTo: 5_000, risk: 0.25 },
      { upTo: Number.POSITIVE_INFINITY, risk: 0.4 },
    ],
    toDollars: { USD: 1, EUR: 1.08, GBP: 1.27, BRL: 0.2 },
  };
}

function scorePayment(table: ScoringTable, params: FraudScoreParams) {
  const reasons: string[] = [];
  const country = params.country.toUpperCase();
  const countryRisk = table.countryRisk.get(country) ?? 0.2;
  let score = countryRisk;
  if (countryRisk >= 0.15) reasons.push(`card holder country ${country} carries risk ${countryRisk}`);
  const dollars = params.amount * table.toDollars[params.currency];
  const band = table.amountBands.find((candidate) => dollars <= candidate.upTo)!;
  if (band.risk > 0) reasons.push(`amount of ${Math.round(dollars)} USD`);
  score += band.risk;
  const home = table.homeCurrency.get(country);
  if (home && home !== params.currency) {
    score += 0.1;
    reasons.push(`paid in ${params.currency}, not ${home}`);
  }
  if (params.cardAgeDays !== undefined && params.cardAgeDays < 30) {
    score += 0.3 - params.cardAgeDays / 100;
    reasons.push(`card is ${params.cardAgeDays} days old`);
  }
  const rounded = Math.round(Math.min(1, Math.max(0, score)) * 1000) / 1000;
  const decision = rounded < 0.3 ? 'approve' : rounded < 0.6 ? 'review' : 'decline';
  return { score: rounded, decision, reasons };
}

export const demoService = defineService({
  slug: 'demo',
  name: 'Demo',
  description: 'Built-in actions to try the API with: echo, sleep, fail and a data fetch against an account.',
  actions: [
    defineAction({
      slug: 'echo',
      name: 'Echo',
      description: 'Succeeds at once with the message it was given.',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      parameters: [{ slug: 'message', name: 'Message', type: 'STRING', description: 'Returned as is.' }],
      handler: ({ params }) => ({ message: params.message }),
    }),
    defineAction({
      slug: 'sleep',
      name: 'Sleep',
      description: 'Sleeps for ms milliseconds in steps, logging and reporting progress at each step.',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      timeoutSeconds: 900,
      parameters: [
        { slug: 'ms', name: 'Milliseconds', type: 'INTEGER', min: 0, max: 600_000 },
        { slug: 'steps', name: 'Steps', type: 'INTEGER', optional: true, min: 1, max: 1000, default: 10 },
      ],
      handler: async ({ params, signal, log, progress }) => {
        const { ms, steps } = params;
        for (let step = 1; step <= steps; step++) {
          try {
            await delay(ms / steps, signal);
          } catch (reason) {
            log('WARN', `interrupted during step ${step} of ${steps}: ${signalReason(reason)}`);
            throw reason;
          }
          log('INFO', `step ${step} of ${steps}`);
          progress(step / steps);
        }
        return { sleptMs: ms };
      },
    }),
    defineAction({
      slug: 'fail',
      name: 'Fail',
      description: 'Fails with the given error code (DEMO_FAILURE by default).',
      execution: ['ASYNCHRONOUS', 'REALTIME'],
      maxAttempts: 1,
      parameters: [{ slug: 'code', name: 'Error code', type: 'STRING', optional: true }],
      handler: ({ params }) => {
        throw new TaskFailure(params.code ?? 'DEMO_FAILURE', 'The demo action failed as asked.');
      },
    }),
    defineAction({
      slug: 'fraud-score',
      name: 'Fraud score',
      description:
        'Scores a card payment from 0 (safe) to 1 (fraud) and decides: approve, review or decline. Deterministic.',
      execution: ['REALTIME', 'ASYNCHRONOUS'],
      parameters: FRAUD_SCORE_PARAMETERS,
      prepare: buildScoringTable,
      handler: ({ params, prepared }) => scorePayment(prepared as ScoringTable, params),
    }),
    defineAction({
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
