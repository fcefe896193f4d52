import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import {
  getNullableType,
  getOperationAST,
  GraphQLError,
  isInputObjectType,
  isListType,
  Kind,
  TypeInfo,
  typeFromAST,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLInputField,
  type GraphQLInputObjectType,
  type GraphQLInputType,
  type GraphQLSchema,
  type ValidationContext,
  type ValueNode,
  type VariableDefinitionNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Catalog } from '../catalog/index.js';
import { MAX_BATCH_SUBMIT, MAX_DEPENDENCIES, MAX_FILTER_IDS, MAX_STATUS_IDS } from '../domain/api.js';
import { WEBHOOK_EVENTS } from '../domain/webhooks.js';
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

/**
 * The longest list each list argument or input field takes, by schema coordinate. They are
 * checked on the values as sent, before anything coerces them: graphql-js coerces every element
 * of a variable before a resolver could count them, and 200,000 inputs took a second and 450 MB.
 */
export const LIST_MAXIMA: Readonly<Record<string, number>> = Object.freeze({
  'Mutation.submitTasks(inputs:)': MAX_BATCH_SUBMIT,
  'Query.taskStatuses(ids:)': MAX_STATUS_IDS,
  'SubmitTaskInput.dependsOn': MAX_DEPENDENCIES,
  'TaskFilter.ids': MAX_FILTER_IDS,
  // Events are distinct: a longer list repeats one, and is refused anyway.
  'TaskWebhookInput.events': WEBHOOK_EVENTS.length,
  'CreateWebhookEndpointInput.events': WEBHOOK_EVENTS.length,
  'UpdateWebhookEndpointInput.events': WEBHOOK_EVENTS.length,
});

function listTooLong(coordinate: string, limit: number, length: number): GraphQLError {
  return new GraphQLError(
    `${coordinate} takes at most ${limit.toLocaleString('en')} items; ${length.toLocaleString('en')} were given`,
    { extensions: { code: 'LIMIT_EXCEEDED', limit, coordinate, http: { status: 400 } } },
  );
}

/**
 * The fields of an input type beneath which a list can be, in the type's order: the others can
 * never be over a limit, and a submitTask's input is walked on every request.
 */
const fieldsHoldingLists = new WeakMap<GraphQLInputObjectType, readonly GraphQLInputField[]>();

/** Whether a list is anywhere beneath `type`: reachability, so each input type is entered once. */
function holdsList(type: GraphQLInputType, entered: Set<GraphQLInputObjectType>): boolean {
  const nullable = getNullableType(type);
  if (isListType(nullable)) return true;
  if (!isInputObjectType(nullable) || entered.has(nullable)) return false;
  entered.add(nullable);
  return Object.values(nullable.getFields()).some((field) => holdsList(field.type, entered));
}

function listFieldsOf(type: GraphQLInputObjectType): readonly GraphQLInputField[] {
  let fields = fieldsHoldingLists.get(type);
  if (!fields) {
    fields = Object.values(type.getFields()).filter((field) => holdsList(field.type, new Set()));
    fieldsHoldingLists.set(type, fields);
  }
  return fields;
}

/** The first list of `value` (a value as sent, JSON) longer than its maximum, as an error; null when none is. */
function rawValueOverLimit(value: unknown, type: GraphQLInputType, coordinate: string | null): GraphQLError | null {
  const nullable = getNullableType(type);
  if (isListType(nullable)) {
    if (!Array.isArray(value)) return rawValueOverLimit(value, nullable.ofType, null);
    const limit = coordinate === null ? undefined : LIST_MAXIMA[coordinate];
    if (limit !== undefined && value.length > limit) return listTooLong(coordinate!, limit, value.length);
    for (const item of value) {
      const error = rawValueOverLimit(item, nullable.ofType, null);
      if (error) return error;
    }
    return null;
  }
  if (!isInputObjectType(nullable) || typeof value !== 'object' || value === null) return null;
  for (const field of listFieldsOf(nullable)) {
    const error = rawValueOverLimit((value as Record<string, unknown>)[field.name], field.type, `${nullable.name}.${field.name}`);
    if (error) return error;
  }
  return null;
}

/** As rawValueOverLimit, for a value written in the document, whose variables are read as sent. */
function literalOverLimit(
  node: ValueNode,
  type: GraphQLInputType,
  coordinate: string | null,
  variables: Readonly<Record<string, unknown>>,
): GraphQLError | null {
  if (node.kind === Kind.VARIABLE) return rawValueOverLimit(variables[node.name.value], type, coordinate);
  const nullable = getNullableType(type);
  if (isListType(nullable)) {
    if (node.kind !== Kind.LIST) return literalOverLimit(node, nullable.ofType, null, variables);
    const limit = coordinate === null ? undefined : LIST_MAXIMA[coordinate];
    if (limit !== undefined && node.values.length > limit) return listTooLong(coordinate!, limit, node.values.length);
    for (const item of node.values) {
      const error = literalOverLimit(item, nullable.ofType, null, variables);
      if (error) return error;
    }
    return null;
  }
  if (!isInputObjectType(nullable) || node.kind !== Kind.OBJECT) return null;
  const fields = nullable.getFields();
  for (const fieldNode of node.fields) {
    const field = fields[fieldNode.name.value];
    if (!field) continue;
    const error = literalOverLimit(fieldNode.value, field.type, `${nullable.name}.${field.name}`, variables);
    if (error) return error;
  }
  return null;
}

/** What listOverLimit reads of a document whatever its variables, in the order it reads it. */
interface ListArguments {
  /** Arguments written in the document, in document order. */
  literals: readonly { value: ValueNode; type: GraphQLInputType; coordinate: string }[];
  /** The coordinates of the arguments that take each variable whole. */
  takingVariable: ReadonlyMap<string, readonly string[]>;
  variableTypes: Map<VariableDefinitionNode, GraphQLInputType | undefined>;
}

/**
 * By document: the parse cache hands the same document object to every request of the same
 * text, so the walk with type information is done once per text, and an entry lives only as long
 * as its document does.
 */
const listArgumentsBySchema = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, ListArguments>>();

function listArgumentsOf(schema: GraphQLSchema, document: DocumentNode): ListArguments {
  let byDocument = listArgumentsBySchema.get(schema);
  if (!byDocument) listArgumentsBySchema.set(schema, (byDocument = new WeakMap()));
  let found = byDocument.get(document);
  if (found) return found;
  const typeInfo = new TypeInfo(schema);
  const literals: ListArguments['literals'][number][] = [];
  const takingVariable = new Map<string, string[]>();
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Argument(node) {
        const argument = typeInfo.getArgument();
        const field = typeInfo.getFieldDef();
        const parent = typeInfo.getParentType();
        if (!argument || !field || !parent) return;
        const coordinate = `${parent.name}.${field.name}(${argument.name}:)`;
        if (node.value.kind === Kind.VARIABLE) {
          const name = node.value.name.value;
          takingVariable.set(name, [...(takingVariable.get(name) ?? []), coordinate]);
        } else {
          literals.push({ value: node.value, type: argument.type, coordinate });
        }
      },
    }),
  );
  found = { literals, takingVariable, variableTypes: new Map() };
  byDocument.set(document, found);
  return found;
}

/** The first list argument of the operation over its maximum (LIST_MAXIMA), or null. */
export function listOverLimit(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variableValues: unknown,
): GraphQLError | null {
  const operation = getOperationAST(document, operationName);
  if (!operation) return null;
  const variables = (typeof variableValues === 'object' && variableValues !== null ? variableValues : {}) as Record<string, unknown>;
  const { literals, takingVariable, variableTypes } = listArgumentsOf(schema, document);
  for (const { value, type, coordinate } of literals) {
    const error = literalOverLimit(value, type, coordinate, variables);
    if (error) return error;
  }
  // Each variable as its declared type, at every argument that takes it whole; one that no
  // argument takes whole is still bounded inside (the lists of its input objects).
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    if (!variableTypes.has(definition)) variableTypes.set(definition, typeFromAST(schema, definition.type) as GraphQLInputType | undefined);
    const type = variableTypes.get(definition);
    if (!type || !(name in variables)) continue;
    for (const coordinate of takingVariable.get(name) ?? [null]) {
      const error = rawValueOverLimit(variables[name], type, coordinate);
      if (error) return error;
    }
  }
  return null;
}

/** Refuses lists over LIST_MAXIMA with LIMIT_EXCEEDED before they are coerced: put it before any plugin that coerces variables. */
export function useListLimits(schema: GraphQLSchema): Plugin {
  const check = ({
    args,
    setResultAndStopExecution,
  }: {
    args: { document: DocumentNode; operationName?: string | null; variableValues?: unknown };
    setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
  }) => {
    const error = listOverLimit(schema, args.document, args.operationName, args.variableValues);
    if (error) setResultAndStopExecution({ errors: [error] });
  };
  return { onExecute: check, onSubscribe: check };
}
