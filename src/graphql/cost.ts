import {
  getArgumentValues,
  getDirectiveValues,
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  isAbstractType,
  isLeafType,
  isListType,
  isObjectType,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import type { Catalog } from '../catalog/index.js';
import { LIMITS } from '../catalog/index.js';
import { MAX_BATCH_SUBMIT, MAX_DEPENDENCIES, MAX_STATUS_IDS } from '../engine/api.js';
import { pageSize } from './ids.js';

// The cost of an operation is the most fields its response can hold: every field counts 1, once
// for each element of every list above it, and each list counts at its largest. It is computed
// where the variables are known, so `first: $n` counts as what $n is.

type Arguments = Record<string, unknown>;

/** The most elements a list field can return, from its own arguments and its parent field's. */
type ListSize = (args: Arguments, parentArgs: Arguments) => number;

/** Lists that grow with what an organisation creates and hold only scalars: counted at this size. */
export const UNBOUNDED_LIST_SIZE = 100;

const pageOfParent: ListSize = (_args, parentArgs) => pageSize(parentArgs['first'] as number | null | undefined);

/** Every list field of the schema outside introspection, by schema coordinate. */
function listSizes(catalog: Catalog): Record<string, ListSize> {
  const services = catalog.services();
  const actions = services.flatMap((service) => service.actions);
  const parameters = actions.flatMap((action) => action.parameters);
  const largest = (sizes: number[]) => () => Math.max(0, ...sizes);
  return {
    'Query.taskStatuses': (args) => Math.min((args['ids'] as unknown[]).length, MAX_STATUS_IDS),
    'TaskConnection.edges': pageOfParent,
    'AccountConnection.edges': pageOfParent,
    'TaskLogConnection.edges': pageOfParent,
    'SubmitTasksSuccess.tasks': (_args, parentArgs) =>
      Math.min((parentArgs['inputs'] as unknown[] | undefined)?.length ?? MAX_BATCH_SUBMIT, MAX_BATCH_SUBMIT),
    'Task.dependsOn': () => MAX_DEPENDENCIES,
    'Task.results': () => LIMITS.taskResults,
    'RetrieveResultsSuccess.results': () => LIMITS.taskResults,
    'Query.apiKeys': () => UNBOUNDED_LIST_SIZE,
    'Query.allocations': () => UNBOUNDED_LIST_SIZE,
    'Query.services': largest([services.length]),
    'Service.actions': largest(services.map((service) => service.actions.length)),
    'Action.parameters': largest(actions.map((action) => action.parameters.length)),
    'Action.execution': largest(actions.map((action) => action.execution.length)),
    'Parameter.allowedValues': largest(parameters.map((parameter) => parameter.allowedValues?.length ?? 0)),
  };
}

export interface OperationCost {
  cost: number;
  /** True when counting stopped at the limit: `cost` is then a lower bound. */
  stoppedAtLimit: boolean;
}

export interface CostModel {
  /** Null when the operation will not execute at all (no such operation, variables that do not coerce). */
  costOf(document: DocumentNode, operationName: string | null | undefined, variables: unknown, limit: number): OperationCost | null;
}

export function createCostModel(schema: GraphQLSchema, catalog: Catalog): CostModel {
  const sizes = listSizes(catalog);
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || !isObjectType(type)) continue;
    for (const field of Object.values(type.getFields())) {
      const nullable = getNullableType(field.type);
      if (!isListType(nullable)) continue;
      const coordinate = `${type.name}.${field.name}`;
      if (!sizes[coordinate]) throw new Error(`the cost model has no size for the list field ${coordinate}`);
      if (isListType(getNullableType(nullable.ofType))) throw new Error(`the cost model cannot count ${coordinate}, a list of lists`);
    }
  }

  return {
    costOf(document, operationName, variables, limit) {
      const operation = getOperationAST(document, operationName);
      const rootType = operation && schema.getRootType(operation.operation);
      if (!operation || !rootType) return null;
      const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], (variables ?? {}) as Arguments, {
        maxErrors: 1,
      });
      if (coerced.errors) return null;
      const fragments = new Map<string, FragmentDefinitionNode>();
      for (const definition of document.definitions) {
        if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
      }
      const counter = new Counter(schema, sizes, fragments, coerced.coerced, limit);
      const cost = counter.selection(rootType, [operation.selectionSet], 1, {});
      return { cost, stoppedAtLimit: counter.stoppedAtLimit };
    },
  };
}

class Counter {
  stoppedAtLimit = false;
  /** Field collection depends on the runtime type and the selection sets only; lists repeat both. */
  readonly #collected = new Map<GraphQLObjectType, Map<readonly SelectionSetNode[], Map<string, FieldNode[]>>>();
  readonly #selectionsOf = new Map<readonly FieldNode[], SelectionSetNode[]>();
  readonly #introspectionInfo: GraphQLResolveInfo;
  #introspected = 0;

  constructor(
    readonly schema: GraphQLSchema,
    readonly sizes: Record<string, ListSize>,
    readonly fragments: ReadonlyMap<string, FragmentDefinitionNode>,
    readonly variables: Arguments,
    readonly limit: number,
  ) {
    // graphql-js's introspection resolvers read nothing of their info but the schema.
    this.#introspectionInfo = { schema } as GraphQLResolveInfo;
  }

  /** Fields of the response under `selectionSets` for an object of `type`, times `multiplier` of them. */
  selection(type: GraphQLObjectType, selectionSets: readonly SelectionSetNode[], multiplier: number, parentArgs: Arguments): number {
    let cost = 0;
    for (const fieldNodes of this.#fields(type, selectionSets).values()) {
      cost += multiplier;
      const field = this.#fieldDefinition(type, fieldNodes[0]!.name.value);
      const args = this.#arguments(field, fieldNodes[0]!);
      // Without arguments the field resolves to an error, with nothing beneath it.
      if (!field || !args) continue;
      if (field === SchemaMetaFieldDef || field === TypeMetaFieldDef) {
        cost += this.#introspection(field, undefined, args, fieldNodes);
        continue;
      }
      const nullable = getNullableType(field.type);
      const elements = isListType(nullable) ? multiplier * this.sizes[`${type.name}.${field.name}`]!(args, parentArgs) : multiplier;
      const named = getNamedType(field.type);
      if (isLeafType(named) || elements === 0) continue;
      const subSelections = this.#subSelections(fieldNodes);
      const runtimeTypes = isAbstractType(named) ? this.schema.getPossibleTypes(named) : [named as GraphQLObjectType];
      // An abstract field's object is of one of its types: the costliest of them bounds it.
      cost += Math.max(0, ...runtimeTypes.map((runtimeType) => this.selection(runtimeType, subSelections, elements, args)));
    }
    return cost;
  }

  /**
   * Introspection is counted on the schema itself, exactly: its lists are as long as they are,
   * which no maximum could say without counting the full introspection query many times over.
   * Counting stops at the limit, since nested type references can multiply without end.
   */
  #introspection(field: GraphQLField<unknown, unknown>, source: unknown, args: Arguments, fieldNodes: readonly FieldNode[]): number {
    const value = field.resolve
      ? field.resolve(source, args, undefined, this.#introspectionInfo)
      : (source as Record<string, unknown>)[field.name];
    const type = getNamedType(field.type) as GraphQLObjectType;
    const subSelections = this.#subSelections(fieldNodes);
    let cost = 0;
    for (const object of value == null ? [] : Array.isArray(value) ? value : [value]) {
      for (const subFieldNodes of this.#fields(type, subSelections).values()) {
        cost += 1;
        if (++this.#introspected > this.limit) {
          this.stoppedAtLimit = true;
          return cost;
        }
        const subField = this.#fieldDefinition(type, subFieldNodes[0]!.name.value);
        if (!subField || isLeafType(getNamedType(subField.type))) continue;
        const subArgs = this.#arguments(subField, subFieldNodes[0]!);
        if (subArgs) cost += this.#introspection(subField, object, subArgs, subFieldNodes);
        if (this.stoppedAtLimit) return cost;
      }
    }
    return cost;
  }

  /** The same array for the same fields, so that what is collected under them is found again. */
  #subSelections(fieldNodes: readonly FieldNode[]): SelectionSetNode[] {
    let selectionSets = this.#selectionsOf.get(fieldNodes);
    if (!selectionSets) {
      selectionSets = fieldNodes.flatMap((node) => (node.selectionSet ? [node.selectionSet] : []));
      this.#selectionsOf.set(fieldNodes, selectionSets);
    }
    return selectionSets;
  }

  #fieldDefinition(type: GraphQLObjectType, name: string): GraphQLField<unknown, unknown> | undefined {
    if (name === TypeNameMetaFieldDef.name) return TypeNameMetaFieldDef;
    if (type === this.schema.getQueryType()) {
      if (name === SchemaMetaFieldDef.name) return SchemaMetaFieldDef;
      if (name === TypeMetaFieldDef.name) return TypeMetaFieldDef;
    }
    return type.getFields()[name];
  }

  #arguments(field: GraphQLField<unknown, unknown> | undefined, node: FieldNode): Arguments | null {
    if (!field) return null;
    try {
      return getArgumentValues(field, node, this.variables);
    } catch {
      return null;
    }
  }

  /** The fields of the response for an object of `type`, by response name, as graphql-js collects them. */
  #fields(type: GraphQLObjectType, selectionSets: readonly SelectionSetNode[]): Map<string, FieldNode[]> {
    let byType = this.#collected.get(type);
    if (!byType) this.#collected.set(type, (byType = new Map()));
    const cached = byType.get(selectionSets);
    if (cached) return cached;
    const fields = new Map<string, FieldNode[]>();
    const visitedFragments = new Set<string>();
    const collect = (selectionSet: SelectionSetNode) => {
      for (const selection of selectionSet.selections) {
        if (!this.#included(selection)) continue;
        switch (selection.kind) {
          case Kind.FIELD: {
            const name = selection.alias?.value ?? selection.name.value;
            const nodes = fields.get(name);
            if (nodes) nodes.push(selection);
            else fields.set(name, [selection]);
            break;
          }
          case Kind.INLINE_FRAGMENT:
            if (this.#applies(selection.typeCondition?.name.value, type)) collect(selection.selectionSet);
            break;
          case Kind.FRAGMENT_SPREAD: {
            const fragment = this.fragments.get(selection.name.value);
            if (visitedFragments.has(selection.name.value) || !fragment) break;
            visitedFragments.add(selection.name.value);
            if (this.#applies(fragment.typeCondition.name.value, type)) collect(fragment.selectionSet);
            break;
          }
        }
      }
    };
    for (const selectionSet of selectionSets) collect(selectionSet);
    byType.set(selectionSets, fields);
    return fields;
  }

  #included(node: Parameters<typeof getDirectiveValues>[1]): boolean {
    if (getDirectiveValues(GraphQLSkipDirective, node, this.variables)?.['if'] === true) return false;
    return getDirectiveValues(GraphQLIncludeDirective, node, this.variables)?.['if'] !== false;
  }

  #applies(typeCondition: string | undefined, type: GraphQLObjectType): boolean {
    if (typeCondition === undefined) return true;
    const conditionType = this.schema.getType(typeCondition);
    if (!conditionType) return false;
    if (conditionType === type) return true;
    return isAbstractType(conditionType) && this.schema.isSubType(conditionType, type);
  }
}
