import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';

// What a client without execution URLs does to get one answer: submitTask, wait for the task to
// succeed over a taskUpdated subscription (SSE, opened right after the submit: it sends the
// current state first, so a task that finished in between is not missed), then retrieveResults.
// `loops` such clients run back to back, in a process of their own like autocannon-process.ts.
// Options come from BENCH_SUBMIT_WAIT; the parent hears `started` and `done` over IPC, and may
// send `stop` to end early.

export interface SubmitWaitOptions {
  /** The GraphQL endpoint. */
  url: string;
  token: string;
  service: string;
  action: string;
  params: Record<string, unknown>;
  loops: number;
  /** Seconds run first and not counted. */
  warmUp: number;
  /** Seconds counted. */
  duration: number;
}

export interface SubmitWaitResult {
  completed: number;
  errors: number;
  firstError: string | null;
  durationMs: number;
  perSecond: number;
  /** Milliseconds from sending submitTask to having the results, one per completed execution. */
  latencies: number[];
  /** The same split into submitTask, waiting for SUCCEEDED and retrieveResults. */
  phases: { submit: number[]; wait: number[]; retrieve: number[] };
  /** One retrieveResults answer. */
  sampleResults: string | null;
}

if (!process.send) {
  console.error('bench/submit-wait-process.ts is started by the bench, with an IPC channel');
  process.exit(2);
}
const send = (message: Record<string, unknown>) => process.send!(message);
const options = JSON.parse(process.env.BENCH_SUBMIT_WAIT ?? '{}') as SubmitWaitOptions;
const endpoint = new URL(options.url);
// Keep-alive sockets, as a client library would use; one per loop is enough, but the SSE stream of
// the previous call may still be closing when the next submit goes out.
const agent = new Agent({ keepAlive: true, maxSockets: options.loops * 3 });

const SUBMIT = `mutation($input: SubmitTaskInput!){ submitTask(input:$input){ __typename ... on SubmitTaskSuccess { task { id state } } ... on Error { code message } } }`;
const SUBSCRIBE = `subscription($id: ID!){ taskUpdated(id:$id){ state } }`;
const RETRIEVE = `mutation($id: ID!){ retrieveResults(taskId:$id){ __typename ... on RetrieveResultsSuccess { results { data } } ... on Error { code message } } }`;

function post(body: string, accept: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        agent,
        host: endpoint.hostname,
        port: endpoint.port,
        path: endpoint.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          accept,
          authorization: `Bearer ${options.token}`,
        },
        timeout: 10_000,
      },
      resolve,
    );
    request.on('timeout', () => request.destroy(new Error('no answer within 10 s')));
    request.on('error', reject);
    request.end(body);
  });
}

async function postJson(query: string, variables: Record<string, unknown>): Promise<any> {
  const response = await post(JSON.stringify({ query, variables }), 'application/json');
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text) as { data?: any; errors?: unknown };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors).slice(0, 300)}`);
  return body.data;
}

/** Resolves at the first `next` event whose task is SUCCEEDED; the stream is read to its end meanwhile. */
async function waitForSuccess(id: string): Promise<void> {
  const response = await post(JSON.stringify({ query: SUBSCRIBE, variables: { id } }), 'text/event-stream');
  if (response.statusCode !== 200) {
    response.resume();
    throw new Error(`subscription: HTTP ${response.statusCode}`);
  }
  response.setEncoding('utf8');
  return new Promise<void>((resolve, reject) => {
    let buffer = '';
    let done = false;
    const states: string[] = [];
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      if (error) {
        response.destroy();
        reject(error);
      } else resolve();
    };
    response.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (!event.includes('event: next') || data === '') continue;
        const payload = JSON.parse(data) as { data?: { taskUpdated?: { state: string } }; errors?: unknown };
        if (payload.errors) return finish(new Error(`subscription errors: ${JSON.stringify(payload.errors).slice(0, 300)}`));
        const state = payload.data?.taskUpdated?.state ?? '?';
        states.push(state);
        if (state === 'SUCCEEDED') return finish();
        if (state === 'FAILED' || state === 'CANCELLED') return finish(new Error(`task ${id} ended ${state}`));
      }
    });
    response.on('end', () => finish(new Error(`subscription completed without SUCCEEDED (states ${states.join(', ')})`)));
    response.on('error', (error) => finish(error));
  });
}

/** Executions count when they both start and finish in this window (performance.now()). */
let measureFrom = Number.POSITIVE_INFINITY;
let measureUntil = Number.POSITIVE_INFINITY;
let stopped = false;
const result: SubmitWaitResult = {
  completed: 0,
  errors: 0,
  firstError: null,
  durationMs: 0,
  perSecond: 0,
  latencies: [],
  phases: { submit: [], wait: [], retrieve: [] },
  sampleResults: null,
};

async function loop(until: () => boolean): Promise<void> {
  while (!until()) {
    try {
      const started = performance.now();
      const submitted = await postJson(SUBMIT, {
        input: { service: options.service, action: options.action, params: options.params },
      });
      if (submitted.submitTask.__typename !== 'SubmitTaskSuccess') {
        throw new Error(`submitTask: ${JSON.stringify(submitted.submitTask)}`);
      }
      const id = submitted.submitTask.task.id as string;
      const afterSubmit = performance.now();
      await waitForSuccess(id);
      const afterWait = performance.now();
      const retrieved = await postJson(RETRIEVE, { id });
      const answer = retrieved.retrieveResults;
      if (answer.__typename !== 'RetrieveResultsSuccess' || answer.results.length === 0) {
        throw new Error(`retrieveResults: ${JSON.stringify(answer).slice(0, 300)}`);
      }
      const finished = performance.now();
      if (started >= measureFrom && finished <= measureUntil) {
        result.completed += 1;
        result.latencies.push(finished - started);
        result.phases.submit.push(afterSubmit - started);
        result.phases.wait.push(afterWait - afterSubmit);
        result.phases.retrieve.push(finished - afterWait);
        result.sampleResults ??= JSON.stringify(answer);
      }
    } catch (error) {
      result.errors += 1;
      result.firstError ??= error instanceof Error ? error.message : String(error);
      if (result.errors > 100) throw error;
    }
  }
}

process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') stopped = true;
});
process.on('disconnect', () => process.exit(0));

try {
  send({ type: 'started' });
  const warmUpEnd = performance.now() + options.warmUp * 1000;
  await Promise.all(Array.from({ length: options.loops }, () => loop(() => stopped || performance.now() >= warmUpEnd)));
  measureFrom = performance.now();
  measureUntil = measureFrom + options.duration * 1000;
  await Promise.all(
    Array.from({ length: options.loops }, () => loop(() => stopped || performance.now() >= measureUntil)),
  );
  // Stopped early: the window ends now.
  measureUntil = Math.min(measureUntil, performance.now());
  result.durationMs = measureUntil - measureFrom;
  result.perSecond = (result.completed * 1000) / result.durationMs;
  process.send!({ type: 'done', result }, () => process.disconnect());
} catch (error) {
  process.send!({ type: 'done', error: error instanceof Error ? error.message : String(error) }, () =>
    process.disconnect(),
  );
}
