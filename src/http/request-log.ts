import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { getOperationAST, Kind, type DocumentNode, type ExecutionResult, type GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Viewer } from '../domain/api.js';
import { graphqlOperationDuration, openSubscriptions } from '../metrics.js';

export const REQUEST_ID_HEADER = 'x-request-id';
/** A client's request id is kept when it looks like one (a UUID, a trace id); anything else is replaced. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;
/** Operation names are the client's to choose: the log keeps a bounded prefix of one. */
const MAX_LOGGED_NAME = 100;
/**
 * The operation label of the duration histogram is the operation's root fields, which the schema
 * bounds; their combinations are not bounded, so past this many distinct labels the rest are "other".
 */
const MAX_OPERATION_LABELS = 200;

interface Operation {
  type: 'query' | 'mutation' | 'subscription';
  name: string | null;
  /** Root field names, sorted, deduplicated and joined with commas: the histogram's label. */
  fields: string;
  keyId: number | null;
  organisationId: number | null;
}

interface HttpRequestState {
  requestId: string;
  startedAt: number;
  operation: Operation | null;
  outcome: string | null;
}

const operationLabels = new Set<string>();

function operationLabel(fields: string): string {
  if (operationLabels.has(fields)) return fields;
  if (operationLabels.size >= MAX_OPERATION_LABELS) return 'other';
  operationLabels.add(fields);
  return fields;
}

export function requestIdOf(header: string | null | undefined): string {
  return header && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

function describeOperation(document: DocumentNode, operationName: string | null | undefined, viewer: Viewer | null | undefined): Operation | null {
  const operation = getOperationAST(document, operationName);
  if (!operation) return null;
  const fields = new Set<string>();
  for (const selection of operation.selectionSet.selections) {
    fields.add(selection.kind === Kind.FIELD ? selection.name.value : '...');
  }
  return {
    type: operation.operation,
    name: operation.name?.value.slice(0, MAX_LOGGED_NAME) ?? null,
    fields: [...fields].sort().join(','),
    keyId: viewer?.key.id ?? null,
    organisationId: viewer?.organisation.id ?? null,
  };
}

/** "ok", or the distinct codes of the result's errors ("UNEXPECTED" for a masked one). */
function outcomeOf(errors: readonly GraphQLError[] | readonly { extensions?: Record<string, unknown> }[] | undefined): string {
  if (!errors || errors.length === 0) return 'ok';
  const codes = new Set<string>();
  for (const error of errors) {
    const code = error.extensions?.['code'];
    codes.add(typeof code === 'string' ? code.slice(0, 50) : 'UNEXPECTED');
  }
  return [...codes].join(',');
}

function resultOutcome(result: unknown): string {
  if (Array.isArray(result)) return result.map(resultOutcome).join(';');
  if (!result || isAsyncIterable(result)) return 'ok';
  return outcomeOf((result as ExecutionResult).errors);
}

interface LoggedContext {
  viewer?: Viewer | null;
  request?: Request;
  /** graphql-ws: the upgrade request of the socket. */
  req?: { headers: Record<string, string | string[] | undefined> };
}

/**
 * One info line per GraphQL operation, with the request id (the client's x-request-id when it
 * is sane, else a new one, returned in the response's header), the key and organisation, the
 * operation, its duration and outcome; and the duration histogram and open-subscriptions gauge.
 * Register it first, so that it sees operations that a later plugin refuses.
 */
export function useRequestLog(logger: Logger): Plugin<LoggedContext> {
  const requests = new WeakMap<Request, HttpRequestState>();

  const logLine = (fields: Record<string, unknown>, operation: Operation | null) => {
    // At warn and above pino drops the line: the object is not built for nothing on every request.
    if (!logger.isLevelEnabled('info')) return;
    logger.info(
      {
        ...fields,
        ...(operation
          ? {
              operationType: operation.type,
              operationName: operation.name,
              fields: operation.fields,
              keyId: operation.keyId,
              organisationId: operation.organisationId,
            }
          : {}),
      },
      'graphql operation',
    );
  };

  const observeDuration = (operation: Operation | null, seconds: number) => {
    if (!operation || operation.type === 'subscription') return;
    graphqlOperationDuration.observe({ type: operation.type, operation: operationLabel(operation.fields) }, seconds);
  };

  const trackSubscription = () => ({
    onSubscribeResult: ({ result }: { result: unknown }) => {
      if (!isAsyncIterable(result)) return;
      openSubscriptions.inc();
      return { onEnd: () => openSubscriptions.dec() };
    },
  });

  const onOperation = (args: { document: DocumentNode; operationName?: string | null | undefined; contextValue: LoggedContext }) => {
    const context = args.contextValue;
    const operation = describeOperation(args.document, args.operationName, context.viewer);
    const state = context.request ? requests.get(context.request) : undefined;
    if (state) {
      state.operation = operation;
      return null;
    }
    // graphql-ws: no HTTP request around it, so the operation is timed and logged by itself.
    const header = context.req?.headers[REQUEST_ID_HEADER];
    return { operation, requestId: requestIdOf(typeof header === 'string' ? header : null), startedAt: performance.now() };
  };

  return {
    onRequest({ request }) {
      requests.set(request, {
        requestId: requestIdOf(request.headers.get(REQUEST_ID_HEADER)),
        startedAt: performance.now(),
        operation: null,
        outcome: null,
      });
    },
    onExecute({ args }) {
      const socketOperation = onOperation(args);
      if (!socketOperation) return;
      return {
        onExecuteDone({ result }) {
          const seconds = (performance.now() - socketOperation.startedAt) / 1000;
          observeDuration(socketOperation.operation, seconds);
          logLine(
            { requestId: socketOperation.requestId, transport: 'ws', durationMs: Math.round(seconds * 1e6) / 1e3, outcome: resultOutcome(result) },
            socketOperation.operation,
          );
        },
      };
    },
    onSubscribe({ args }) {
      const socketOperation = onOperation(args);
      if (socketOperation) {
        logLine({ requestId: socketOperation.requestId, transport: 'ws', outcome: 'subscribed' }, socketOperation.operation);
      }
      return trackSubscription();
    },
    onResultProcess({ request, result }) {
      const state = requests.get(request);
      if (state) state.outcome = resultOutcome(result);
    },
    onResponse({ request, response }) {
      const state = requests.get(request);
      if (!state) return;
      response.headers.set(REQUEST_ID_HEADER, state.requestId);
      // GraphiQL's page and other answers without an operation are no operation to log.
      if (state.outcome === null && state.operation === null && response.status < 400) return;
      const seconds = (performance.now() - state.startedAt) / 1000;
      observeDuration(state.operation, seconds);
      logLine(
        {
          requestId: state.requestId,
          transport: 'http',
          status: response.status,
          durationMs: Math.round(seconds * 1e6) / 1e3,
          outcome:
            state.operation?.type === 'subscription' && state.outcome === 'ok'
              ? 'subscribed'
              : (state.outcome ?? (response.status < 400 ? 'ok' : `HTTP_${response.status}`)),
        },
        state.operation,
      );
    },
  };
}
