// Webhooks: endpoints, signing secrets and deliveries, and the webhook of a submission.
import { ConflictError, LimitExceededError, NotFoundError, ValidationError } from '../domain/errors.js';
import {
  WEBHOOK_ATTEMPT_OUTCOMES,
  WEBHOOK_DISABLED_REASONS,
  WEBHOOK_LIMITS,
  type TaskWebhook,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '../domain/webhooks.js';
import { builder, describedValues } from './builder.js';
import { requireActor } from './context.js';
import { decodeId, pageRequest, toConnection } from './ids.js';
import { TaskRef } from './tasks.js';
import { WebhookEventEnum } from './webhook-inputs.js';

const WebhookAttemptOutcomeEnum = builder.enumType('WebhookAttemptOutcome', {
  values: describedValues(WEBHOOK_ATTEMPT_OUTCOMES, {
    SUCCEEDED: 'The receiver answered 2xx.',
    FAILED: 'An error, a timeout, or an answer other than 2xx.',
    REFUSED:
      'Never sent: the URL resolved to a private address, redirected to another origin, or its endpoint was disabled.',
  }),
});

const WebhookDisabledReasonEnum = builder.enumType('WebhookDisabledReason', {
  values: describedValues(WEBHOOK_DISABLED_REASONS, {
    GONE: 'The receiver answered 410 Gone.',
    FAILING: 'Every delivery to it failed for 5 days.',
  }),
});

const TaskWebhookRef = builder.objectRef<TaskWebhook>('TaskWebhook').implement({
  description: "The task's own webhook, from its submission.",
  fields: (t) => ({
    url: t.exposeString('url'),
    events: t.field({ type: [WebhookEventEnum], resolve: (webhook) => webhook.events }),
  }),
});

export const WebhookEndpointRef = builder.objectRef<WebhookEndpoint>('WebhookEndpoint');
export const WebhookDeliveryRef = builder.objectRef<WebhookDelivery>('WebhookDelivery');

const WebhookDeliveryConnection = builder.connectionObject(
  { type: WebhookDeliveryRef, name: 'WebhookDeliveryConnection' },
  { name: 'WebhookDeliveryEdge' },
);

const WebhookEndpointConnection = builder.connectionObject(
  { type: WebhookEndpointRef, name: 'WebhookEndpointConnection' },
  { name: 'WebhookEndpointEdge' },
);

builder.node(WebhookEndpointRef, {
  description:
    "A URL told of the events of every task of the organisation, signed with the endpoint's own secret. ADMIN only.",
  id: { resolve: (endpoint) => endpoint.id },
  fields: (t) => ({
    url: t.exposeString('url'),
    description: t.exposeString('description', { nullable: true }),
    events: t.field({ type: [WebhookEventEnum], resolve: (endpoint) => endpoint.events }),
    enabled: t.exposeBoolean('enabled', {
      description: 'A disabled endpoint is sent nothing; updateWebhookEndpoint with enabled: true turns it back on.',
    }),
    disabledReason: t.field({
      type: WebhookDisabledReasonEnum,
      nullable: true,
      description: 'Why the server disabled it; null while enabled, or when an ADMIN disabled it.',
      resolve: (endpoint) => endpoint.disabledReason,
    }),
    failingSince: t.expose('failingSince', {
      type: 'DateTime',
      nullable: true,
      description: 'Since when every delivery to it failed; null while it delivers.',
    }),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
    deliveries: t.field({
      type: WebhookDeliveryConnection,
      description: 'Every attempt to deliver to it, newest first.',
      args: { first: t.arg.int(), after: t.arg.string() },
      resolve: async (endpoint, page, context) => {
        const request = pageRequest(page);
        return toConnection(
          await context.engine.webhooks.endpointDeliveries(requireActor(context), endpoint.id, request),
          request,
        );
      },
    }),
  }),
});

builder.node(WebhookDeliveryRef, {
  description: 'One attempt to deliver one message to a webhook.',
  id: { resolve: (delivery) => delivery.id },
  fields: (t) => ({
    webhookId: t.exposeString('messageId', {
      description: 'The webhook-id header: the same over every attempt of a message and its redeliveries, the idempotency key of a receiver.',
    }),
    event: t.expose('event', { type: WebhookEventEnum }),
    url: t.exposeString('url'),
    endpoint: t.field({
      type: WebhookEndpointRef,
      nullable: true,
      description: "Null for the task's own webhook, for a deleted endpoint, and for keys that are not ADMIN.",
      resolve: async (delivery, _args, context) => {
        const actor = requireActor(context);
        if (delivery.endpointId === null || actor.role !== 'ADMIN') return null;
        const [endpoint] = await context.engine.webhooks.getEndpoints(actor, [delivery.endpointId]);
        return endpoint ?? null;
      },
    }),
    task: t.field({
      type: TaskRef,
      nullable: true,
      resolve: (delivery, _args, context) => context.loaders.tasks.load(delivery.taskId),
    }),
    attempt: t.exposeInt('attempt', { description: 'Counted from 1 over every attempt of the message, redeliveries included.' }),
    outcome: t.expose('outcome', { type: WebhookAttemptOutcomeEnum }),
    httpStatus: t.exposeInt('httpStatus', { nullable: true, description: 'Null when no answer came.' }),
    durationMs: t.exposeInt('durationMs'),
    error: t.exposeString('error', { nullable: true }),
    nextAttemptAt: t.expose('nextAttemptAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the message is tried again; null when this attempt was its last.',
    }),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
  }),
});

builder.objectFields(TaskRef, (t) => ({
  webhook: t.field({
    type: TaskWebhookRef,
    nullable: true,
    description: 'The webhook named at submission.',
    resolve: (task) => task.webhook,
  }),
  webhookDeliveries: t.field({
    type: WebhookDeliveryConnection,
    description: "Every attempt to deliver the task's messages, to its own webhook and to the organisation's endpoints, newest first.",
    args: { first: t.arg.int(), after: t.arg.string() },
    resolve: async (task, page, context) => {
      const request = pageRequest(page);
      return toConnection(await context.engine.webhooks.taskDeliveries(requireActor(context), task.id, request), request);
    },
  }),
}));

const CreateWebhookEndpointInput = builder.inputType('CreateWebhookEndpointInput', {
  fields: (t) => ({
    url: t.string({ required: true, description: `An http or https URL of at most ${WEBHOOK_LIMITS.urlLength} characters.` }),
    events: t.field({ type: [WebhookEventEnum], description: 'COMPLETED by default.' }),
    description: t.string({ description: `At most ${WEBHOOK_LIMITS.descriptionLength} characters.` }),
  }),
});

const UpdateWebhookEndpointInput = builder.inputType('UpdateWebhookEndpointInput', {
  description: 'Fields left out stay as they are; description: null clears it.',
  fields: (t) => ({
    url: t.string(),
    events: t.field({ type: [WebhookEventEnum] }),
    description: t.string(),
    enabled: t.boolean({ description: 'True turns a disabled endpoint back on, forgetting why it was disabled.' }),
  }),
});

const CreateWebhookEndpointSuccess = builder.simpleObject('CreateWebhookEndpointSuccess', {
  fields: (t) => ({
    endpoint: t.field({ type: WebhookEndpointRef }),
    secret: t.string({ description: 'Its signing secret (whsec_…), shown this once; rotateWebhookSecret makes a new one.' }),
  }),
});

const RotateWebhookSecretSuccess = builder.simpleObject('RotateWebhookSecretSuccess', {
  fields: (t) => ({
    endpoint: t.field({ type: WebhookEndpointRef }),
    secret: t.string({
      description: `The new signing secret, shown this once; the one it replaces signs beside it for ${WEBHOOK_LIMITS.previousSecretMs / 3_600_000} hours.`,
    }),
  }),
});

const UpdateWebhookEndpointSuccess = builder.simpleObject('UpdateWebhookEndpointSuccess', {
  fields: (t) => ({ endpoint: t.field({ type: WebhookEndpointRef }) }),
});

const DeleteWebhookEndpointSuccess = builder.simpleObject('DeleteWebhookEndpointSuccess', {
  fields: (t) => ({ endpoint: t.field({ type: WebhookEndpointRef }) }),
});

const RotateWebhookSigningSecretSuccess = builder.simpleObject('RotateWebhookSigningSecretSuccess', {
  fields: (t) => ({
    secret: t.string({
      description: `The organisation's new signing secret; the one it replaces signs beside it for ${WEBHOOK_LIMITS.previousSecretMs / 3_600_000} hours.`,
    }),
  }),
});

const RedeliverWebhookSuccess = builder.simpleObject('RedeliverWebhookSuccess', {
  fields: (t) => ({
    delivery: t.field({ type: WebhookDeliveryRef, description: 'The delivery asked for; the new attempt is recorded as a delivery of its own.' }),
  }),
});

function endpointIdOf(id: string | number): number {
  const endpointId = decodeId(String(id), 'WebhookEndpoint');
  if (endpointId === null) throw new NotFoundError(`no webhook endpoint ${id}`);
  return endpointId;
}

builder.queryFields((t) => ({
  webhookEndpoints: t.field({
    type: WebhookEndpointConnection,
    description: "The organisation's webhook endpoints, oldest first. ADMIN only.",
    authScopes: { admin: true },
    args: { first: t.arg.int(), after: t.arg.string() },
    resolve: async (_root, page, context) => {
      const request = pageRequest(page);
      return toConnection(await context.engine.webhooks.listEndpoints(requireActor(context), request), request);
    },
  }),
  webhookEndpoint: t.field({
    type: WebhookEndpointRef,
    nullable: true,
    description: "Null for malformed, unknown, deleted and other organisations' ids. ADMIN only.",
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, context) => {
      const endpointId = decodeId(String(id), 'WebhookEndpoint');
      if (endpointId === null) return null;
      const [endpoint] = await context.engine.webhooks.getEndpoints(requireActor(context), [endpointId]);
      return endpoint ?? null;
    },
  }),
  webhookSigningSecret: t.string({
    description:
      "The organisation's signing secret (whsec_…), which signs the webhooks named at submission; created at first read. ADMIN only.",
    authScopes: { admin: true },
    resolve: (_root, _args, context) => context.engine.webhooks.signingSecret(requireActor(context)),
  }),
}));

builder.mutationFields((t) => ({
  createWebhookEndpoint: t.field({
    type: CreateWebhookEndpointSuccess,
    description: `A URL told of the events of every task of the organisation; at most ${WEBHOOK_LIMITS.endpointsPerOrganisation} per organisation. ADMIN only.`,
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateWebhookEndpointInput, required: true }) },
    errors: {
      types: [ValidationError, LimitExceededError],
      directResult: true,
      union: { name: 'CreateWebhookEndpointResult' },
    },
    resolve: (_root, { input }, context) => context.engine.webhooks.createEndpoint(requireActor(context), input),
  }),
  updateWebhookEndpoint: t.field({
    type: UpdateWebhookEndpointSuccess,
    description: 'ADMIN only.',
    authScopes: { admin: true },
    args: {
      id: t.arg.id({ required: true }),
      input: t.arg({ type: UpdateWebhookEndpointInput, required: true }),
    },
    errors: {
      types: [ValidationError, NotFoundError],
      directResult: true,
      union: { name: 'UpdateWebhookEndpointResult' },
    },
    resolve: async (_root, { id, input }, context) => ({
      endpoint: await context.engine.webhooks.updateEndpoint(requireActor(context), endpointIdOf(id), input),
    }),
  }),
  deleteWebhookEndpoint: t.field({
    type: DeleteWebhookEndpointSuccess,
    description: 'Nothing more is sent to it: its messages still waiting fail. Its deliveries stay readable on their tasks. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'DeleteWebhookEndpointResult' } },
    resolve: async (_root, { id }, context) => ({
      endpoint: await context.engine.webhooks.deleteEndpoint(requireActor(context), endpointIdOf(id)),
    }),
  }),
  rotateWebhookSecret: t.field({
    type: RotateWebhookSecretSuccess,
    description: "A new signing secret for the endpoint; messages are signed with both for a day, so that its receiver can switch. ADMIN only.",
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'RotateWebhookSecretResult' } },
    resolve: (_root, { id }, context) =>
      context.engine.webhooks.rotateEndpointSecret(requireActor(context), endpointIdOf(id)),
  }),
  rotateWebhookSigningSecret: t.field({
    type: RotateWebhookSigningSecretSuccess,
    description: "A new signing secret for the organisation's own webhooks; messages are signed with both for a day. ADMIN only.",
    authScopes: { admin: true },
    resolve: async (_root, _args, context) => ({
      secret: await context.engine.webhooks.rotateSigningSecret(requireActor(context)),
    }),
  }),
  redeliverWebhook: t.field({
    type: RedeliverWebhookSuccess,
    description:
      "Sends the delivery's message again, with the same webhook-id, as soon as a deliverer is free; a NOT_RETRYABLE ConflictError while it is still waiting to be sent, or when its endpoint is disabled or was deleted. ADMIN only.",
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true, description: 'A WebhookDelivery id.' }) },
    errors: {
      types: [NotFoundError, ConflictError],
      directResult: true,
      union: { name: 'RedeliverWebhookResult' },
    },
    resolve: async (_root, { id }, context) => {
      const deliveryId = decodeId(String(id), 'WebhookDelivery');
      if (deliveryId === null) throw new NotFoundError(`no webhook delivery ${id}`);
      return { delivery: await context.engine.webhooks.redeliver(requireActor(context), deliveryId) };
    },
  }),
}));
