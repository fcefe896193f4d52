import { EXECUTION_MODES, PARAMETER_TYPES, type ActionDefinition, type ParameterDefinition, type ServiceDefinition } from '../catalog/index.js';
import { builder } from './builder.js';

export const ExecutionEnum = builder.enumType('Execution', { values: EXECUTION_MODES });

const ParameterTypeEnum = builder.enumType('ParameterType', { values: PARAMETER_TYPES });

const ParameterRef = builder.objectRef<ParameterDefinition>('Parameter').implement({
  fields: (t) => ({
    slug: t.exposeString('slug'),
    name: t.exposeString('name'),
    type: t.expose('type', { type: ParameterTypeEnum }),
    optional: t.boolean({ resolve: (parameter) => parameter.optional ?? false }),
    description: t.exposeString('description', { nullable: true }),
    allowedValues: t.stringList({
      nullable: true,
      description: 'For LIST and enumerated STRING parameters: the values accepted.',
      resolve: (parameter) => parameter.allowedValues ?? null,
    }),
  }),
});

/** An action as listed under its service: the service slug keys the key's permissions. */
interface ListedAction {
  service: string;
  action: ActionDefinition;
}

const ActionRef = builder.objectRef<ListedAction>('Action').implement({
  fields: (t) => ({
    slug: t.string({ resolve: ({ action }) => action.slug }),
    name: t.string({ resolve: ({ action }) => action.name }),
    description: t.string({ nullable: true, resolve: ({ action }) => action.description ?? null }),
    execution: t.field({ type: [ExecutionEnum], resolve: ({ action }) => action.execution }),
    requiresAccount: t.boolean({ resolve: ({ action }) => action.requiresAccount ?? false }),
    parameters: t.field({ type: [ParameterRef], resolve: ({ action }) => action.parameters }),
    permissions: t.field({
      type: 'JSON',
      description: 'The values this key may request, keyed by parameter slug, e.g. { "data": ["sms"] }.',
      resolve: ({ service, action }, _args, context) =>
        context.engine.catalog.permissions(service, action, context.actor?.permissions ?? null),
    }),
  }),
});

const ServiceRef = builder.objectRef<ServiceDefinition>('Service').implement({
  fields: (t) => ({
    slug: t.exposeString('slug'),
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    actions: t.field({
      type: [ActionRef],
      description: 'Only those this key may use.',
      resolve: (service, _args, context) =>
        context.engine.catalog
          .actions(service, context.actor?.permissions ?? null)
          .map((action) => ({ service: service.slug, action })),
    }),
  }),
});

builder.queryField('services', (t) =>
  t.field({
    type: [ServiceRef],
    description: 'The services this key may use.',
    resolve: (_root, _args, context) => context.engine.catalog.services(context.actor?.permissions ?? null),
  }),
);
