import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import SimpleObjectsPlugin from '@pothos/plugin-simple-objects';
import { GraphQLError, Kind, type ValueNode } from 'graphql';
import type { GraphQLContext } from './context.js';

export type { GraphQLContext } from './context.js';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: { admin: boolean };
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: { list: false; items: false };
  DefaultNodeNullability: false;
}>({
  plugins: [ScopeAuthPlugin, ErrorsPlugin, RelayPlugin, SimpleObjectsPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (context) => ({ admin: context.actor?.role === 'ADMIN' }),
    unauthorizedError: (_parent, _context, info) =>
      new GraphQLError(`${info.parentType.name}.${info.fieldName} needs an ADMIN key`, {
        extensions: { code: 'FORBIDDEN' },
      }),
  },
  errors: { defaultTypes: [] },
  relay: {
    // Our own node field decodes ids without throwing; see schema.ts.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: { list: false, items: false } },
    nodeFieldOptions: { nullable: false },
  },
});

/**
 * The values of a GraphQL enum from the domain's list of them, with descriptions for some: a value
 * added to the domain appears in the schema, and a description cannot outlive its value.
 */
export function describedValues<const Value extends string>(
  values: readonly Value[],
  descriptions: NoInfer<{ [Key in Value]?: string }>,
): Record<Value, { description?: string }> {
  return Object.fromEntries(values.map((value) => [value, { description: descriptions[value] }])) as Record<
    Value,
    { description?: string }
  >;
}

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

function parseDateTime(value: unknown): Date {
  const date = typeof value === 'string' && ISO_DATETIME.test(value) ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) {
    throw new GraphQLError(`DateTime must be an ISO-8601 date and time with a zone, e.g. 2026-01-31T12:00:00Z`, {
      extensions: { code: 'INVALID' },
    });
  }
  return date;
}

builder.scalarType('DateTime', {
  description: 'An ISO-8601 date and time, always returned in UTC (e.g. 2026-01-31T12:00:00.000Z).',
  serialize: (value) => (value instanceof Date ? value : new Date(value as string)).toISOString(),
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : null),
});

function jsonFromLiteral(ast: ValueNode, variables: Record<string, unknown> | null | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.ENUM:
      throw new GraphQLError(`JSON has no enum values; quote ${ast.value} as a string`, {
        extensions: { code: 'INVALID' },
      });
    case Kind.LIST:
      return ast.values.map((item) => jsonFromLiteral(item, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((field) => [field.name.value, jsonFromLiteral(field.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
  }
}

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: jsonFromLiteral,
});
