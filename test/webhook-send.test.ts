import { createServer as createHttpsServer } from 'node:https';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BLOCKED_ADDRESS_CLASSES, blockedAddressClass, blockedAddressReason, isBlockedAddress } from '../src/webhooks/address-guard.js';
import { parseRetryAfter, sendWebhook, type SendOptions } from '../src/webhooks/send.js';

// Every attempt goes to a real HTTP receiver on 127.0.0.1, which records what reached it.

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  origin: string;
  port: number;
  requests: Received[];
  /** Resolves when a response's connection has closed: the sender let go. */
  closed: Promise<void>;
}

type Handler = (request: Received, response: ServerResponse, raw: IncomingMessage) => void;

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

async function receiver(handle: Handler): Promise<Receiver> {
  const requests: Received[] = [];
  let markClosed = () => {};
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const server = createServer((raw, response) => {
    const chunks: Buffer[] = [];
    raw.on('data', (chunk: Buffer) => chunks.push(chunk));
    raw.on('end', () => {
      const request = { method: raw.method ?? '', url: raw.url ?? '', headers: raw.headers, body: Buffer.concat(chunks).toString() };
      requests.push(request);
      response.on('close', markClosed);
      handle(request, response, raw);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, port, requests, closed };
}

const answer =
  (status: number, headers: Record<string, string> = {}, body = ''): Handler =>
  (_, response) =>
    response.writeHead(status, headers).end(body);

// A self-signed certificate for 127.0.0.1 (100 years), which no default trust store accepts.
const SELF_SIGNED = {
  cert: `-----BEGIN CERTIFICATE-----
MIIBjzCCATagAwIBAgIUB/7GhJgPQpZqc+3N0uib220jiy4wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMTE4NDI1NVoYDzIxMjYxMTA3
MTg0MjU1WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATUYtQ43Qxq1JT84S6F4RDNGpaVcxZbHdAhRMK63qz+a6lPJKum3ewR
77B1L/OA09LStf0KdPljPNAImr2LcYVBo2QwYjAdBgNVHQ4EFgQU6935XLBUbV7d
HpR9g2yboUcqO2owHwYDVR0jBBgwFoAU6935XLBUbV7dHpR9g2yboUcqO2owDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0cAMEQC
ICb0psWjb43QSmdSBUrOZSEqwj2NxL7yfzvn2LaS0n53AiB4GNwCLnZ2TbqwK3cQ
LBLqFQbO6KiUnl+2XKkdo8v5Pg==
-----END CERTIFICATE-----`,
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3C1hKDEzy8lFkg7v
zso/vnKlnfIel7OL5n32fW+1Bk2hRANCAATUYtQ43Qxq1JT84S6F4RDNGpaVcxZb
HdAhRMK63qz+a6lPJKum3ewR77B1L/OA09LStf0KdPljPNAImr2LcYVB
-----END PRIVATE KEY-----`,
};

const BODY = JSON.stringify({ type: 'task.completed', timestamp: '2026-12-01T18:00:00.000Z', data: { task: { id: 'VGFzazox', state: 'SUCCEEDED' } } });
const HEADERS = { 'webhook-id': 'msg_1', 'webhook-timestamp': '1796148000', 'webhook-signature': 'v1,c2lnbmF0dXJl' };
const OPEN: SendOptions = { timeoutMs: 5000, allowPrivate: true };
const GUARDED: SendOptions = { timeoutMs: 5000, allowPrivate: false };

const send = (url: string, options: SendOptions = OPEN) => sendWebhook({ url, headers: HEADERS, body: BODY }, options);

describe('sending a webhook', () => {
  it('POSTs the exact body and headers, and a 2xx succeeds', async () => {
    const target = await receiver(answer(204));
    const outcome = await send(`${target.origin}/hooks/taskport?tenant=7`);
    expect(outcome).toMatchObject({ outcome: 'SUCCEEDED', httpStatus: 204, error: null, retryAfterMs: null, gone: false });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    expect(target.requests).toHaveLength(1);
    const [request] = target.requests;
    expect(request).toMatchObject({ method: 'POST', url: '/hooks/taskport?tenant=7', body: BODY });
    expect(request!.headers).toMatchObject({
      ...HEADERS,
      'content-type': 'application/json',
      'user-agent': 'Taskport-Webhooks',
      'content-length': String(Buffer.byteLength(BODY)),
      host: `127.0.0.1:${target.port}`,
    });
  });

  it('fails on other statuses with the status, and marks a 410 as gone', async () => {
    const broken = await receiver(answer(500, {}, 'oops'));
    expect(await send(broken.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 500, error: 'answered 500 Internal Server Error', gone: false });
    const gone = await receiver(answer(410));
    expect(await send(gone.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 410, error: 'answered 410 Gone', gone: true });
    const missing = await receiver(answer(404));
    expect(await send(missing.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 404, gone: false, retryAfterMs: null });
  });

  it('reads Retry-After of a 429 or 503, as seconds or an HTTP date, and of no other status', async () => {
    const busy = await receiver(answer(429, { 'retry-after': '7' }));
    expect(await send(busy.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 429, retryAfterMs: 7000 });
    const later = new Date(Date.now() + 120_000).toUTCString();
    const unavailable = await receiver(answer(503, { 'retry-after': later }));
    const { retryAfterMs } = await send(unavailable.origin);
    expect(retryAfterMs).toBeGreaterThan(100_000);
    expect(retryAfterMs).toBeLessThanOrEqual(120_000);
    const garbled = await receiver(answer(429, { 'retry-after': 'soon' }));
    expect(await send(garbled.origin)).toMatchObject({ httpStatus: 429, retryAfterMs: null });
    const other = await receiver(answer(500, { 'retry-after': '7' }));
    expect(await send(other.origin)).toMatchObject({ httpStatus: 500, retryAfterMs: null });
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.UTC(2015, 9, 21, 7, 27, 0))).toBe(60_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.UTC(2016, 0, 1))).toBe(0);
    expect(parseRetryAfter(undefined)).toBeNull();
    expect(parseRetryAfter('-5')).toBeNull();
  });

  it('gives up at the timeout on a receiver that never answers, and closes the connection', async () => {
    const hanging = await receiver(() => {});
    const outcome = await send(hanging.origin, { timeoutMs: 300, allowPrivate: true });
    expect(outcome).toMatchObject({ outcome: 'FAILED', httpStatus: null, error: 'timed out after 300 ms' });
    expect(hanging.requests).toHaveLength(1);
    await hanging.closed;
  });

  it('times out on a body that never ends, too', async () => {
    const trickling = await receiver((_, response) => response.writeHead(200).write('{'));
    expect(await send(trickling.origin, { timeoutMs: 300, allowPrivate: true })).toMatchObject({ outcome: 'FAILED', error: 'timed out after 300 ms' });
    await trickling.closed;
  });

  it('does not follow a redirect to another origin, nor any redirect but a same-origin 307 or 308', async () => {
    const elsewhere = await receiver(answer(200));
    for (const status of [302, 307, 308]) {
      const moved = await receiver(answer(status, { location: `${elsewhere.origin}/hook` }));
      expect(await send(moved.origin)).toEqual(
        expect.objectContaining({ outcome: 'FAILED', httpStatus: status, error: `redirect to another origin (${elsewhere.origin}) not followed` }),
      );
      expect(moved.requests).toHaveLength(1);
    }
    // Another name for the same address is another origin too.
    const renamed = await receiver((_, response) => response.writeHead(307, { location: `http://localhost:${renamed.port}/` }).end());
    expect(await send(renamed.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 307, error: `redirect to another origin (http://localhost:${renamed.port}) not followed` });
    const scheme = await receiver((_, response) => response.writeHead(308, { location: `https://127.0.0.1:${scheme.port}/` }).end());
    expect(await send(scheme.origin)).toMatchObject({ outcome: 'FAILED', error: `redirect to another origin (https://127.0.0.1:${scheme.port}) not followed` });
    const ftp = await receiver(answer(307, { location: 'ftp://127.0.0.1/hook' }));
    expect(await send(ftp.origin)).toMatchObject({ outcome: 'FAILED', error: expect.stringMatching(/^redirect to another origin \(ftp:.*\) not followed$/) });
    expect(elsewhere.requests).toHaveLength(0);
    expect(renamed.requests).toHaveLength(1);

    const found = await receiver(answer(302, { location: '/other' }));
    expect(await send(found.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 302, error: 'redirect (302 Found) not followed: only a same-origin 307 or 308 is' });
    expect(found.requests).toHaveLength(1);
    const bare = await receiver(answer(307));
    expect(await send(bare.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 307, error: '307 Temporary Redirect without a Location' });
  });

  it('follows a same-origin 307 with the same POST, up to three hops', async () => {
    const moved = await receiver((request, response) => {
      if (request.url === '/old') response.writeHead(307, { location: '/new?x=1' }).end();
      else response.writeHead(200).end();
    });
    expect(await send(`${moved.origin}/old`)).toMatchObject({ outcome: 'SUCCEEDED', httpStatus: 200 });
    expect(moved.requests.map(({ method, url, body }) => [method, url, body])).toEqual([
      ['POST', '/old', BODY],
      ['POST', '/new?x=1', BODY],
    ]);
    expect(moved.requests[1]!.headers['webhook-id']).toBe('msg_1');

    const loop = await receiver(answer(308, { location: '/' }));
    expect(await send(loop.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 308, error: 'more than 3 redirects' });
    expect(loop.requests).toHaveLength(4);
  });

  it('reads no more of a huge or endless body than the bound, and the status decides', async () => {
    const huge = await receiver(answer(500, {}, 'x'.repeat(10 * 1024 * 1024)));
    expect(await send(huge.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: 500 });
    await huge.closed;
    const endless = await receiver((_, response) => {
      response.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (!response.destroyed && response.write(chunk));
      };
      response.on('drain', pump);
      pump();
    });
    expect(await send(endless.origin, { ...OPEN, maxResponseBytes: 1024 })).toMatchObject({ outcome: 'SUCCEEDED', httpStatus: 200 });
    await endless.closed;
  });

  it('reports a connection error by its code, and never throws', async () => {
    const gone = await receiver(answer(200));
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
    expect(await send(gone.origin)).toMatchObject({ outcome: 'FAILED', httpStatus: null, error: expect.stringContaining('ECONNREFUSED') });
    const target = await receiver(answer(200));
    const injected = await sendWebhook({ url: target.origin, headers: { 'webhook-id': 'msg_1\r\nx-evil: 1' }, body: BODY }, OPEN);
    expect(injected).toMatchObject({ outcome: 'FAILED', error: expect.stringContaining('Invalid character') });
    expect(await send('http://does-not-exist.invalid/')).toMatchObject({ outcome: 'FAILED', error: expect.stringContaining('ENOTFOUND') });
    expect(target.requests).toHaveLength(0);
  });

  it('verifies TLS certificates as Node does by default: a self-signed one fails before anything is sent', async () => {
    let requests = 0;
    const server = createHttpsServer(SELF_SIGNED, (_, response) => {
      requests += 1;
      response.end();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    expect(await send(`https://127.0.0.1:${port}/`)).toMatchObject({
      outcome: 'FAILED',
      httpStatus: null,
      error: expect.stringMatching(/self[- ]signed/i),
    });
    expect(requests).toBe(0);
  });

  it('refuses URLs that are not http(s)', async () => {
    expect(await send('ftp://127.0.0.1/hook')).toMatchObject({ outcome: 'REFUSED', httpStatus: null, error: 'only http: and https: URLs are sent, not ftp:' });
    expect(await send('file:///etc/passwd')).toMatchObject({ outcome: 'REFUSED', error: 'only http: and https: URLs are sent, not file:' });
    expect(await send('not a url')).toMatchObject({ outcome: 'REFUSED', error: 'not a valid URL' });
  });
});

describe('the private-address guard', () => {
  it('refuses loopback addresses, by IP and by a name that resolves to one, and sends nothing', async () => {
    const target = await receiver(answer(200));
    expect(await send(target.origin, GUARDED)).toMatchObject({
      outcome: 'REFUSED',
      httpStatus: null,
      error: '127.0.0.1 is a loopback address; set TASKPORT_WEBHOOK_ALLOW_PRIVATE=true to allow private networks',
    });
    expect(await send(`http://localhost:${target.port}/`, GUARDED)).toMatchObject({
      outcome: 'REFUSED',
      error: expect.stringMatching(/^localhost: (127\.0\.0\.1|::1) is a loopback address; set TASKPORT_WEBHOOK_ALLOW_PRIVATE=true/),
    });
    expect(await send(`http://[::ffff:127.0.0.1]:${target.port}/`, GUARDED)).toMatchObject({
      outcome: 'REFUSED',
      error: expect.stringMatching(/^::ffff:7f00:1 \(127\.0\.0\.1\) is a loopback address/),
    });
    expect(await send(`http://[::1]:${target.port}/`, GUARDED)).toMatchObject({ outcome: 'REFUSED' });
    expect(await send(`http://0x7f.1:${target.port}/`, GUARDED)).toMatchObject({ outcome: 'REFUSED' });
    expect(await send('http://169.254.169.254/latest/meta-data/', GUARDED)).toMatchObject({
      outcome: 'REFUSED',
      error: expect.stringMatching(/^169\.254\.169\.254 is a cloud metadata address/),
    });
    expect(target.requests).toHaveLength(0);
  });

  const cases: Array<[string, string | null]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100.64.0.1', 'shared (carrier-grade NAT)'],
    ['100.127.255.255', 'shared (carrier-grade NAT)'],
    ['192.0.0.8', 'IETF protocol'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'cloud metadata'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'cloud metadata'],
    ['64:ff9b::c0a8:101', 'private'],
    ['[::1]', 'loopback'],
    ['localhost', 'reserved'],
    // Public: the neighbours of each range, and the embedded forms of a public address.
    ['8.8.8.8', null],
    ['1.1.1.1', null],
    ['9.255.255.255', null],
    ['11.0.0.0', null],
    ['126.255.255.255', null],
    ['128.0.0.0', null],
    ['172.15.255.255', null],
    ['172.32.0.0', null],
    ['192.167.255.255', null],
    ['192.169.0.0', null],
    ['169.253.255.255', null],
    ['100.63.255.255', null],
    ['100.128.0.0', null],
    ['192.0.1.0', null],
    ['198.17.255.255', null],
    ['198.20.0.0', null],
    ['223.255.255.255', null],
    ['2606:4700:4700::1111', null],
    ['2001:4860:4860::8888', null],
    ['fbff::1', null],
    ['fe00::1', null],
    ['::ffff:8.8.8.8', null],
    ['::ffff:808:808', null],
    ['64:ff9b::808:808', null],
  ];

  it.each(cases)('judges %s as %s', (address, expected) => {
    expect(blockedAddressClass(address)).toBe(expected);
    expect(isBlockedAddress(address)).toBe(expected !== null);
    if (expected !== null) expect(BLOCKED_ADDRESS_CLASSES).toContain(expected);
  });

  it('says why, naming the address, its class and the setting', () => {
    expect(blockedAddressReason('8.8.8.8')).toBeNull();
    expect(blockedAddressReason('10.0.0.1')).toBe('10.0.0.1 is a private address; set TASKPORT_WEBHOOK_ALLOW_PRIVATE=true to allow private networks');
    expect(blockedAddressReason('fe80::1')).toBe('fe80::1 is a link-local address; set TASKPORT_WEBHOOK_ALLOW_PRIVATE=true to allow private networks');
    expect(blockedAddressReason('::')).toMatch(/^:: is an unspecified address; /);
    expect(blockedAddressReason('64:ff9b::a9fe:a9fe')).toMatch(/^64:ff9b::a9fe:a9fe \(169\.254\.169\.254\) is a cloud metadata address; /);
    expect(blockedAddressReason('example.com')).toBe('"example.com" is not an IP address');
  });
});
