import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// The Standard Webhooks signature scheme (https://www.standardwebhooks.com), which Replicate and
// Svix use: a message is signed as `${id}.${timestamp}.${body}` with HMAC-SHA256 under each of the
// endpoint's live secrets, so that a receiver holding either the old or the new secret of a
// rotation accepts it. Receivers verify with the spec's libraries (`standardwebhooks` on npm).

const SECRET_PREFIX = 'whsec_';
/** 24 random bytes: the length the specification's examples and Svix use. */
const SECRET_BYTES = 24;

/** A new signing secret, `whsec_` and the base64 of its key. */
export function newSigningSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('a signing secret starts with whsec_');
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

/** The headers that carry one message: `webhook-id` stays the same over every attempt to deliver it. */
export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Signs `body` (the exact bytes sent) for the message `id` at `timestamp` (Unix seconds): one
 * `v1,<base64>` per secret, space-separated, the newest first.
 */
export function signMessage(secrets: readonly string[], id: string, timestamp: number, body: string): SignedHeaders {
  if (secrets.length === 0) throw new Error('a message needs at least one signing secret');
  const content = `${id}.${timestamp}.${body}`;
  const signatures = secrets.map((secret) => `v1,${createHmac('sha256', keyOf(secret)).update(content).digest('base64')}`);
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signatures.join(' ') };
}

/**
 * Whether `headers` sign `body` with `secret`: what a receiver checks, here for the server's own
 * tests of what it sends and for the README's example. Timestamps older or newer than
 * `toleranceSeconds` are refused, as the specification asks, against replays.
 */
export function verifyMessage(
  secret: string,
  headers: Readonly<Record<string, string | undefined>>,
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 5 * 60,
): boolean {
  const id = headers['webhook-id'];
  const timestamp = Number(headers['webhook-timestamp']);
  const signatures = headers['webhook-signature'];
  if (!id || !Number.isInteger(timestamp) || !signatures) return false;
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((signature) => {
    const [version, value] = signature.split(',', 2);
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
