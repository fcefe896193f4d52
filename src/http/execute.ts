import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { TaskEngine } from '../domain/api.js';
import type { ExecutionOutcome } from '../domain/realtime.js';
import { decodeId, encodeId } from '../graphql/ids.js';
import type { RequestRateLimits } from '../limits/requests.js';
import { realtimeCalls } from '../metrics.js';

export const EXECUTE_PATH_PREFIX = '/execute/';
const MAX_BODY_BYTES = 1024 * 1024;
const BEARER = /^Bearer\s+(\S+)$/i;

/** One labels object per status, made once: the counter only reads it. */
const STATUS_LABELS = new Map<number, { status: string }>();

function send(response: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  let labels = STATUS_LABELS.get(status);
  if (!labels) STATUS_LABELS.set(status, (labels = { status: String(status) }));
  realtimeCalls.inc(labels);
  const text = JSON.stringify(body);
  const head: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  };
  if (headers) Object.assign(head, headers);
  response.writeHead(status, head);
  response.end(text);
}

function sendError(
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
  field: string | null = null,
  headers?: Record<string, string>,
): void {
  send(response, status, { error: { code, field, message } }, headers);
}

/** The client closed the connection before its body was in: its doing, not the server's. */
class ClientAbortedError extends Error {
  override name = 'ClientAbortedError';
}

/** The request body, or null when it grew past `limit` bytes (the rest is not read). */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (declared > limit) return resolve(null);
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.removeAllListeners('data');
        request.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    const aborted = () => reject(new ClientAbortedError('the client closed the connection before the body was read'));
    request.on('error', aborted);
    // A connection that closes without an error would otherwise leave this promise pending for ever.
    request.on('close', () => {
      if (!request.complete) aborted();
    });
  });
}

/** Allocation ids of the paths called lately: a client calls one URL again and again. */
const ALLOCATION_IDS = new Map<string, number | null>();
const ALLOCATION_IDS_SIZE = 1000;
/** Far longer than any allocation's id: a longer path is decoded on each call, not kept. */
const CACHED_PATH_LENGTH = 64;

function allocationIdOf(url: string): number | null {
  const query = url.indexOf('?');
  const path = url.slice(EXECUTE_PATH_PREFIX.length, query < 0 ? undefined : query);
  let id = ALLOCATION_IDS.get(path);
  if (id !== undefined) return id;
  try {
    id = decodeId(decodeURIComponent(path), 'Allocation');
  } catch {
    id = null;
  }
  if (path.length > CACHED_PATH_LENGTH) return id;
  // Paths are the client's to choose: past the bound the cache starts again.
  if (ALLOCATION_IDS.size >= ALLOCATION_IDS_SIZE) ALLOCATION_IDS.clear();
  ALLOCATION_IDS.set(path, id);
  return id;
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === 'application/json') return true;
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/json';
}

export interface ExecuteRouteOptions {
  /** The per-token limit (TASKPORT_RATE_EXECUTE); none when absent. */
  rateLimits?: Pick<RequestRateLimits, 'executeVerdict'>;
  /** Where client faults (a body cut short) are reported; an INFO line without a stack when absent. */
  reportClientFault?: (fields: Record<string, unknown>, message: string) => void;
}

/**
 * POST /execute/<allocation id>: runs a call on the allocation at once and answers with its
 * outcome. It bypasses GraphQL on purpose: the answer is due in milliseconds.
 */
export async function handleExecute(
  engine: TaskEngine,
  logger: Logger,
  request: IncomingMessage,
  response: ServerResponse,
  options: ExecuteRouteOptions = {},
): Promise<void> {
  try {
    if (request.method !== 'POST') {
      sendError(response, 405, 'METHOD_NOT_ALLOWED', 'POST a JSON object of parameters', null, { allow: 'POST' });
      return;
    }
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    const allocationId = allocationIdOf(request.url ?? '');
    if (!token || allocationId === null) {
      sendError(response, 401, 'UNAUTHENTICATED', 'Send the execution token as "Authorization: Bearer <token>"');
      return;
    }
    // Before the body is read: a token over its limit costs the server as little as possible.
    const verdict = options.rateLimits ? await options.rateLimits.executeVerdict(token) : null;
    if (verdict && !verdict.admitted) {
      const seconds = verdict.retryAfterSeconds;
      sendError(response, 429, 'RATE_LIMITED', `This execution token is over its rate limit: retry in ${seconds} s`, null, {
        'retry-after': String(seconds),
      });
      return;
    }
    if (!isJson(request.headers['content-type'])) {
      sendError(response, 400, 'INVALID', 'The body must be JSON (Content-Type: application/json)');
      return;
    }
    const body = await readBody(request, MAX_BODY_BYTES);
    if (body === null) {
      sendError(response, 413, 'LIMIT_EXCEEDED', `The body is larger than ${MAX_BODY_BYTES} bytes`, null, {
        connection: 'close',
      });
      return;
    }
    let params: unknown;
    try {
      params = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      sendError(response, 400, 'INVALID', 'The body is not valid JSON');
      return;
    }
    respond(response, await engine.execute(allocationId, token, params));
  } catch (error) {
    if (error instanceof ClientAbortedError) {
      const fields = { path: EXECUTE_PATH_PREFIX, remoteAddress: request.socket.remoteAddress };
      if (options.reportClientFault) options.reportClientFault(fields, error.message);
      else logger.info(fields, error.message);
      return;
    }
    logger.error({ err: error }, 'execution failed unexpectedly');
    if (!response.headersSent) sendError(response, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.');
    else response.destroy();
  }
}

function respond(response: ServerResponse, outcome: ExecutionOutcome): void {
  switch (outcome.kind) {
    case 'unauthorized':
      sendError(response, 401, 'UNAUTHENTICATED', 'The token is unknown, expired, revoked or for another allocation');
      return;
    case 'invalid':
      sendError(response, 400, outcome.code, outcome.message, outcome.field);
      return;
    case 'busy':
      sendError(response, 503, 'BUSY', 'Every instance of the allocation is busy; try again shortly', null, {
        'retry-after': String(outcome.retryAfterSeconds),
      });
      return;
    case 'finished': {
      const status = outcome.timedOut ? 504 : outcome.state === 'SUCCEEDED' ? 200 : 422;
      send(response, status, {
        taskId: encodeId('Task', outcome.taskId),
        state: outcome.state,
        results: outcome.results,
        logs: outcome.logs,
        ...(outcome.error ? { error: outcome.error } : {}),
        durationMs: Math.round(outcome.durationMs * 1000) / 1000,
      });
    }
  }
}
