import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { GraphQLError, NoSchemaIntrospectionCustomRule, type DocumentNode, type ExecutionArgs } from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { createYoga, isAsyncIterable, maskError, type Plugin, type YogaLogger } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { loadConfig, type Config } from '../config.js';
import type { TaskEngine } from '../domain/api.js';
import { createContext, type GraphQLContext } from '../graphql/context.js';
import { exposedGraphQLError } from '../graphql/errors.js';
import { schema } from '../graphql/schema.js';
import { authenticate, authenticationFailure, type Authentication } from './auth.js';
import { readBodyWithin } from './body.js';
import { clientFaultLog } from './client-faults.js';
import { socketFlushed } from './connection.js';
import { EXECUTE_PATH_PREFIX, handleExecute } from './execute.js';
import type { OperationsRoutes } from './operations.js';
import type { DashboardRoutes } from './dashboard.js';
import { useRequestLog } from './request-log.js';
import { UNLIMITED, type RequestRateLimits } from '../limits/requests.js';
import { parserAndValidationCache, TRANSPORT_LIMITS, useCostLimit, useDocumentLimits, useListLimits } from './limits.js';
import { listeningOrigin, malformedHostError, originFromHost } from './origin.js';
import { graphiqlOptions, selfContainedGraphiQL } from './graphiql.js';
import { attachGraphQLWebSocket } from './websocket.js';

/** The settings of config.ts that shape the transports. */
export type TransportSettings = Pick<
  Config,
  | 'maxSocketsPerKey'
  | 'maxSubscriptionsPerKey'
  | 'maxConnections'
  | 'requestTimeoutMs'
  | 'headersTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'introspection'
>;

export interface ServerOptions {
  engine: TaskEngine;
  host: string;
  port: number;
  logger: Logger;
  graphiql?: boolean;
  /** Where clients reach this server, when it is behind a proxy; otherwise the request's Host. */
  publicUrl?: string | undefined;
  /** /readyz and /metrics (see operations.ts). */
  operations?: OperationsRoutes;
  /** The dashboard's pages at /dashboard (see dashboard.ts). */
  dashboard?: DashboardRoutes;
  /** Per-key and per-token rate limits (src/limits/requests.ts); none when absent. */
  rateLimits?: RequestRateLimits;
  /** config.ts's defaults for whatever is absent. */
  transport?: Partial<TransportSettings>;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Completes open subscriptions, closes WebSockets with 1001, then stops the HTTP server. */
  close(): Promise<void>;
}

/**
 * What the transport gives the context function: graphql-ws adds the connection_init payload and
 * the upgrade request, and has no fetch Request.
 */
interface TransportContext {
  connectionParams?: Readonly<Record<string, unknown>>;
  req?: IncomingMessage;
}

type ServerContext = GraphQLContext & { authentication: Authentication };

const GRAPHQL_PATH = '/graphql';
const HEALTH_PATH = '/healthz';
/** How long shutdown waits for open subscriptions to send their last message. */
const SUBSCRIPTION_DRAIN_MS = 2000;
/** How long shutdown waits for WebSocket clients to answer the close handshake. */
const WEBSOCKET_CLOSE_MS = 1000;

function yogaLogger(logger: Logger): YogaLogger {
  const forward =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]): void => {
      const [first, ...rest] = args;
      if (first instanceof Error) logger[level]({ err: first }, rest.map(String).join(' ') || first.message);
      else logger[level](args.map(String).join(' '));
    };
  return { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
}

/** An operation without a valid key fails with UNAUTHENTICATED, unless it only introspects. */
function useAuthentication(): Plugin<ServerContext> {
  const check = ({
    args,
    setResultAndStopExecution,
  }: {
    args: { document: DocumentNode; operationName?: string | null; contextValue: ServerContext };
    setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
  }) => {
    const failure = authenticationFailure(args.contextValue.authentication, args.document, args.operationName);
    if (failure) setResultAndStopExecution({ errors: [failure] });
  };
  return { onExecute: check, onSubscribe: check };
}

/** yoga 5.24 answers 500 to a GET whose variables or extensions are not JSON; it is the client's fault. */
function useMalformedQueryParamsCheck(): Plugin {
  return {
    onRequestParse({ request, url }) {
      if (request.method !== 'GET') return;
      for (const name of ['variables', 'extensions']) {
        const value = url.searchParams.get(name);
        if (!value) continue;
        try {
          JSON.parse(value);
        } catch {
          throw new GraphQLError(`The ${name} query parameter is not valid JSON`, {
            extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
          });
        }
      }
    },
  };
}

/** The POST bodies yoga parses. */
const ACCEPTED_POST_TYPES = [
  'application/json',
  'application/graphql+json',
  'application/graphql',
  'multipart/form-data',
  'application/x-www-form-urlencoded',
];

/** yoga answers a POST of another Content-Type with an empty 415; the client deserves to know what to send. */
function useUnsupportedMediaTypeError(): Plugin {
  return {
    onRequestParse({ request }) {
      if (request.method !== 'POST') return;
      const contentType = request.headers.get('content-type')?.split(/[;,]/)[0]?.trim().toLowerCase() ?? '';
      if (ACCEPTED_POST_TYPES.includes(contentType)) return;
      throw new GraphQLError(
        `${contentType ? `Content-Type ${contentType.slice(0, 100)} is not supported` : 'Content-Type is missing'}: send the operation as application/json`,
        { extensions: { code: 'UNSUPPORTED_MEDIA_TYPE', http: { status: 415 } } },
      );
    },
  };
}

function subscriptionLimitExceeded(limit: number): GraphQLError {
  return new GraphQLError(
    `This API key has ${limit} open subscriptions, the most allowed (TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY): end one before opening another`,
    { extensions: { code: 'LIMIT_EXCEEDED', limit, limitName: 'TASKPORT_MAX_SUBSCRIPTIONS_PER_KEY' } },
  );
}

/**
 * Counts open subscription streams (SSE and WebSocket alike), so that shutdown can wait for them
 * to end, and per key, so that a key opens at most `maxPerKey` of them. A place is taken before
 * the subscription starts (its first read is asynchronous, and a burst must not slip past the
 * count meanwhile) and given back when it turns out not to be a stream, fails, or ends.
 */
function subscriptionTracker(maxPerKey: number) {
  let open = 0;
  let onDrained: (() => void) | null = null;
  const openPerKey = new Map<number, number>();
  const release = (keyId: number | null) => {
    open -= 1;
    if (keyId !== null) {
      const left = (openPerKey.get(keyId) ?? 1) - 1;
      if (left === 0) openPerKey.delete(keyId);
      else openPerKey.set(keyId, left);
    }
    if (open === 0) onDrained?.();
  };
  const plugin: Plugin<ServerContext> = {
    onSubscribe: ({ args, subscribeFn, setSubscribeFn, setResultAndStopExecution }) => {
      const keyId = args.contextValue.authentication.viewer?.key.id ?? null;
      if (keyId !== null && (openPerKey.get(keyId) ?? 0) >= maxPerKey) {
        setResultAndStopExecution({ errors: [subscriptionLimitExceeded(maxPerKey)] });
        return;
      }
      open += 1;
      if (keyId !== null) openPerKey.set(keyId, (openPerKey.get(keyId) ?? 0) + 1);
      let released = false;
      const releaseOnce = () => {
        if (released) return;
        released = true;
        release(keyId);
      };
      setSubscribeFn(async (subscribeArgs) => {
        try {
          return await subscribeFn(subscribeArgs);
        } catch (error) {
          releaseOnce();
          throw error;
        }
      });
      return {
        onSubscribeResult: ({ result }) => {
          if (!isAsyncIterable(result)) {
            releaseOnce();
            return;
          }
          return { onEnd: releaseOnce };
        },
      };
    },
  };
  const drained = (): Promise<void> =>
    open === 0 ? Promise.resolve() : new Promise((resolve) => (onDrained = resolve));
  return { plugin, drained };
}

/** __schema and __type fail validation; __typename stays, as queries use it. */
function useNoIntrospection(): Plugin {
  return {
    onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
  };
}

/** 200 with {"status":"ok"}, or 503 with the reason this process cannot serve. */
async function answerHealth(engine: TaskEngine, logger: Logger, response: ServerResponse): Promise<void> {
  try {
    const health = await engine.health();
    response
      .writeHead(health.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' })
      .end(JSON.stringify(health));
  } catch (error) {
    logger.error({ err: error }, 'health check failed');
    response.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'error' }));
  }
}

/** Waits for `work`, but never longer than `ms`: a stuck client must not hold shutdown up. */
function atMost(ms: number, work: Promise<unknown>): Promise<unknown> {
  return Promise.race([work, sleep(ms, undefined, { ref: false })]);
}

function closeWebSocket(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('close', () => resolve());
    socket.close(1001, 'Server shutting down');
  });
}

// A stream's end is reported before the transport writes its closing message; one turn of the
// event loop lets those writes happen before the sockets go.
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function createServer(options: ServerOptions): Promise<RunningServer> {
  const { engine, logger } = options;
  const transport: TransportSettings = { ...loadConfig({}), ...options.transport };
  const faults = clientFaultLog(logger.child({ component: 'http' }));
  const shutdown = new AbortController();
  const subscriptions = subscriptionTracker(transport.maxSubscriptionsPerKey);

  const yoga = createYoga<TransportContext, ServerContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: options.graphiql === false ? false : graphiqlOptions,
    renderGraphiQL: selfContainedGraphiQL(),
    logging: yogaLogger(logger),
    parserAndValidationCache: parserAndValidationCache(),
    // readBodyWithin has read the body within TRANSPORT_LIMITS.requestBytes before yoga sees it;
    // yoga's own limit (25 MB) can never be reached, and it piped every body through a stream to count it.
    maxRequestBodySize: false,
    maskedErrors: {
      maskError: (error, message, isDev) => exposedGraphQLError(error) ?? maskError(error, message, isDev),
    },
    context: async ({ request, connectionParams, req }) => {
      const host = connectionParams ? req?.headers.host : request.headers.get('host');
      let origin = options.publicUrl ?? (host ? originFromHost(host) : null);
      if (origin === null) {
        // Over WebSocket the upgrade has been answered: too late for a 400, so the listening address it is.
        if (host && !connectionParams) throw malformedHostError();
        origin = listeningOrigin(httpServer.address() as AddressInfo);
      }
      const authorization = connectionParams ? connectionParams['authorization'] : request.headers.get('authorization');
      const authentication = await authenticate(engine, authorization);
      // yoga's Node adapter passes the HTTP request (SSE), graphql-ws the upgrade request: either
      // way its socket is the connection the operation's messages go out on.
      const socket = req?.socket;
      const connection = { shutdownSignal: shutdown.signal, origin, connectionFlushed: () => socketFlushed(socket) };
      return { ...createContext(engine, authentication.viewer, connection), authentication };
    },
    plugins: [
      useRequestLog(logger),
      useMalformedQueryParamsCheck(),
      useUnsupportedMediaTypeError(),
      ...(transport.introspection ? [] : [useNoIntrospection()]),
      useDocumentLimits(),
      useAuthentication(),
      (options.rateLimits ?? UNLIMITED).plugin,
      // Before the cost, which coerces the variables it counts.
      useListLimits(schema),
      useCostLimit(schema, engine.catalog),
      // Last: an operation that a plugin above refuses holds no subscription place.
      subscriptions.plugin,
    ],
  });

  const { requestTimeoutMs, keepAliveTimeoutMs } = transport;
  // Node refuses a headers timeout longer than the request's, which covers the headers too.
  const headersTimeoutMs = Math.min(transport.headersTimeoutMs, requestTimeoutMs);
  const serverTimeouts = {
    requestTimeout: requestTimeoutMs,
    headersTimeout: headersTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    // Node checks the two timeouts above on this interval (30 s by default): a short timeout needs a short check.
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(headersTimeoutMs / 4))),
  };
  const httpServer = createHttpServer(serverTimeouts, (request: IncomingMessage, response: ServerResponse) => {
    if (request.method === 'GET' && request.url === HEALTH_PATH) {
      void answerHealth(engine, logger, response);
      return;
    }
    if (options.operations?.(request, response)) return;
    if (options.dashboard?.(request, response)) return;
    if (request.url?.startsWith(EXECUTE_PATH_PREFIX)) {
      void handleExecute(engine, logger, request, response, {
        rateLimits: options.rateLimits ?? UNLIMITED,
        reportClientFault: (fields, message) => faults.report('aborted-body', fields, message),
      });
      return;
    }
    // yoga parses the Host into a URL before any plugin runs, and answers one it cannot parse with a 500.
    const { host } = request.headers;
    if (host !== undefined && originFromHost(host) === null) {
      const { message, extensions } = malformedHostError();
      const body = JSON.stringify({ errors: [{ message, extensions: { code: extensions.code } }] });
      response.writeHead(400, { 'content-type': 'application/json; charset=utf-8' }).end(body);
      return;
    }
    void readBodyWithin(request, response, TRANSPORT_LIMITS.requestBytes, faults).then((read) => {
      if (read) void yoga(request, response);
    });
  });

  httpServer.maxConnections = transport.maxConnections;

  // Listening before the WebSocket server attaches: it would re-emit a failed listen as an error of its own.
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(options.port, options.host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await yoga.dispose();
    throw error;
  }
  const webSockets = attachGraphQLWebSocket({
    httpServer,
    path: GRAPHQL_PATH,
    engine,
    logger,
    faults,
    maxSocketsPerKey: transport.maxSocketsPerKey,
    operations: {
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onSubscribe: async (context, _id, payload) => {
        const enveloped = yoga.getEnveloped({
          ...context,
          // Always an object over WebSocket, so that the context function never looks for a request.
          connectionParams: context.connectionParams ?? {},
          req: context.extra.request,
          socket: context.extra.socket,
          params: payload,
        });
        let document: DocumentNode;
        try {
          document = enveloped.parse(payload.query);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const errors = enveloped.validate(enveloped.schema, document);
        if (errors.length > 0) return errors;
        const contextValue = (await enveloped.contextFactory()) as ServerContext;
        // The key was checked at connection_init; it may have been revoked since.
        const failure = authenticationFailure(contextValue.authentication, document, payload.operationName);
        if (failure) return [failure];
        const args: ExecutionArgs = {
          schema: enveloped.schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue,
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe } satisfies Enveloped,
        };
        return args;
      },
    },
  });
  const { webSocketServer } = webSockets;

  const { port } = httpServer.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}${GRAPHQL_PATH}`;

  let closing: Promise<void> | null = null;
  async function close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
    shutdown.abort();
    await atMost(SUBSCRIPTION_DRAIN_MS, subscriptions.drained());
    await nextTurn();
    await atMost(WEBSOCKET_CLOSE_MS, Promise.all([...webSocketServer.clients].map(closeWebSocket)));
    for (const socket of webSocketServer.clients) socket.terminate();
    await webSockets.dispose();
    await yoga.dispose();
    httpServer.closeAllConnections();
    await stopped;
  }

  return {
    url,
    port,
    close: () => (closing ??= close()),
  };
}

/** yoga's execute and subscribe for one operation, carried to graphql-ws in rootValue. */
interface Enveloped {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
}
