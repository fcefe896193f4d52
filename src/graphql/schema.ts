import { brandWithType, type OutputType } from '@pothos/core';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.js';
import { requireActor, type GraphQLContext } from './context.js';
import './errors.js';
import { AccountRef } from './accounts.js';
import './aggregates.js';
import { AllocationRef } from './allocations.js';
import './bulk.js';
import './catalog.js';
import { decodeAnyId, type NodeTypename } from './ids.js';
import { ApiKeyRef, maySeeKeyDetails } from './keys.js';
import { loadScheduleNode, ScheduleRef } from './schedules.js';
import './subscriptions.js';
import './workers.js';
import { TaskRef, TaskResultRef } from './tasks.js';
import { WebhookDeliveryRef, WebhookEndpointRef } from './webhooks.js';

type SchemaTypes = typeof builder.$inferSchemaTypes;

type NodeType = {
  [Typename in NodeTypename]: {
    ref: OutputType<SchemaTypes>;
    load(context: GraphQLContext, id: number): Promise<object | null>;
  };
};

const NODE_TYPES: NodeType = {
  Task: { ref: TaskRef, load: (context, id) => context.loaders.tasks.load(id) },
  TaskResult: { ref: TaskResultRef, load: (context, id) => context.loaders.results.load(id) },
  Account: { ref: AccountRef, load: (context, id) => context.loaders.accounts.load(id) },
  ApiKey: {
    ref: ApiKeyRef,
    load: async (context, id) => {
      const key = await context.loaders.apiKeys.load(id);
      return key && maySeeKeyDetails(context.actor, key) ? key : null;
    },
  },
  Allocation: { ref: AllocationRef, load: (context, id) => context.loaders.allocations.load(id) },
  WebhookEndpoint: {
    ref: WebhookEndpointRef,
    load: async (context, id) => {
      const actor = requireActor(context);
      if (actor.role !== 'ADMIN') return null;
      const [endpoint] = await context.engine.webhooks.getEndpoints(actor, [id]);
      return endpoint ?? null;
    },
  },
  WebhookDelivery: {
    ref: WebhookDeliveryRef,
    load: async (context, id) => (await context.engine.webhooks.getDeliveries(requireActor(context), [id]))[0] ?? null,
  },
  Schedule: { ref: ScheduleRef, load: loadScheduleNode },
};

function isNodeTypename(typename: string): typename is NodeTypename {
  return Object.hasOwn(NODE_TYPES, typename);
}

builder.queryField('node', (t) =>
  t.field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    description:
      'Any object by its global id; null for malformed, unknown and other organisations’ ids, and for keys other than itself to a MEMBER key.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, context) => {
      const decoded = decodeAnyId(String(id));
      if (!decoded || !isNodeTypename(decoded.typename)) return null;
      const nodeType = NODE_TYPES[decoded.typename];
      const node = await nodeType.load(context, decoded.id);
      // The Node interface resolves a loaded object's type from this brand.
      if (node) brandWithType<SchemaTypes>(node, nodeType.ref);
      return node;
    },
  }),
);

export const schema = builder.toSchema();

export function printSchemaText(): string {
  return printSchema(lexicographicSortSchema(schema));
}
