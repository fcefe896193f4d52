import type { Role } from './types.js';

export const ERROR_CODES = Object.freeze([
  'INVALID_SERVICE',
  'INVALID_ACTION',
  'MISSING_PARAM',
  'INVALID_PARAMETER_VALUE',
  'INVALID',
  'NO_SUCH_ACCOUNT',
  'ALREADY_EXISTS',
  'NOT_FOUND',
  'NOT_CANCELLABLE',
  'NOT_RETRYABLE',
  'LIMIT_EXCEEDED',
  'ALREADY_RETRIEVED',
  'NOT_COMPLETED',
  'PARAMS_TOO_LARGE',
  'PERMISSIONS_EXCEEDED',
] as const);
export type ErrorCode = (typeof ERROR_CODES)[number];

export type ValidationCode =
  | 'INVALID_SERVICE'
  | 'INVALID_ACTION'
  | 'MISSING_PARAM'
  | 'INVALID_PARAMETER_VALUE'
  | 'INVALID'
  | 'NO_SUCH_ACCOUNT'
  | 'PARAMS_TOO_LARGE'
  /** A key asked to create a key that may do more than itself. */
  | 'PERMISSIONS_EXCEEDED';

/** Base of every expected failure: the API layer maps each subclass to a typed error. */
export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
}

export class ValidationError extends DomainError {
  override name = 'ValidationError';
  constructor(
    readonly code: ValidationCode,
    message: string,
    readonly field: string | null = null,
    /** For a batch: the position of the input at fault. */
    readonly index: number | null = null,
  ) {
    super(message);
  }
}

/** What a NotFoundError is about, for the API layer to name by the id its clients know. */
export interface MissingSubject {
  typename: 'Task' | 'ApiKey' | 'Allocation' | 'ExecutionToken';
  id: number;
}

export class NotFoundError extends DomainError {
  override name = 'NotFoundError';
  readonly code = 'NOT_FOUND' as const;
  constructor(
    message: string,
    /** When set, the message ends with this subject's id, which the API layer appends in its own form. */
    readonly subject: MissingSubject | null = null,
  ) {
    super(message);
  }
}

export class ConflictError extends DomainError {
  override name = 'ConflictError';
  constructor(
    readonly code: 'ALREADY_EXISTS' | 'NOT_CANCELLABLE' | 'NOT_RETRYABLE' | 'ALREADY_RETRIEVED' | 'NOT_COMPLETED',
    message: string,
  ) {
    super(message);
  }
}

export class LimitExceededError extends DomainError {
  override name = 'LimitExceededError';
  readonly code = 'LIMIT_EXCEEDED' as const;
  constructor(
    message: string,
    readonly limit: number,
  ) {
    super(message);
  }
}

/** A key without the role an operation needs. */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}

export function requireAdmin(actor: { role: Role }): void {
  if (actor.role !== 'ADMIN') throw new ForbiddenError('This operation needs an ADMIN key.');
}

/**
 * The database cannot serve the request: read-only, full, locked past the busy timeout, corrupt or
 * gone. Nothing the client sent is at fault, so it may retry later.
 */
export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError';
  readonly code = 'STORAGE_UNAVAILABLE';
}
