import { GraphQLError } from 'graphql';
import {
  ConflictError,
  type DomainError,
  ERROR_CODES,
  ForbiddenError,
  LimitExceededError,
  NotFoundError,
  ValidationError,
} from '../domain/errors.js';
import { storageUnavailable } from '../storage/errors.js';
import { builder } from './builder.js';
import { encodeId } from './ids.js';

const ErrorCodeEnum = builder.enumType('ErrorCode', { values: ERROR_CODES });

/**
 * The engine's message, naming what is missing by the global id clients know, never by its row
 * number. The value that reaches this field fails `instanceof NotFoundError` (it is not the thrown
 * instance itself), so the subject is read rather than the class tested.
 */
function errorMessage(error: DomainError): string {
  const { subject } = error as Partial<Pick<NotFoundError, 'subject'>>;
  return subject ? `${error.message} ${encodeId(subject.typename, subject.id)}` : error.message;
}

const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'An expected failure of a mutation; each mutation lists the kinds it can return.',
  fields: (t) => ({
    code: t.expose('code', { type: ErrorCodeEnum }),
    message: t.string({ resolve: errorMessage }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'The input was refused: see `field` (and `index` for a batch) for where.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    field: t.exposeString('field', { nullable: true, description: 'The input field or parameter slug at fault.' }),
    index: t.exposeInt('index', { nullable: true, description: 'In a batch, the position of the input at fault.' }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  description: 'The request contradicts the current state, e.g. cancelling a task that has already ended.',
  interfaces: [ErrorInterface],
});

builder.objectType(LimitExceededError, {
  name: 'LimitExceededError',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    limit: t.exposeInt('limit'),
  }),
});

/**
 * Failures that error masking must not hide as unexpected ones, as the GraphQL errors clients
 * expect: the engine's ForbiddenError (a key without the role), and a database that cannot serve
 * (503: nothing the client sent is at fault, it may retry). Null for any other error.
 */
export function exposedGraphQLError(error: unknown): GraphQLError | null {
  const located = error instanceof GraphQLError ? error : null;
  const original = located ? located.originalError : error;
  const at = { nodes: located?.nodes ?? null, path: located?.path ?? null };
  if (original instanceof ForbiddenError) {
    return new GraphQLError(original.message, { ...at, extensions: { code: 'FORBIDDEN' } });
  }
  const unavailable = storageUnavailable(original);
  if (unavailable) {
    return new GraphQLError(unavailable.message, {
      ...at,
      extensions: { code: unavailable.code, http: { status: 503 } },
    });
  }
  return null;
}
