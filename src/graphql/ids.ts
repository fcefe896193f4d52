import { GraphQLError } from 'graphql';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import type { Page, PageRequest } from '../engine/types.js';

export type NodeTypename = 'Task' | 'TaskResult' | 'Account' | 'ApiKey' | 'Allocation';

/** Ids that name something but are not nodes of their own. */
type OpaqueTypename = 'ExecutionToken';

const POSITIVE_INTEGER = /^[1-9]\d*$/;

/** The global id's typename and number, or null when it is malformed; never throws. */
export function decodeAnyId(globalId: string): { typename: string; id: number } | null {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    return null;
  }
  if (!POSITIVE_INTEGER.test(decoded.id)) return null;
  const id = Number(decoded.id);
  return Number.isSafeInteger(id) ? { typename: decoded.typename, id } : null;
}

export function encodeId(typename: NodeTypename | OpaqueTypename, id: number): string {
  return encodeGlobalID(typename, id);
}

/** The number inside a global id of the expected type, or null for anything else. */
export function decodeId(globalId: string, typename: NodeTypename | OpaqueTypename): number | null {
  const decoded = decodeAnyId(globalId);
  return decoded?.typename === typename ? decoded.id : null;
}

// Cursors share the global id encoding under a name no node type uses, so that a node id passed
// as a cursor is refused rather than quietly misread.
const CURSOR_TYPENAME = 'Cursor';

function encodeCursor(id: number): string {
  return encodeGlobalID(CURSOR_TYPENAME, id);
}

function decodeCursor(cursor: string): number {
  const decoded = decodeAnyId(cursor);
  if (decoded?.typename !== CURSOR_TYPENAME) {
    throw new GraphQLError(`Invalid cursor: ${cursor}`, { extensions: { code: 'INVALID' } });
  }
  return decoded.id;
}

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 500;

interface PageArguments {
  first?: number | null;
  after?: string | null;
}

/** `first` defaults to 20 and is capped at 500, as Relay allows a server to do. */
export function pageRequest({ first, after }: PageArguments): PageRequest {
  if (first != null && first < 0) {
    throw new GraphQLError('first must not be negative', { extensions: { code: 'INVALID' } });
  }
  return {
    first: Math.min(first ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
    afterId: after == null ? null : decodeCursor(after),
  };
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

export function toConnection<T extends { id: number }>(page: Page<T>, request: PageRequest): Connection<T> {
  const edges = page.items.map((node) => ({ cursor: encodeCursor(node.id), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: request.afterId != null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

export function emptyConnection<T>(): Connection<T> {
  return {
    edges: [],
    pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
  };
}
