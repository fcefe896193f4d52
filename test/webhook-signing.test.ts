import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { newSigningSecret, signMessage, verifyMessage } from '../src/webhooks/signing.js';

// What Taskport signs must verify with the specification's own library, as a receiver's would.

const BODY = JSON.stringify({ type: 'task.completed', timestamp: '2026-12-01T18:00:00.000Z', data: { task: { id: 'VGFzazox' } } });

describe('Standard Webhooks signatures', () => {
  it('verify with the standardwebhooks package, and a changed body, id or timestamp does not', () => {
    const secret = newSigningSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const now = Math.floor(Date.now() / 1000);
    const headers = signMessage([secret], 'msg_1', now, BODY);
    const receiver = new Webhook(secret);
    expect(receiver.verify(BODY, { ...headers })).toEqual(JSON.parse(BODY));
    expect(() => receiver.verify(BODY.replace('VGFzazox', 'VGFzazoy'), { ...headers })).toThrow();
    expect(() => receiver.verify(BODY, { ...headers, 'webhook-id': 'msg_2' })).toThrow();
    expect(() => receiver.verify(BODY, { ...headers, 'webhook-timestamp': String(now + 1) })).toThrow();
    expect(verifyMessage(secret, { ...headers }, BODY, now)).toBe(true);
  });

  it('sign with every live secret of a rotation, so that a receiver with either accepts the message', () => {
    const [old, current] = [newSigningSecret(), newSigningSecret()];
    const now = Math.floor(Date.now() / 1000);
    const headers = signMessage([current, old], 'msg_rotated', now, BODY);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    for (const secret of [old, current]) expect(new Webhook(secret).verify(BODY, { ...headers })).toEqual(JSON.parse(BODY));
    expect(() => new Webhook(newSigningSecret()).verify(BODY, { ...headers })).toThrow();
  });

  it('refuses a message whose timestamp is outside the tolerance, and malformed signatures', () => {
    const secret = newSigningSecret();
    const then = Math.floor(Date.now() / 1000) - 10 * 60;
    const stale = signMessage([secret], 'msg_old', then, BODY);
    expect(verifyMessage(secret, { ...stale }, BODY)).toBe(false);
    expect(verifyMessage(secret, { ...stale }, BODY, then)).toBe(true);
    expect(verifyMessage(secret, { ...stale, 'webhook-signature': 'v2,abc' }, BODY, then)).toBe(false);
    expect(verifyMessage(secret, { ...stale, 'webhook-signature': 'v1,' }, BODY, then)).toBe(false);
    expect(verifyMessage(secret, { 'webhook-id': 'x' }, BODY, then)).toBe(false);
    expect(() => signMessage([], 'msg', then, BODY)).toThrow('at least one signing secret');
  });
});
