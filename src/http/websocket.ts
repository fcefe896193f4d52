import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { CloseCode, handleProtocols, makeServer, MessageType, parseMessage, type ServerOptions } from 'graphql-ws';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TaskEngine } from '../domain/api.js';
import { authenticate } from './auth.js';
import type { ClientFaultLog } from './client-faults.js';
import { TRANSPORT_LIMITS } from './limits.js';

/** What graphql-ws's context carries of the connection, as its own `use/ws` adapter gives it. */
export interface WebSocketExtra {
  socket: WebSocket;
  request: IncomingMessage;
}

export interface GraphQLWebSocketOptions {
  httpServer: HttpServer;
  path: string;
  engine: TaskEngine;
  logger: Logger;
  faults: ClientFaultLog;
  maxSocketsPerKey: number;
  /** How an operation is run: graphql-ws's own hooks, onConnect excepted (this module authenticates). */
  operations: Omit<ServerOptions<Record<string, unknown>, WebSocketExtra>, 'onConnect' | 'onClose' | 'onDisconnect'>;
}

/** The messages a client may send (graphql-transport-ws); `next`, `error` and `connection_ack` go the other way. */
const CLIENT_MESSAGES: ReadonlySet<string> = new Set([
  MessageType.ConnectionInit,
  MessageType.Ping,
  MessageType.Pong,
  MessageType.Subscribe,
  MessageType.Complete,
]);

/** The protocol's close reasons are at most 123 bytes. */
function closeReason(text: string): string {
  const bytes = Buffer.from(text);
  return bytes.length <= 123 ? text : `${bytes.subarray(0, 120).toString().replace(/\uFFFD+$/, '')}...`;
}

/** How often a silent client is pinged, and how long it has to answer: graphql-ws's own default. */
const KEEP_ALIVE_MS = 12_000;

/**
 * graphql-ws over `ws`, in place of graphql-ws's `use/ws` adapter, which logs every client fault
 * with a stack trace (an oversized frame, a frame of the server's types) and closes with 4500 as
 * if the server had failed. Here a client's fault closes with its protocol code (4400, 1009) and
 * one rate-limited INFO line; the server's own failures still close with 4500 and log at ERROR.
 * connection_init must carry a valid key (4403 otherwise), and a key has at most
 * `maxSocketsPerKey` sockets in this process (4429, which graphql-ws clients do not retry).
 */
export function attachGraphQLWebSocket(options: GraphQLWebSocketOptions) {
  const { logger, faults } = options;
  const socketsPerKey = new Map<number, number>();
  const keyOfSocket = new WeakMap<WebSocket, number>();
  const releaseSocket = (socket: WebSocket) => {
    const keyId = keyOfSocket.get(socket);
    if (keyId === undefined) return;
    keyOfSocket.delete(socket);
    const open = (socketsPerKey.get(keyId) ?? 1) - 1;
    if (open === 0) socketsPerKey.delete(keyId);
    else socketsPerKey.set(keyId, open);
  };

  const server = makeServer<Record<string, unknown>, WebSocketExtra>({
    ...options.operations,
    onConnect: async (context) => {
      const { socket } = context.extra;
      const authentication = await authenticate(options.engine, context.connectionParams?.['authorization']);
      if (authentication.failure) {
        socket.close(CloseCode.Forbidden, closeReason(authentication.failure.message));
        return false;
      }
      const keyId = authentication.viewer.key.id;
      const open = socketsPerKey.get(keyId) ?? 0;
      if (open >= options.maxSocketsPerKey) {
        socket.close(
          CloseCode.TooManyInitialisationRequests,
          closeReason(`This API key has ${open} open sockets, the most allowed (TASKPORT_MAX_SOCKETS_PER_KEY)`),
        );
        return false;
      }
      // The socket may have closed while the key was looked up: it must not hold a place.
      if (socket.readyState !== socket.OPEN) return false;
      socketsPerKey.set(keyId, open + 1);
      keyOfSocket.set(socket, keyId);
      return true;
    },
  });

  const webSocketServer = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    maxPayload: TRANSPORT_LIMITS.requestBytes,
    handleProtocols,
  });
  // ws hands on the HTTP server's errors here; a listener keeps them from ending the process.
  webSocketServer.on('error', (error) => logger.error({ err: error }, 'WebSocket server error'));

  webSocketServer.on('connection', (socket, request) => {
    const client = { remoteAddress: request.socket.remoteAddress };
    // ws closes the socket itself after an error (1009 for a frame over maxPayload); only the log line is ours.
    socket.on('error', (error: Error & { code?: string }) => {
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        faults.report('oversized-frame', client, `graphql-ws frame over ${TRANSPORT_LIMITS.requestBytes} bytes: closed with 1009`);
      } else {
        faults.report('socket-error', { ...client, code: error.code }, `graphql-ws socket error: ${error.message}`);
      }
    });

    let pongWait: NodeJS.Timeout | null = null;
    const pingInterval = setInterval(() => {
      if (socket.readyState !== socket.OPEN) return;
      pongWait = setTimeout(() => socket.terminate(), KEEP_ALIVE_MS);
      socket.once('pong', () => {
        if (pongWait) clearTimeout(pongWait);
        pongWait = null;
      });
      socket.ping();
    }, KEEP_ALIVE_MS);

    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', async (data) => {
            const text = String(data);
            let type: string;
            try {
              type = parseMessage(text).type;
            } catch (error) {
              type = '';
              faults.report('bad-frame', client, `graphql-ws frame is not a message: ${(error as Error).message}`.slice(0, 300));
            }
            if (!CLIENT_MESSAGES.has(type)) {
              if (type) faults.report('bad-frame', client, `graphql-ws frame of type ${type.slice(0, 50)}, which clients do not send`);
              socket.close(CloseCode.BadRequest, 'Invalid message received');
              return;
            }
            try {
              await handle(text);
            } catch (error) {
              logger.error({ err: error }, 'graphql-ws message handling failed');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            }
          }),
      },
      { socket, request },
    );

    socket.once('close', (code, reason) => {
      if (pongWait) clearTimeout(pongWait);
      clearInterval(pingInterval);
      releaseSocket(socket);
      closed(code, String(reason)).catch((error: unknown) => logger.error({ err: error }, 'graphql-ws close handling failed'));
    });
  });

  return {
    webSocketServer,
    /** Closes every socket with 1001 and stops accepting. */
    async dispose(): Promise<void> {
      for (const socket of webSocketServer.clients) socket.close(1001, 'Going away');
      webSocketServer.removeAllListeners();
      await new Promise<void>((resolve, reject) => webSocketServer.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
