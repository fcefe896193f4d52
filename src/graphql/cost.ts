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
  type ArgumentNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type FragmentSpreadNode,
  type InlineFragmentNode,
  type OperationDefinitionNode,
  type ValueNode,
  type VariableDefinitionNode,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import type { Catalog } from '../catalog/index.js';
import { LIMITS } from '../catalog/index.js';
import { FINISHED_MINUTES, maxThroughputBuckets } from '../domain/aggregates.js';
import { MAX_BATCH_SUBMIT, MAX_DEPENDENCIES, MAX_DEPENDENTS_LISTED, MAX_RETRIES_PER_TASK, MAX_STATUS_IDS } from '../domain/api.js';
import { RATE_LIMIT_BOUNDS } from '../domain/rate-limits.js';
import { SCHEDULE_LIMITS } from '../domain/schedules.js';
import { WEBHOOK_EVENTS } from '../domain/webhooks.js';
import { pageSize } from './ids.js';

// The cost of an operation is the most fields its response can hold: every field counts 1, once
// for each element of every list above it, and each list counts at its largest. It is computed
// where the variables are known, so `first: $n` counts as what $n is.

type Arguments = Record<string, unknown>;

/** The most elements a list field can return: fixed, or from its arguments, or from its parent field's. */
type ListSize =
  | { fixed: number }
  | { ofArguments: (args: Arguments) => number }
  | { ofParentArguments: (parentArgs: Arguments) => number };

/** Lists that grow with what an organisation creates and hold only scalars: counted at this size. */
export const UNBOUNDED_LIST_SIZE = 100;

const pageOfParent: ListSize = { ofParentArguments: (parentArgs) => pageSize(parentArgs['first'] as number | null | undefined) };

/** Every list field of the schema outside introspection, by schema coordinate. */
function listSizes(catalog: Catalog): Record<string, ListSize> {
  const services = catalog.services();
  const actions = services.flatMap((service) => service.actions);
  const parameters = actions.flatMap((action) => action.parameters);
  const largest = (sizes: number[]) => ({ fixed: Math.max(0, ...sizes) });
  return {
    'Query.taskStatuses': { ofArguments: (args) => Math.min((args['ids'] as unknown[]).length, MAX_STATUS_IDS) },
    'TaskConnection.edges': pageOfParent,
    'AccountConnection.edges': pageOfParent,
    'TaskLogConnection.edges': pageOfParent,
    'SubmitTasksSuccess.tasks': {
      ofParentArguments: (parentArgs) =>
        Math.min((parentArgs['inputs'] as unknown[] | undefined)?.length ?? MAX_BATCH_SUBMIT, MAX_BATCH_SUBMIT),
    },
    'Task.dependsOn': { fixed: MAX_DEPENDENCIES },
    'Task.dependents': { fixed: MAX_DEPENDENTS_LISTED },
    'Task.results': { fixed: LIMITS.taskResults },
    'Task.retryHistory': { fixed: MAX_RETRIES_PER_TASK },
    'RetrieveResultsSuccess.results': { fixed: LIMITS.taskResults },
    'Query.apiKeys': { fixed: UNBOUNDED_LIST_SIZE },
    'RateLimitTier.windows': { fixed: RATE_LIMIT_BOUNDS.windows },
    'Query.allocations': { fixed: UNBOUNDED_LIST_SIZE },
    'Query.queueStats': { fixed: UNBOUNDED_LIST_SIZE },
    'QueueStats.finishedPerMinute': { fixed: FINISHED_MINUTES },
    'Query.workerProcesses': { fixed: UNBOUNDED_LIST_SIZE },
    'WorkerProcess.actions': { fixed: UNBOUNDED_LIST_SIZE },
    'TaskThroughputSuccess.buckets': { ofParentArguments: (parentArgs) => maxThroughputBuckets(parentArgs['bucketSeconds'] as number) },
    'WebhookEndpointConnection.edges': pageOfParent,
    'WebhookDeliveryConnection.edges': pageOfParent,
    'WebhookEndpoint.events': { fixed: WEBHOOK_EVENTS.length },
    'TaskWebhook.events': { fixed: WEBHOOK_EVENTS.length },
    'ScheduleConnection.edges': pageOfParent,
    'ScheduleTaskConnection.edges': pageOfParent,
    'Schedule.nextRuns': {
      ofArguments: (args) => Math.min((args['count'] as number | null | undefined) ?? SCHEDULE_LIMITS.nextRunsDefault, SCHEDULE_LIMITS.nextRunsMax),
    },
    'Query.services': largest([services.length]),
    'Service.actions': largest(services.map((service) => service.actions.length)),
    'Action.parameters': largest(actions.map((action) => action.parameters.length)),
    'Action.execution': largest(actions.map((action) => action.execution.length)),
    'Parameter.allowedValues': largest(parameters.map((parameter) => parameter.allowedValues?.length ?? 0)),
  };
}

export interface OperationCost {
  cost: number;
  /** True when counting introspection stopped at the limit: `cost` is then a lower bound. */
  stoppedAtLimit: boolean;
}

export interface CostModel {
  /** Null when the operation names no operation of the document. */
  costOf(document: DocumentNode, operationName: string | null | undefined, variables: unknown, limit: number): OperationCost | null;
}

/** What the counter knows of the schema, worked out once. */
interface SchemaFacts {
  schema: GraphQLSchema;
  sizes: ReadonlyMap<GraphQLField<unknown, unknown>, ListSize>;
  /** Fields whose arguments a count reads: their own list size, or a list size beneath them, depends on them. */
  readArguments: ReadonlySet<GraphQLField<unknown, unknown>>;
}

function schemaFacts(schema: GraphQLSchema, catalog: Catalog): SchemaFacts {
  const declared = listSizes(catalog);
  const sizes = new Map<GraphQLField<unknown, unknown>, ListSize>();
  const typesReadingParentArguments = new Set<GraphQLObjectType>();
  const objectTypes = Object.values(schema.getTypeMap()).filter(
    (type): type is GraphQLObjectType => isObjectType(type) && !type.name.startsWith('__'),
  );
  for (const type of objectTypes) {
    for (const field of Object.values(type.getFields())) {
      const nullable = getNullableType(field.type);
      if (!isListType(nullable)) continue;
      const coordinate = `${type.name}.${field.name}`;
      const size = declared[coordinate];
      if (!size) throw new Error(`the cost model has no size for the list field ${coordinate}`);
      if (isListType(getNullableType(nullable.ofType))) throw new Error(`the cost model cannot count ${coordinate}, a list of lists`);
      sizes.set(field, size);
      if ('ofParentArguments' in size) typesReadingParentArguments.add(type);
    }
  }
  const readArguments = new Set<GraphQLField<unknown, unknown>>();
  for (const type of objectTypes) {
    for (const field of Object.values(type.getFields())) {
      const named = getNamedType(field.type);
      const childTypes = isAbstractType(named) ? schema.getPossibleTypes(named) : isObjectType(named) ? [named] : [];
      const size = sizes.get(field);
      if ((size && 'ofArguments' in size) || childTypes.some((child) => typesReadingParentArguments.has(child))) {
        readArguments.add(field);
      }
    }
  }
  return { schema, sizes, readArguments };
}

export function createCostModel(schema: GraphQLSchema, catalog: Catalog): CostModel {
  const facts = schemaFacts(schema, catalog);
  // A count that read no variable holds for every request of the same document: most operations
  // (a submitTask, a task by id) are counted once per parsed document. An entry lives as long as
  // its document, and a document has one per operation name it names.
  const unvarying = new WeakMap<DocumentNode, Map<string | null, { limit: number; counted: OperationCost }>>();
  return {
    costOf(document, operationName, variables, limit) {
      const name = operationName ?? null;
      const known = unvarying.get(document)?.get(name);
      if (known && known.limit === limit) return { ...known.counted };
      const operation = getOperationAST(document, operationName);
      const rootType = operation && schema.getRootType(operation.operation);
      if (!operation || !rootType) return null;
      const counter = new Counter(facts, document, operation, variables, limit);
      const cost = counter.selection(rootType, [operation.selectionSet], 1, NO_ARGUMENTS);
      const counted = { cost, stoppedAtLimit: counter.stoppedAtLimit };
      if (!counter.readVariables) {
        let byName = unvarying.get(document);
        if (!byName) unvarying.set(document, (byName = new Map()));
        byName.set(name, { limit, counted: { ...counted } });
      }
      return counted;
    },
  };
}

const NO_ARGUMENTS: Arguments = Object.freeze({});

class Counter {
  stoppedAtLimit = false;
  /** Whether the count read a variable: otherwise it is the same for any variables. */
  readVariables = false;
  readonly #facts: SchemaFacts;
  readonly #limit: number;
  readonly #fragments = new Map<string, FragmentDefinitionNode>();
  /** Field collection depends on the runtime type and the selection sets only; lists repeat both. */
  readonly #collected = new Map<GraphQLObjectType, Map<readonly SelectionSetNode[], Map<string, FieldNode[]>>>();
  readonly #selectionsOf = new Map<readonly FieldNode[], SelectionSetNode[]>();
  // Variables are coerced as a count first reads them: most operations (a submitTask's $input)
  // have none that a cost depends on, and their coercion would be spent twice.
  readonly #variableDefinitions = new Map<string, VariableDefinitionNode>();
  readonly #rawVariables: Arguments;
  readonly #coerced: Arguments = {};
  readonly #coercedNames = new Set<string>();
  readonly #introspectionInfo: GraphQLResolveInfo;
  #introspected = 0;

  constructor(facts: SchemaFacts, document: DocumentNode, operation: OperationDefinitionNode, variables: unknown, limit: number) {
    this.#facts = facts;
    this.#limit = limit;
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) this.#fragments.set(definition.name.value, definition);
    }
    for (const definition of operation.variableDefinitions ?? []) {
      this.#variableDefinitions.set(definition.variable.name.value, definition);
    }
    this.#rawVariables = typeof variables === 'object' && variables !== null ? (variables as Arguments) : {};
    // graphql-js's introspection resolvers read nothing of their info but the schema.
    this.#introspectionInfo = { schema: facts.schema } as GraphQLResolveInfo;
  }

  /** Fields of the response under `selectionSets` for an object of `type`, times `multiplier` of them. */
  selection(type: GraphQLObjectType, selectionSets: readonly SelectionSetNode[], multiplier: number, parentArgs: Arguments): number {
    let cost = 0;
    for (const fieldNodes of this.#fields(type, selectionSets).values()) {
      cost += multiplier;
      const field = this.#fieldDefinition(type, fieldNodes[0]!.name.value);
      if (!field) continue;
      if (field === SchemaMetaFieldDef || field === TypeMetaFieldDef) {
        const args = this.#arguments(field, fieldNodes[0]!);
        if (args) cost += this.#introspection(field, undefined, args, fieldNodes);
        continue;
      }
      // A list of scalars is one field of the response, as a scalar is.
      const named = getNamedType(field.type);
      if (isLeafType(named)) continue;
      // Without its arguments the field resolves to an error, with nothing beneath it.
      const args = this.#facts.readArguments.has(field) ? this.#arguments(field, fieldNodes[0]!) : NO_ARGUMENTS;
      if (!args) continue;
      const size = this.#facts.sizes.get(field);
      const elements = size ? multiplier * this.#elements(size, args, parentArgs) : multiplier;
      if (elements === 0) continue;
      const subSelections = this.#subSelections(fieldNodes);
      // An abstract field's object is of one of its types: the costliest of them bounds it.
      let costliest = 0;
      for (const runtimeType of isAbstractType(named) ? this.#facts.schema.getPossibleTypes(named) : [named as GraphQLObjectType]) {
        costliest = Math.max(costliest, this.selection(runtimeType, subSelections, elements, args));
      }
      cost += costliest;
    }
    return cost;
  }

  #elements(size: ListSize, args: Arguments, parentArgs: Arguments): number {
    if ('fixed' in size) return size.fixed;
    if ('ofArguments' in size) return size.ofArguments(args);
    return size.ofParentArguments(parentArgs);
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
        if (++this.#introspected > this.#limit) {
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
    if (type === this.#facts.schema.getQueryType()) {
      if (name === SchemaMetaFieldDef.name) return SchemaMetaFieldDef;
      if (name === TypeMetaFieldDef.name) return TypeMetaFieldDef;
    }
    return type.getFields()[name];
  }

  #arguments(field: GraphQLField<unknown, unknown>, node: FieldNode): Arguments | null {
    if (!this.#coerceVariablesOf(node.arguments)) return null;
    try {
      return getArgumentValues(field, node, this.#coerced);
    } catch {
      return null;
    }
  }

  /** Coerces the variables that `args` read and that are not coerced yet; false when one does not coerce. */
  #coerceVariablesOf(args: readonly ArgumentNode[] | undefined): boolean {
    const pending: VariableDefinitionNode[] = [];
    for (const argument of args ?? []) this.#pendingVariables(argument.value, pending);
    if (pending.length === 0) return true;
    const coerced = getVariableValues(this.#facts.schema, pending, this.#rawVariables, { maxErrors: 1 });
    if (coerced.errors) return false;
    Object.assign(this.#coerced, coerced.coerced);
    return true;
  }

  #pendingVariables(value: ValueNode, pending: VariableDefinitionNode[]): void {
    switch (value.kind) {
      case Kind.VARIABLE: {
        this.readVariables = true;
        const definition = this.#variableDefinitions.get(value.name.value);
        if (definition && !this.#coercedNames.has(value.name.value)) {
          this.#coercedNames.add(value.name.value);
          pending.push(definition);
        }
        return;
      }
      case Kind.LIST:
        for (const item of value.values) this.#pendingVariables(item, pending);
        return;
      case Kind.OBJECT:
        for (const field of value.fields) this.#pendingVariables(field.value, pending);
        return;
      default:
        return;
    }
  }

  /** The fields of the response for an object of `type`, by response name, as graphql-js collects them. */
  #fields(type: GraphQLObjectType, selectionSets: readonly SelectionSetNode[]): Map<string, FieldNode[]> {
    let byType = this.#collected.get(type);
    if (!byType) this.#collected.set(type, (byType = new Map()));
    let fields = byType.get(selectionSets);
    if (!fields) {
      fields = new Map();
      const readFragments = new Set<string>();
      for (const selectionSet of selectionSets) this.#collect(type, selectionSet, fields, readFragments);
      byType.set(selectionSets, fields);
    }
    return fields;
  }

  #collect(type: GraphQLObjectType, selectionSet: SelectionSetNode, fields: Map<string, FieldNode[]>, readFragments: Set<string>): void {
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
          if (this.#applies(selection.typeCondition?.name.value, type)) this.#collect(type, selection.selectionSet, fields, readFragments);
          break;
        case Kind.FRAGMENT_SPREAD: {
          const fragment = this.#fragments.get(selection.name.value);
          if (readFragments.has(selection.name.value) || !fragment) break;
          readFragments.add(selection.name.value);
          if (this.#applies(fragment.typeCondition.name.value, type)) this.#collect(type, fragment.selectionSet, fields, readFragments);
          break;
        }
      }
    }
  }

  #included(node: FieldNode | FragmentSpreadNode | InlineFragmentNode): boolean {
    if (!node.directives?.length) return true;
    // A variable that does not coerce fails the whole operation before anything runs.
    for (const directive of node.directives) if (!this.#coerceVariablesOf(directive.arguments)) return true;
    if (getDirectiveValues(GraphQLSkipDirective, node, this.#coerced)?.['if'] === true) return false;
    return getDirectiveValues(GraphQLIncludeDirective, node, this.#coerced)?.['if'] !== false;
  }

  #applies(typeCondition: string | undefined, type: GraphQLObjectType): boolean {
    if (typeCondition === undefined) return true;
    const conditionType = this.#facts.schema.getType(typeCondition);
    if (!conditionType) return false;
    if (conditionType === type) return true;
    return isAbstractType(conditionType) && this.#facts.schema.isSubType(conditionType, type);
  }
}
