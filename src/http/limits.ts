import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError, type DocumentNode, type GraphQLSchema, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Catalog } from '../catalog/index.js';
import { createCostModel } from '../graphql/cost.js';

/** What every operation may ask for, introspection included, on HTTP, SSE and graphql-ws alike. */
export const QUERY_LIMITS = Object.freeze({
  /** Nested fields, not counting fragments: GraphiQL's introspection query reaches 15. */
  depth: 15,
  /** Aliases, of __typename too. */
  aliases: 20,
  tokens: 2000,
  /** __schema and __type fields of an operation sent without an API key: GraphiQL sends one. */
  introspectionsWithoutKey: 1,
  /**
   * The most fields a response can hold (src/graphql/cost.ts). A full taskStatuses of 10,000 ids
   * costs 100,001.
   */
  cost: 120_000,
});

/** What one request may carry, the same on every transport of the GraphQL endpoint. */
export const TRANSPORT_LIMITS = Object.freeze({
  /** A POST body to /graphql (413 past it) and a graphql-ws frame (closed with 1009). */
  requestBytes: 1024 * 1024,
});

/** Armor's own error, reported with the code every refused limit carries. */
function reportedAsLimitExceeded(limit: number) {
  return {
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) =>
        context?.reportError(new GraphQLError(error.message, { extensions: { code: 'LIMIT_EXCEEDED', limit } })),
    ],
  };
}

/** Depth, aliases and tokens, checked on the document before anything runs. */
export function useDocumentLimits(): Plugin {
  return EnvelopArmorPlugin({
    maxDepth: {
      n: QUERY_LIMITS.depth,
      ignoreIntrospection: false,
      flattenFragments: true,
      ...reportedAsLimitExceeded(QUERY_LIMITS.depth),
    },
    maxAliases: { n: QUERY_LIMITS.aliases, allowList: [], ...reportedAsLimitExceeded(QUERY_LIMITS.aliases) },
    // Counted while parsing, where no validation context can carry a code: a syntax error.
    maxTokens: { n: QUERY_LIMITS.tokens },
    // Armor's cost rule sees no variable values; useCostLimit counts cost instead.
    costLimit: { enabled: false },
  });
}

export const DOCUMENT_CACHE_LIMITS = Object.freeze({
  documents: 1024,
  /** A longer document is parsed each time it comes. */
  documentCharacters: 16 * 1024,
  // A parsed document takes about 500 bytes per token, and text can hold a token every two
  // characters: this much text parses to at most about 65 MB.
  characters: 256 * 1024,
});

/**
 * yoga's parse caches keep 1,024 documents however long they are: a 25 MB body of comments
 * around `{ __typename }` is one token and would be kept, 1,024 times over. This one also bounds
 * the text it keeps, and with it the parsed documents.
 */
export class DocumentCache<T> {
  readonly #entries = new Map<string, T>();
  #characters = 0;

  get(document: string): T | undefined {
    const value = this.#entries.get(document);
    if (value !== undefined) {
      this.#entries.delete(document);
      this.#entries.set(document, value);
    }
    return value;
  }

  set(document: string, value: T): void {
    if (document.length > DOCUMENT_CACHE_LIMITS.documentCharacters) return;
    if (this.#entries.delete(document)) this.#characters -= document.length;
    this.#entries.set(document, value);
    this.#characters += document.length;
    for (const oldest of this.#entries.keys()) {
      if (this.#characters <= DOCUMENT_CACHE_LIMITS.characters && this.#entries.size <= DOCUMENT_CACHE_LIMITS.documents) break;
      this.#entries.delete(oldest);
      this.#characters -= oldest.length;
    }
  }

  get size(): { documents: number; characters: number } {
    return { documents: this.#entries.size, characters: this.#characters };
  }
}

export function parserAndValidationCache() {
  return { documentCache: new DocumentCache<DocumentNode>(), errorCache: new DocumentCache<unknown>() };
}

function costLimitExceeded(cost: number, stoppedAtLimit: boolean): GraphQLError {
  const limit = QUERY_LIMITS.cost;
  const costText = `${stoppedAtLimit ? 'more than ' : ''}${cost.toLocaleString('en')}`;
  return new GraphQLError(
    `The operation costs ${costText}, over the limit of ${limit.toLocaleString('en')}: its response could hold ` +
      `that many fields, counting each list at its largest (first, or its maximum size). Ask for smaller pages or fewer fields.`,
    { extensions: { code: 'LIMIT_EXCEEDED', cost, limit, http: { status: 400 } } },
  );
}

/** Refuses operations over QUERY_LIMITS.cost, counted with the variables the client sent. */
export function useCostLimit(schema: GraphQLSchema, catalog: Catalog): Plugin {
  const model = createCostModel(schema, catalog);
  const check = ({
    args,
    setResultAndStopExecution,
  }: {
    args: { document: DocumentNode; operationName?: string | null; variableValues?: unknown };
    setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
  }) => {
    const counted = model.costOf(args.document, args.operationName, args.variableValues, QUERY_LIMITS.cost);
    if (counted && counted.cost > QUERY_LIMITS.cost) {
      setResultAndStopExecution({ errors: [costLimitExceeded(counted.cost, counted.stoppedAtLimit)] });
    }
  };
  return { onExecute: check, onSubscribe: check };
}
