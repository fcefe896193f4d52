import { getOperationAST, GraphQLError, Kind, type DocumentNode, type SelectionSetNode } from 'graphql';
import type { TaskEngine, Viewer } from '../engine/api.js';

export type Authentication = { viewer: Viewer; failure: null } | { viewer: null; failure: GraphQLError };

const CREDENTIALS = /^(?:Bearer|Token)\s+(\S+)\s*$/i;

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

const HOW = 'send "Authorization: Bearer <token>"';

/** Why the header holds no usable credentials, in words that say what to change. */
function missingCredentials(authorization: unknown): string {
  const sent = typeof authorization === 'string' ? authorization.trim() : '';
  if (sent === '') return `An API key is required: ${HOW}`;
  const [scheme, ...rest] = sent.split(/\s+/);
  if (rest.length === 0) return `The API key needs its scheme in front: ${HOW}`;
  return `The scheme "${scheme!.slice(0, 20)}" is not accepted: ${HOW} (or "Token <token>")`;
}

/**
 * The viewer of an HTTP Authorization header or of graphql-ws connectionParams.authorization:
 * both carry "Bearer <token>" (or "Token <token>").
 */
export async function authenticate(engine: TaskEngine, authorization: unknown): Promise<Authentication> {
  const token = typeof authorization === 'string' ? CREDENTIALS.exec(authorization.trim())?.[1] : undefined;
  if (!token) return { viewer: null, failure: unauthenticated(missingCredentials(authorization)) };
  const viewer = await engine.authenticate(token);
  if (!viewer) return { viewer: null, failure: unauthenticated('The API key is unknown or revoked') };
  return { viewer, failure: null };
}

function selectsOnlyIntrospection(selectionSet: SelectionSetNode, document: DocumentNode): boolean {
  return selectionSet.selections.every((selection) => {
    switch (selection.kind) {
      case Kind.FIELD:
        return selection.name.value.startsWith('__');
      case Kind.INLINE_FRAGMENT:
        return selectsOnlyIntrospection(selection.selectionSet, document);
      case Kind.FRAGMENT_SPREAD: {
        const fragment = document.definitions.find(
          (definition) => definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === selection.name.value,
        );
        return fragment?.kind === Kind.FRAGMENT_DEFINITION && selectsOnlyIntrospection(fragment.selectionSet, document);
      }
    }
  });
}

/** Operations that only read __schema, __type or __typename run without a key, so GraphiQL's docs load. */
function isIntrospectionOnly(document: DocumentNode, operationName?: string | null): boolean {
  const operation = getOperationAST(document, operationName);
  return operation != null && selectsOnlyIntrospection(operation.selectionSet, document);
}

/** Why the operation may not run, or null when it may. */
export function authenticationFailure(
  authentication: Authentication,
  document: DocumentNode,
  operationName?: string | null,
): GraphQLError | null {
  if (authentication.failure === null || isIntrospectionOnly(document, operationName)) return null;
  return authentication.failure;
}
