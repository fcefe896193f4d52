import { lookup as dnsLookup } from 'node:dns';
import { STATUS_CODES, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { WebhookAttemptOutcome } from '../domain/webhooks.js';
import { blockedAddressReason } from './address-guard.js';

// One attempt to deliver one message: a POST whose every failure is an outcome, never a throw, so
// that the deliverer only records and schedules. The receiver's URL is a client's choice, hence
// the guard on the address each connection actually uses, no redirect to another origin, and a
// bound on the time and on the bytes read.

export const WEBHOOK_USER_AGENT = 'Taskport-Webhooks';

export const WEBHOOK_SEND_LIMITS = Object.freeze({
  /** A receiver's answer only says "received": its body is read this far, to let it finish, then dropped. */
  maxResponseBytes: 64 * 1024,
  /** Same-origin 307/308 hops followed; a receiver moving its endpoint should update the URL instead. */
  redirects: 3,
  errorLength: 300,
});

export interface WebhookRequest {
  url: string;
  headers: Readonly<Record<string, string>>;
  /** The exact bytes signed: sent as they are. */
  body: string;
}

export interface SendOptions {
  /** For the whole attempt: connecting, every redirect hop, the headers and the body read. */
  timeoutMs: number;
  /** TASKPORT_WEBHOOK_ALLOW_PRIVATE: reach loopback, private and link-local addresses too. */
  allowPrivate: boolean;
  maxResponseBytes?: number;
}

export interface SendOutcome {
  outcome: WebhookAttemptOutcome;
  httpStatus: number | null;
  durationMs: number;
  error: string | null;
  /** From Retry-After on a 429 or 503, in ms from now. */
  retryAfterMs: number | null;
  /** The receiver answered 410 Gone: the endpoint asks not to be called again. */
  gone: boolean;
}

type Result = Omit<SendOutcome, 'durationMs'>;

/** Raised from the lookup, before any connection: the address is refused, and nothing was sent. */
class RefusedAddressError extends Error {}

class AttemptTimeoutError extends Error {}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** The redirects that keep the method and body; 301-303 turn a POST into a GET, not a delivery. */
const BODY_KEEPING_REDIRECTS = new Set([307, 308]);

function result(outcome: WebhookAttemptOutcome, fields: Partial<Result> = {}): Result {
  return { outcome, httpStatus: null, error: null, retryAfterMs: null, gone: false, ...fields };
}

function shortened(text: string): string {
  return text.length > WEBHOOK_SEND_LIMITS.errorLength ? `${text.slice(0, WEBHOOK_SEND_LIMITS.errorLength - 1)}…` : text;
}

function statusText(status: number): string {
  return `${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}`;
}

/** Resolves like dns.lookup, but fails when any address of the name is refused, and connects only to checked ones. */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    // Any, not only the one chosen: with several, the connection may fall back to another.
    for (const { address } of addresses) {
      const reason = blockedAddressReason(address);
      if (reason !== null) return callback(new RefusedAddressError(`${hostname}: ${reason}`), '');
    }
    const [first] = addresses;
    if (first === undefined) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
    if (options.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
};

/** "delta-seconds" or an HTTP-date, as ms from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  const text = value?.trim();
  if (!text) return null;
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  // Date.parse reads nearly anything ("-5" is a year): require a month name and a time, as every HTTP-date form has.
  if (!/[A-Za-z]{3}/.test(text) || !/\d{2}:\d{2}:\d{2}/.test(text)) return null;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
}

/** One request; settles once the answer's body is read (up to the bound) and the connection let go. */
function exchange(url: URL, request: WebhookRequest, options: Required<SendOptions>, signal: AbortSignal): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const outgoing = send({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      auth: url.username || url.password ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': WEBHOOK_USER_AGENT,
        ...request.headers,
        'content-length': Buffer.byteLength(request.body),
      },
      // A fresh connection each time: a pooled one would skip the lookup, and with it the guard.
      agent: false,
      lookup: options.allowPrivate ? undefined : guardedLookup,
      signal,
    });
    outgoing.on('error', reject);
    outgoing.on('response', (incoming) => {
      const answer = { status: incoming.statusCode ?? 0, headers: incoming.headers };
      let bytes = 0;
      const done = () => {
        resolve(answer);
        // Never drain: a receiver may send an endless body.
        outgoing.destroy();
      };
      incoming.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes >= options.maxResponseBytes) done();
      });
      incoming.on('end', done);
      incoming.on('error', reject);
    });
    outgoing.end(request.body);
  });
}

function failure(error: unknown, timeoutMs: number): Result {
  if (error instanceof RefusedAddressError) return result('REFUSED', { error: error.message });
  if (error instanceof AttemptTimeoutError) return result('FAILED', { error: `timed out after ${timeoutMs} ms` });
  const { code, message, errors } = (error ?? {}) as NodeJS.ErrnoException & { errors?: unknown[] };
  // Trying several addresses of a name fails with an AggregateError whose own message is empty.
  const detail = message || (errors?.[0] as Error | undefined)?.message || '';
  const text = code && !detail.includes(code) ? `${code}: ${detail}` : detail || String(code ?? error);
  return result('FAILED', { error: shortened(text || 'connection failed') });
}

async function deliver(request: WebhookRequest, options: Required<SendOptions>, signal: AbortSignal): Promise<Result> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return result('REFUSED', { error: 'not a valid URL' });
  }
  for (let hops = 0; ; hops += 1) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return result('REFUSED', { error: shortened(`only http: and https: URLs are sent, not ${url.protocol}`) });
    }
    // An IP literal skips the lookup, so its guard is here.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!options.allowPrivate && isIP(host) !== 0) {
      const reason = blockedAddressReason(host);
      if (reason !== null) return result('REFUSED', { error: reason });
    }
    const { status, headers } = await exchange(url, request, options, signal);
    if (status >= 200 && status < 300) return result('SUCCEEDED', { httpStatus: status });
    if (REDIRECT_STATUSES.has(status)) {
      const location = headers.location;
      if (location === undefined) return result('FAILED', { httpStatus: status, error: `${statusText(status)} without a Location` });
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        return result('FAILED', { httpStatus: status, error: `redirect (${statusText(status)}) to an invalid Location not followed` });
      }
      if (next.origin !== url.origin || next.origin === 'null') {
        const where = next.origin === 'null' ? next.protocol : next.origin;
        return result('FAILED', { httpStatus: status, error: shortened(`redirect to another origin (${where}) not followed`) });
      }
      if (!BODY_KEEPING_REDIRECTS.has(status)) {
        return result('FAILED', { httpStatus: status, error: `redirect (${statusText(status)}) not followed: only a same-origin 307 or 308 is` });
      }
      if (hops === WEBHOOK_SEND_LIMITS.redirects) {
        return result('FAILED', { httpStatus: status, error: `more than ${WEBHOOK_SEND_LIMITS.redirects} redirects` });
      }
      if (!next.username && !next.password) [next.username, next.password] = [url.username, url.password];
      url = next;
      continue;
    }
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(headers['retry-after']) : null;
    return result('FAILED', { httpStatus: status, error: `answered ${statusText(status)}`, retryAfterMs, gone: status === 410 });
  }
}

/** POSTs one message; resolves with how it went, never rejects. */
export async function sendWebhook(request: WebhookRequest, options: SendOptions): Promise<SendOutcome> {
  const started = performance.now();
  const settings: Required<SendOptions> = { ...options, maxResponseBytes: options.maxResponseBytes ?? WEBHOOK_SEND_LIMITS.maxResponseBytes };
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new AttemptTimeoutError());
      // Aborting destroys the request and its socket, wherever the attempt is.
      controller.abort();
    }, settings.timeoutMs);
  });
  let outcome: Result;
  try {
    outcome = await Promise.race([deliver(request, settings, controller.signal), timedOut]);
  } catch (error) {
    outcome = failure(error, settings.timeoutMs);
  } finally {
    clearTimeout(timer);
  }
  return { ...outcome, durationMs: Math.round(performance.now() - started) };
}
