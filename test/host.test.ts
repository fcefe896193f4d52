import { request } from 'node:http';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { query, startServer, subscribeOverWebSocket, type TestServer } from './helpers.js';

const GENERATE_URL = `
  mutation ($allocationId: ID!) {
    generateExecutionUrl(allocationId: $allocationId) {
      __typename
      ... on GenerateExecutionUrlSuccess { executionUrl { url } }
    }
  }`;

/** Host headers that are not a plain host[:port], each of which Node's HTTP parser lets through. */
const MALFORMED_HOSTS = [
  '127.0.0.1:4300@evil.example.com',
  'evil.example.com:80/phish?x=',
  'user:secret@evil.example.com',
  'evil.example.com#fragment',
  'evil.example.com?x=1',
  'evil.example.com:0',
  'evil.example.com:',
  'evil..example.com',
  '-evil.example.com',
  'é.example.com',
];

/** Hosts no URL can hold: yoga's request adapter would fail on them with a 500, so they are refused before it. */
const UNPARSEABLE_HOSTS = [
  'evil.example.com:65536',
  'evil.example.com:http',
  '999.1.1.1',
  '[::1',
  '[::1]evil.example.com',
  '[fe80::1%25eth0]:80',
  'evil example.com',
];

const WELL_FORMED_HOSTS: [host: string, origin: string][] = [
  ['tasks.example.com:8443', 'http://tasks.example.com:8443'],
  ['tasks.example.com', 'http://tasks.example.com'],
  ['10.0.0.5:65535', 'http://10.0.0.5:65535'],
  ['[::1]:4000', 'http://[::1]:4000'],
  ['my_service:4000', 'http://my_service:4000'],
];

interface RawResponse {
  status: number;
  body: any;
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A GraphQL POST with the Host header chosen by hand, which fetch does not allow. */
function postWithHost(server: TestServer, host: string, token: string, text: string, variables: object) {
  const target = new URL(server.url);
  const payload = JSON.stringify({ query: text, variables });
  return new Promise<RawResponse>((resolve, reject) => {
    const outgoing = request(
      {
        hostname: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: {
          host,
          'content-type': 'application/json',
          accept: 'application/json',
          authorization: `Bearer ${token}`,
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: parseOrText(text) }));
      },
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

async function allocationOf(server: TestServer): Promise<string> {
  const data = await query(
    server,
    server.adminToken,
    `mutation { createAllocation(input: { name: "host", service: "demo", action: "echo", instances: 1 }) {
      ... on CreateAllocationSuccess { allocation { id } } } }`,
  );
  return data.createAllocation.allocation.id;
}

/** generateExecutionUrl over graphql-ws, on a connection whose upgrade request carried `host`. */
async function urlOverWebSocket(server: TestServer, host: string, allocationId: string): Promise<string> {
  class WebSocketWithHost extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers: { host } });
    }
  }
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocketWithHost,
    connectionParams: { authorization: `Bearer ${server.adminToken}` },
    retryAttempts: 0,
    lazy: true,
  });
  try {
    const [result] = await subscribeOverWebSocket(client, GENERATE_URL, { allocationId });
    expect(result?.errors, JSON.stringify(result?.errors)).toBeUndefined();
    return (result!.data as any).generateExecutionUrl.executionUrl.url;
  } finally {
    await client.dispose();
  }
}

describe('without TASKPORT_PUBLIC_URL', () => {
  let server: TestServer;
  let allocationId: string;

  beforeAll(async () => {
    server = await startServer();
    allocationId = await allocationOf(server);
  });

  afterAll(async () => {
    await server.stop();
  });

  test.each([...MALFORMED_HOSTS, ...UNPARSEABLE_HOSTS])('an HTTP request with Host %j is a 400 and mints no URL', async (host) => {
    const response = await postWithHost(server, host, server.adminToken, GENERATE_URL, { allocationId });
    expect(response.status).toBe(400);
    expect(response.body.data).toBeUndefined();
    expect(response.body.errors).toEqual([
      { message: expect.stringContaining('host[:port]'), extensions: { code: 'BAD_REQUEST' } },
    ]);
  });

  test.each(WELL_FORMED_HOSTS)('an HTTP request with Host %j gets URLs on %s', async (host, origin) => {
    const response = await postWithHost(server, host, server.adminToken, GENERATE_URL, { allocationId });
    expect(response.status).toBe(200);
    const url: string = response.body.data.generateExecutionUrl.executionUrl.url;
    expect(url.startsWith(`${origin}/execute/`), url).toBe(true);
    expect(new URL(url).origin).toBe(origin);
  });

  test.each([...MALFORMED_HOSTS, ...UNPARSEABLE_HOSTS])(
    'over graphql-ws, an upgrade with Host %j gets URLs on the listening address',
    async (host) => {
      const url = await urlOverWebSocket(server, host, allocationId);
      expect(url.startsWith(`${new URL(server.url).origin}/execute/`), url).toBe(true);
    },
  );

  test('over graphql-ws, a well-formed Host is where the URLs point', async () => {
    const url = await urlOverWebSocket(server, 'tasks.example.com:8443', allocationId);
    expect(url.startsWith('http://tasks.example.com:8443/execute/'), url).toBe(true);
  });
});

describe('with TASKPORT_PUBLIC_URL', () => {
  test('URLs start with it whatever the Host; a malformed Host is still a 400', async () => {
    const server = await startServer({ publicUrl: 'https://tasks.example.com' });
    try {
      const allocationId = await allocationOf(server);
      const response = await postWithHost(server, 'internal.example.net:8080', server.adminToken, GENERATE_URL, {
        allocationId,
      });
      expect(response.status).toBe(200);
      const url: string = response.body.data.generateExecutionUrl.executionUrl.url;
      expect(url.startsWith('https://tasks.example.com/execute/'), url).toBe(true);
      const malformed = await postWithHost(server, MALFORMED_HOSTS[0]!, server.adminToken, GENERATE_URL, { allocationId });
      expect(malformed.status).toBe(400);
      const overWebSocket = await urlOverWebSocket(server, MALFORMED_HOSTS[1]!, allocationId);
      expect(overWebSocket.startsWith('https://tasks.example.com/execute/'), overWebSocket).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
