import { getOperationAST, GraphQLError, Kind, type DocumentNode, type FragmentDefinitionNode, type SelectionSetNode } from 'graphql';
import type { TaskEngine, Viewer } from '../domain/api.js';
import { QUERY_LIMITS } from './limits.js';

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

/**
 * The response names of the operation's __schema and __type fields, or null when it selects
 * anything but introspection. Each fragment is read once: a document of fragments that spread
 * each other twice over would otherwise take exponential time.
 */
function introspectionFields(document: DocumentNode, operationName?: string | null): Set<string> | null {
  const operation = getOperationAST(document, operationName);
  if (!operation) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const names = new Set<string>();
  const readFragments = new Set<string>();
  const onlyIntrospection = (selectionSet: SelectionSetNode): boolean =>
    selectionSet.selections.every((selection) => {
      switch (selection.kind) {
        case Kind.FIELD:
          if (!selection.name.value.startsWith('__')) return false;
          if (selection.name.value !== '__typename') names.add(selection.alias?.value ?? selection.name.value);
          return true;
        case Kind.INLINE_FRAGMENT:
          return onlyIntrospection(selection.selectionSet);
        case Kind.FRAGMENT_SPREAD: {
          // A fragment read before either passed, or already made the whole answer false.
          if (readFragments.has(selection.name.value)) return true;
          readFragments.add(selection.name.value);
          const fragment = fragments.get(selection.name.value);
          return fragment !== undefined && onlyIntrospection(fragment.selectionSet);
        }
      }
    });
  return onlyIntrospection(operation.selectionSet) ? names : null;
}

/**
 * Why the operation may not run, or null when it may. Without a key only introspection runs, so
 * that GraphiQL's docs load, and only as much of it as GraphiQL asks for.
 */
export function authenticationFailure(
  authentication: Authentication,
  document: DocumentNode,
  operationName?: string | null,
): GraphQLError | null {
  if (authentication.failure === null) return null;
  const introspection = introspectionFields(document, operationName);
  if (introspection === null) return authentication.failure;
  if (introspection.size > QUERY_LIMITS.introspectionsWithoutKey) {
    return unauthenticated(
      `Without an API key an operation may introspect once (one __schema or __type field, as GraphiQL asks); ` +
        `this one has ${introspection.size}. For more, ${HOW}`,
    );
  }
  return null;
}
