import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CLIENT_FAULT_LOG_LIMITS } from '../src/http/client-faults.js';
import { TRANSPORT_LIMITS } from '../src/http/limits.js';
import { createKey, graphql, nextListen, query, startServer, subscribeOverSse, wsClient, type TestServer } from './helpers.js';

interface LogLine {
  level: number;
  msg: string;
  clientFault?: string;
  err?: unknown;
  [field: string]: unknown;
}

const INFO = 30;

/** A logger whose lines the test reads. */
function capturedLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

let server: TestServer;
let log: LogLine[];

beforeAll(async () => {
  const { logger, lines } = capturedLogger();
  log = lines;
  server = await startServer({}, { logger });
});

afterAll(async () => {
  await server.stop();
});

/** A raw graphql-transport-ws socket, for frames no well-behaved client sends. */
function rawSocket(): Promise<WebSocket> {
  const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closeOf(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
}

/** A socket past connection_init with `token`, or the close that refused it. */
async function initialised(token: string | null): Promise<{ socket: WebSocket; ack: boolean; close?: { code: number; reason: string } }> {
  const socket = await rawSocket();
  const closed = closeOf(socket);
  const acknowledged = new Promise<boolean>((resolve) =>
    socket.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') resolve(true);
    }),
  );
  socket.send(JSON.stringify({ type: 'connection_init', payload: token === null ? {} : { authorization: `Bearer ${token}` } }));
  const outcome = await Promise.race([acknowledged, closed]);
  if (outcome === true) return { socket, ack: true };
  return { socket, ack: false, close: outcome || undefined };
}

function linesOf(kind: string): LogLine[] {
  return log.filter((line) => line.clientFault === kind);
}

describe('request bodies to /graphql', () => {
  it('over 1 MiB get 413 with a JSON GraphQL error PAYLOAD_TOO_LARGE', async () => {
    const padding = 'x'.repeat(5 * 1024 * 1024);
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` },
      body: JSON.stringify({ query: '{ __typename }', variables: { padding } }),
    });
    expect(response.status).toBe(413);
    const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
    expect(body.errors[0]!.extensions).toEqual({ code: 'PAYLOAD_TOO_LARGE', limit: TRANSPORT_LIMITS.requestBytes });
  });

  it('are refused on their announced length, before the body has come', async () => {
    const socket = connect(server.taskport.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += String(chunk)));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${5 * 1024 * 1024}\r\n\r\n{"query":`,
    );
    // Only the first bytes of the body are ever sent: an answer proves the server did not wait for the rest.
    await ended;
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('PAYLOAD_TOO_LARGE');
  });

  it('without a length are cut once they pass 1 MiB', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(server.url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const more = () => {
        while (sent < 4 * 1024 * 1024) {
          sent += chunk.length;
          if (!request.write(chunk)) return void request.once('drain', more);
        }
        request.end();
      };
      more();
    });
    expect(status).toBe(413);
  });

  it('cut short by the client are logged once at INFO, without a stack trace', async () => {
    const before = linesOf('aborted-body').length;
    const socket = connect(server.taskport.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    // "100 Continue" says that the server has taken the request in and waits for its body.
    const continued = new Promise((resolve) => socket.once('data', resolve));
    socket.write(
      'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n',
    );
    await continued;
    socket.write('{"query":');
    socket.destroy();
    await expect.poll(() => linesOf('aborted-body').length).toBe(before + 1);
    const [line] = linesOf('aborted-body').slice(before);
    expect(line).toMatchObject({ level: INFO });
    expect(JSON.stringify(line)).not.toMatch(/stack|\n\s+at /);
  });

  it('up to the limit are served', async () => {
    const padding = 'x'.repeat(TRANSPORT_LIMITS.requestBytes - 200);
    const response = await graphql(server, server.adminToken, '{ __typename }', { padding });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('graphql-ws frames', () => {
  it('over 1 MiB close the socket with 1009 and one INFO log line without a stack trace', async () => {
    const { socket, ack } = await initialised(server.adminToken);
    expect(ack).toBe(true);
    const before = linesOf('oversized-frame').length;
    const closed = closeOf(socket);
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `{ __typename }#${'x'.repeat(TRANSPORT_LIMITS.requestBytes)}` } }));
    expect((await closed).code).toBe(1009);
    const lines = linesOf('oversized-frame').slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: INFO });
    expect(JSON.stringify(lines[0])).not.toMatch(/stack|\n\s+at /);
  });

  it.each([
    ['a frame of a server type', JSON.stringify({ type: 'next' })],
    ['a connection_ack from the client', JSON.stringify({ type: 'connection_ack' })],
    ['a frame that is not JSON', 'not json {'],
    ['a frame of an unknown type', JSON.stringify({ type: 'gimme' })],
  ])('%s closes the socket with 4400 and logs at INFO without a stack trace', async (_label, frame) => {
    const { socket, ack } = await initialised(server.adminToken);
    expect(ack).toBe(true);
    const closed = closeOf(socket);
    const before = log.length;
    socket.send(frame);
    expect((await closed).code).toBe(4400);
    const lines = log.slice(before);
    expect(lines.every((line) => line.level <= INFO), JSON.stringify(lines)).toBe(true);
    expect(JSON.stringify(lines)).not.toMatch(/stack|\n\s+at /);
  });

  it('faults are logged at most the budgeted number of times per minute, then counted', async () => {
    const floods = CLIENT_FAULT_LOG_LIMITS.lines + 10;
    for (let index = 0; index < floods; index += 1) {
      const socket = await rawSocket();
      const closed = closeOf(socket);
      socket.send(JSON.stringify({ type: 'next' }));
      expect((await closed).code).toBe(4400);
    }
    expect(linesOf('bad-frame').length).toBe(CLIENT_FAULT_LOG_LIMITS.lines);
  });
});

describe('graphql-ws connection_init', () => {
  it('without a key is refused with 4403, saying what to send', async () => {
    const { ack, close } = await initialised(null);
    expect(ack).toBe(false);
    expect(close).toMatchObject({ code: 4403, reason: expect.stringMatching(/API key is required/) });
  });

  it('with an unknown key is refused with 4403', async () => {
    const { ack, close } = await initialised('tp_not_a_real_key_0000000000');
    expect(ack).toBe(false);
    expect(close).toMatchObject({ code: 4403, reason: expect.stringMatching(/unknown or revoked/) });
  });

  it('with a revoked key is refused with 4403', async () => {
    const token = await createKey(server, 'default');
    expect((await initialised(token)).ack).toBe(true);
    const { apiKeys } = await query(server, server.adminToken, '{ apiKeys { id name } }');
    const id = apiKeys.find((key: { name: string }) => key.name === 'default-MEMBER').id;
    await query(server, server.adminToken, 'mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id });
    const { ack, close } = await initialised(token);
    expect(ack).toBe(false);
    expect(close?.code).toBe(4403);
  });
});

describe('per-key caps on graphql-ws and SSE', () => {
  let capped: TestServer;

  beforeAll(async () => {
    capped = await startServer({ maxSocketsPerKey: 2, maxSubscriptionsPerKey: 3 });
  });

  afterAll(async () => {
    await capped.stop();
  });

  async function initialisedOn(target: TestServer, token: string) {
    const socket = new WebSocket(target.wsUrl, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = closeOf(socket);
    const acknowledged = new Promise<true>((resolve) => socket.once('message', () => resolve(true)));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
    const outcome = await Promise.race([acknowledged, closed]);
    return { socket, close: outcome === true ? null : outcome };
  }

  it('a key past TASKPORT_MAX_SOCKETS_PER_KEY is refused at connection_init with 4429, naming the limit; others are not', async () => {
    const first = await initialisedOn(capped, capped.adminToken);
    const second = await initialisedOn(capped, capped.adminToken);
    expect([first.close, second.close]).toEqual([null, null]);
    const third = await initialisedOn(capped, capped.adminToken);
    expect(third.close).toMatchObject({ code: 4429, reason: expect.stringContaining('TASKPORT_MAX_SOCKETS_PER_KEY') });

    const otherKey = await initialisedOn(capped, await createKey(capped, 'other'));
    expect(otherKey.close).toBeNull();

    const gone = closeOf(first.socket);
    first.socket.close(1000);
    await gone;
    // The server counts the close when it sees it; a refused socket also frees nothing it never held.
    await expect.poll(async () => {
      const again = await initialisedOn(capped, capped.adminToken);
      again.socket.close(1000);
      return again.close;
    }).toBeNull();
    second.socket.close(1000);
    otherKey.socket.close(1000);
  });

  it('a key past TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY over graphql-ws and SSE together gets LIMIT_EXCEEDED naming it', async () => {
    const token = await createKey(capped, 'subscriber');
    const client = wsClient(capped, token);
    const events = 'subscription { taskEvents { kind } }';
    const ends: (() => void)[] = [];
    for (let index = 0; index < 2; index += 1) {
      const listening = nextListen(capped, 'organisation');
      ends.push(client.subscribe({ query: events }, { next: () => {}, error: () => {}, complete: () => {} }));
      await listening;
    }
    const sse = new AbortController();
    const listening = nextListen(capped, 'organisation');
    const stream = fetch(capped.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: events }),
      signal: sse.signal,
    });
    await listening;

    const refused = await new Promise<unknown>((resolve) =>
      client.subscribe({ query: events }, { next: resolve, error: resolve, complete: () => resolve('complete') }),
    );
    const errors = (Array.isArray(refused) ? refused : (refused as { errors?: unknown[] }).errors) as { extensions: Record<string, unknown> }[];
    expect(errors[0]!.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 3, limitName: 'TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY' });

    const overSse = await subscribeOverSse(capped, token, events);
    expect(overSse[0]?.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 3 });

    // Another key has places of its own.
    const other = await new Promise<unknown>((resolve) =>
      wsClient(capped, capped.adminToken).subscribe({ query: '{ __typename }' }, { next: resolve, error: resolve, complete: () => {} }),
    );
    expect(other).toEqual({ data: { __typename: 'Query' } });

    // Ending one gives its place back.
    sse.abort();
    await stream.then((response) => response.body?.cancel()).catch(() => {});
    await expect
      .poll(async () => {
        const listened = nextListen(capped, 'organisation');
        const outcome = await Promise.race([
          listened.then(() => 'subscribed'),
          new Promise<unknown>((resolve) => client.subscribe({ query: events }, { next: resolve, error: resolve, complete: () => {} })),
        ]);
        return outcome;
      })
      .toBe('subscribed');
    for (const end of ends) end();
  });
});

describe('HTTP server timeouts and caps', () => {
  let strict: TestServer;

  beforeAll(async () => {
    strict = await startServer({ requestTimeoutMs: 1000, headersTimeoutMs: 500, maxConnections: 3 });
  });

  afterAll(async () => {
    await strict.stop();
  });

  /** A raw connection: what it receives, and a promise of its close. */
  function rawConnection(target: TestServer) {
    const socket = connect(target.taskport.port, '127.0.0.1');
    const received: string[] = [];
    socket.on('data', (chunk) => received.push(String(chunk)));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, received, closed, connected };
  }

  it('cuts a body that trickles in slower than TASKPORT_REQUEST_TIMEOUT_MS', async () => {
    const slow = rawConnection(strict);
    await slow.connected;
    slow.socket.write(
      'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query":',
    );
    const trickle = setInterval(() => slow.socket.write(' '), 100);
    await slow.closed;
    clearInterval(trickle);
    expect(slow.received.join('')).not.toMatch(/^HTTP\/1\.1 200/);
  });

  it('cuts headers that do not end within TASKPORT_HEADERS_TIMEOUT_MS', async () => {
    const slow = rawConnection(strict);
    await slow.connected;
    slow.socket.write('POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await slow.closed;
    expect(slow.received.join('')).toMatch(/^(HTTP\/1\.1 408|$)/);
  });

  it('accepts at most TASKPORT_MAX_CONNECTIONS connections at once', async () => {
    const request = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const open = [rawConnection(strict), rawConnection(strict), rawConnection(strict)];
    for (const connection of open) {
      await connection.connected;
      connection.socket.write(request);
    }
    await expect.poll(() => open.every((connection) => connection.received.join('').startsWith('HTTP/1.1 200'))).toBe(true);
    const refused = rawConnection(strict);
    refused.socket.write(request);
    await refused.closed;
    expect(refused.received).toEqual([]);
    for (const connection of open) connection.socket.destroy();
  });
});

describe('TASKPORT_INTROSPECTION=false', () => {
  it('refuses __schema and __type while queries, __typename included, keep working', async () => {
    const closed = await startServer({ introspection: false });
    try {
      const schema = await graphql(closed, closed.adminToken, '{ __schema { queryType { name } } }');
      expect(schema.body.data).toBeUndefined();
      expect(schema.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      const type = await graphql(closed, null, '{ __type(name: "Task") { name } }');
      expect(type.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(await query(closed, closed.adminToken, '{ __typename viewer { organisation } }')).toEqual({
        __typename: 'Query',
        viewer: { organisation: 'default' },
      });
    } finally {
      await closed.stop();
    }
  });
});
