import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { TaskEngine, Viewer } from '../domain/api.js';
import { SUBMIT_FIELDS, type RateLimitTier, type RateLimitWindows } from '../domain/rate-limits.js';
import { rateLimitRejections } from '../metrics.js';
import { ADMITTED, createRateLimiter, type RateLimitVerdict, type RateLimiter } from './rate-limiter.js';

/** What the HTTP layer asks of the rate limits: a plugin for GraphQL operations and a check for /execute. */
export interface RequestRateLimits {
  /**
   * Counts each operation (HTTP, SSE, graphql-ws) against its key's tier before it runs. Place it
   * after authentication (it reads contextValue.viewer) and before the cost check.
   */
  readonly plugin: Plugin;
  /** One call of an execution URL with this token (TASKPORT_RATE_EXECUTE). */
  executeVerdict(token: string): Promise<RateLimitVerdict>;
  close(): Promise<void>;
}

export interface RequestRateLimitOptions {
  database: string;
  /** The tiers of keys without limits of their own come from the engine (engine.rateLimitsOf). */
  engine: Pick<TaskEngine, 'rateLimitsOf'>;
  /** Introspection without a key is counted per client address with these (the `other` default). */
  anonymous: RateLimitWindows;
  execute: RateLimitWindows;
  logger: Logger;
}

/** Nothing is limited (TASKPORT_RATE_LIMITS=false, or a server started without limits). */
export const UNLIMITED: RequestRateLimits = Object.freeze({
  plugin: {},
  executeVerdict: () => Promise.resolve(ADMITTED),
  close: () => Promise.resolve(),
});

/** Whether the operation selects submitTask or submitTasks at its root, through fragments too. */
function selectsSubmitField(document: DocumentNode, operationName: string | null | undefined): boolean {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'mutation') return false;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const visited = new Set<string>();
  const selects = (selectionSet: SelectionSetNode): boolean =>
    selectionSet.selections.some((selection) => {
      switch (selection.kind) {
        case Kind.FIELD:
          return SUBMIT_FIELDS.has(selection.name.value);
        case Kind.INLINE_FRAGMENT:
          return selects(selection.selectionSet);
        case Kind.FRAGMENT_SPREAD: {
          if (visited.has(selection.name.value)) return false;
          visited.add(selection.name.value);
          const fragment = fragments.get(selection.name.value);
          return fragment !== undefined && selects(fragment.selectionSet);
        }
      }
    });
  return selects(operation.selectionSet);
}

export function tierOf(document: DocumentNode, operationName?: string | null): RateLimitTier {
  return selectsSubmitField(document, operationName) ? 'submit' : 'other';
}

/** The GraphQL error of a refused operation: 429 with Retry-After over HTTP, the same error over graphql-ws. */
export function rateLimitedError(retryAfterSeconds: number, what: string): GraphQLError {
  return new GraphQLError(`Rate limit exceeded for ${what}: retry in ${retryAfterSeconds} s`, {
    extensions: {
      code: 'RATE_LIMITED',
      retryAfter: retryAfterSeconds,
      http: { status: 429, headers: { 'retry-after': String(retryAfterSeconds) } },
    },
  });
}

/** The part of the context this plugin reads: yoga's Node adapter and graphql-ws both pass `req`. */
interface LimitedContext {
  viewer?: Viewer | null;
  req?: IncomingMessage;
}

const WHAT: Record<RateLimitTier, string> = {
  submit: 'submissions (submitTask, submitTasks) of this API key',
  other: 'operations of this API key',
};

/** Subjects of the execution route: a hash, so that no token is kept in memory or in the counters' table. */
function executeSubject(token: string): string {
  return `execute:${createHash('sha256').update(token).digest('base64url').slice(0, 32)}`;
}

export async function createRequestRateLimits(options: RequestRateLimitOptions): Promise<RequestRateLimits> {
  const { engine, logger } = options;
  const limiter: RateLimiter = await createRateLimiter(options.database, {
    warn: (message, error) => logger.warn({ err: error }, message),
  });

  // A limiter fault must not fail the request: it is let through, and said once a minute at most.
  let lastFaultLoggedAt = 0;
  const admitOnFault = (error: unknown): RateLimitVerdict => {
    if (Date.now() - lastFaultLoggedAt > 60_000) {
      lastFaultLoggedAt = Date.now();
      logger.warn({ err: error }, 'the rate limiter failed; operations are let through meanwhile');
    }
    return ADMITTED;
  };

  const check = async ({
    args,
    setResultAndStopExecution,
  }: {
    args: { document: DocumentNode; operationName?: string | null; contextValue: unknown };
    setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
  }): Promise<void> => {
    const context = args.contextValue as LimitedContext;
    const viewer = context.viewer ?? null;
    let tier: RateLimitTier | 'anonymous';
    let subject: string;
    let windows: RateLimitWindows;
    if (viewer) {
      tier = tierOf(args.document, args.operationName);
      subject = `${tier}:${viewer.key.id}`;
      windows = engine.rateLimitsOf(viewer.key)[tier].windows;
    } else {
      // Only introspection gets this far without a key (authentication refused the rest).
      tier = 'anonymous';
      subject = `ip:${context.req?.socket.remoteAddress ?? 'unknown'}`;
      windows = options.anonymous;
    }
    const verdict = await limiter.consume(subject, windows).catch(admitOnFault);
    if (verdict.admitted) return;
    rateLimitRejections.inc({ tier: tier === 'anonymous' ? 'other' : tier });
    const what = tier === 'anonymous' ? 'operations without an API key from this address' : WHAT[tier];
    setResultAndStopExecution({ errors: [rateLimitedError(verdict.retryAfterSeconds, what)] });
  };

  return {
    plugin: { onExecute: check, onSubscribe: check },
    executeVerdict: async (token) => {
      const verdict = await limiter.consume(executeSubject(token), options.execute).catch(admitOnFault);
      if (!verdict.admitted) rateLimitRejections.inc({ tier: 'execute' });
      return verdict;
    },
    close: () => limiter.close(),
  };
}
