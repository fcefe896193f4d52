import { GraphQLError } from 'graphql';
import { encodeGlobalID } from '@pothos/plugin-relay';
import type { Page, PageRequest } from '../domain/types.js';
import { inTurns } from './turns.js';

export type NodeTypename =
  | 'Task'
  | 'TaskResult'
  | 'Account'
  | 'ApiKey'
  | 'Allocation'
  | 'WebhookEndpoint'
  | 'WebhookDelivery'
  | 'Schedule';

/** Ids that name something but are not nodes of their own. */
type OpaqueTypename = 'ExecutionToken';

// What Pothos' decodeGlobalID accepts (canonical base64 of "typename:id"), narrowed to ids that are
// positive integers. Decoding here rather than through Buffer takes a third of the time, which
// matters for 10,000 ids of one taskStatuses call.
const CANONICAL_BASE64 = /^(?:[\d+/A-Za-z]{4})*(?:[\d+/A-Za-z]{2}==|[\d+/A-Za-z]{3}=)?$/;
const TYPENAME_AND_NUMBER = /^([A-Z_a-z]\w*):([1-9]\d*)$/;
const BASE64_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_VALUE = new Uint8Array(128);
for (let index = 0; index < BASE64_DIGITS.length; index++) BASE64_VALUE[BASE64_DIGITS.charCodeAt(index)] = index;

/**
 * The bytes of canonical base64 as one character per byte. A byte above 0x7f becomes a character
 * that UTF-8 decoding would not give, but UTF-8 turns such bytes into non-ASCII characters too, and
 * TYPENAME_AND_NUMBER refuses both alike.
 */
function decodeBase64Bytes(value: string): string | null {
  if (!CANONICAL_BASE64.test(value)) return null;
  const end = value.endsWith('==') ? value.length - 2 : value.endsWith('=') ? value.length - 1 : value.length;
  let decoded = '';
  let bits = 0;
  let bitCount = 0;
  for (let index = 0; index < end; index++) {
    bits = ((bits << 6) | BASE64_VALUE[value.charCodeAt(index)]!) & 0xffffff;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      decoded += String.fromCharCode((bits >> bitCount) & 0xff);
    }
  }
  return decoded;
}

/** The global id's typename and number, or null when it is malformed; never throws. */
export function decodeAnyId(globalId: string): { typename: string; id: number } | null {
  const decoded = decodeBase64Bytes(globalId);
  const match = decoded === null ? null : TYPENAME_AND_NUMBER.exec(decoded);
  if (!match) return null;
  const id = Number(match[2]);
  return Number.isSafeInteger(id) ? { typename: match[1]!, id } : null;
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

/** The most a page holds for `first`: 20 by default, at most 500, as Relay allows a server to do; none when negative (refused). */
export function pageSize(first: number | null | undefined): number {
  if (first != null && first < 0) return 0;
  return Math.min(first ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
}

export function pageRequest({ first, after }: PageArguments): PageRequest {
  if (first != null && first < 0) {
    throw new GraphQLError('first must not be negative', { extensions: { code: 'INVALID' } });
  }
  return { first: pageSize(first), afterId: after == null ? null : decodeCursor(after) };
}

/** Edges of a page that graphql-js completes in one turn of the event loop: a task has many fields. */
const EDGES_PER_TURN = 100;

export interface Connection<T> {
  edges: ({ cursor: string; node: T } | Promise<{ cursor: string; node: T }>)[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

export function toConnection<T extends { id: number }>(page: Page<T>, request: PageRequest): Connection<T> {
  const edges = page.items.map((node) => ({ cursor: encodeCursor(node.id), node }));
  return {
    edges: inTurns(edges, EDGES_PER_TURN),
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
