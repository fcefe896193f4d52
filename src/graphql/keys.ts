import type { Viewer } from '../domain/api.js';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { RATE_LIMIT_BOUNDS, type EffectiveRateLimits, type RateLimitWindow } from '../domain/rate-limits.js';
import { RETRIEVAL_PROTOCOLS, ROLES, type Actor, type ApiKey } from '../domain/types.js';
import { builder, describedValues } from './builder.js';
import { requireActor, requireViewer } from './context.js';
import { decodeId } from './ids.js';

const RoleEnum = builder.enumType('Role', { values: ROLES });

export const RetrievalProtocolEnum = builder.enumType('RetrievalProtocol', {
  values: describedValues(RETRIEVAL_PROTOCOLS, {
    CHANNEL: 'Results are pushed to subscribers of taskEvents and consumed on delivery.',
    STORE: 'Results are kept until retrieved once with retrieveResults.',
  }),
});

export const ApiKeyRef = builder.objectRef<ApiKey>('ApiKey');

const RateLimitWindowRef = builder.simpleObject('RateLimitWindow', {
  description: 'At most `points` operations in each fixed window of `perSeconds` seconds.',
  fields: (t) => ({
    points: t.int(),
    perSeconds: t.int(),
  }),
});

const RateLimitTierRef = builder.objectRef<EffectiveRateLimits['submit']>('RateLimitTier').implement({
  description: 'The windows of one tier; an operation runs only when every window admits it.',
  fields: (t) => ({
    windows: t.field({ type: [RateLimitWindowRef], resolve: (tier) => tier.windows as RateLimitWindow[] }),
    isDefault: t.exposeBoolean('isDefault', {
      description: "True: the server's default (TASKPORT_RATE_SUBMIT or TASKPORT_RATE_OTHER), not the key's own.",
    }),
  }),
});

const ApiKeyRateLimitsRef = builder.objectRef<EffectiveRateLimits>('ApiKeyRateLimits').implement({
  description:
    'The rate limits that hold for a key. Over a limit an operation fails with RATE_LIMITED and extensions.retryAfter (seconds); over HTTP with status 429 and Retry-After.',
  fields: (t) => ({
    submit: t.field({ type: RateLimitTierRef, description: 'Operations with submitTask or submitTasks.', resolve: (limits) => limits.submit }),
    other: t.field({ type: RateLimitTierRef, description: 'Every other operation.', resolve: (limits) => limits.other }),
  }),
});

const RateLimitWindowInput = builder.inputType('RateLimitWindowInput', {
  fields: (t) => ({
    points: t.int({ required: true, description: `1 to ${RATE_LIMIT_BOUNDS.points}.` }),
    perSeconds: t.int({ required: true, description: `1 to ${RATE_LIMIT_BOUNDS.perSeconds} (a day).` }),
  }),
});

const RateLimitsInput = builder.inputType('RateLimitsInput', {
  description: `A key's own limits, e.g. { submit: [{ points: 5, perSeconds: 1 }, { points: 50, perSeconds: 60 }] }: up to ${RATE_LIMIT_BOUNDS.windows} windows per tier, each with its own perSeconds. A tier omitted or null takes the server's default.`,
  fields: (t) => ({
    submit: t.field({ type: [RateLimitWindowInput] }),
    other: t.field({ type: [RateLimitWindowInput] }),
  }),
});

/**
 * Whether the actor may read the key's record beyond its id and name. apiKeys is ADMIN-only, and
 * no other path (node, Task.key) may show a MEMBER more of another key than who submitted a task.
 */
export function maySeeKeyDetails(actor: Actor | null, key: ApiKey): boolean {
  if (actor === null || actor.organisationId !== key.organisationId) return false;
  return actor.role === 'ADMIN' || actor.keyId === key.id;
}

builder.node(ApiKeyRef, {
  description:
    'An API key. ADMIN keys see every key of their organisation and a key sees itself; of any other key (as Task.key) a MEMBER key sees only id and name, and its other fields are FORBIDDEN.',
  authScopes: (key, context) => maySeeKeyDetails(context.actor, key),
  id: { resolve: (key) => key.id, skipTypeScopes: true },
  fields: (t) => ({
    name: t.exposeString('name', { skipTypeScopes: true }),
    role: t.expose('role', { type: RoleEnum }),
    permissions: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'What the key may run: per service "*" or, per action, the values it may request of permissioned parameters. Null: the whole catalog.',
      resolve: (key) => key.permissions,
    }),
    rateLimits: t.field({
      type: ApiKeyRateLimitsRef,
      description: 'The limits that hold for this key: its own, or the server defaults (see isDefault).',
      resolve: (key, _args, context) => context.engine.rateLimitsOf(key),
    }),
    revoked: t.exposeBoolean('revoked'),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
  }),
});

const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The API key making the request and its organisation.',
  fields: (t) => ({
    key: t.field({ type: ApiKeyRef, resolve: (viewer) => viewer.key }),
    organisation: t.string({ resolve: (viewer) => viewer.organisation.name }),
    retrievalProtocol: t.field({
      type: RetrievalProtocolEnum,
      description: 'How results of tasks submitted from now on are delivered.',
      resolve: (viewer) => viewer.organisation.retrievalProtocol,
    }),
    weight: t.int({
      description:
        "The organisation's share of each queue against the other organisations waiting there: weight 3 takes three turns to weight 1's one. Set by the operator (taskport org set).",
      resolve: (viewer) => viewer.organisation.weight,
    }),
    maxConcurrency: t.int({
      nullable: true,
      description: 'The most of its tasks that run at once over every queue and worker; null for no cap. Set by the operator.',
      resolve: (viewer) => viewer.organisation.maxConcurrency,
    }),
  }),
});

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    role: t.field({ type: RoleEnum, required: true }),
    permissions: t.field({
      type: 'JSON',
      description:
        'Narrows what the key may run, e.g. { "demo": { "echo": {}, "fetch-data": { "data": ["sms"] } } } or { "demo": "*" }, within what the creating key may run (PERMISSIONS_EXCEEDED otherwise). Omitted or null: the creating key’s own permissions.',
    }),
    rateLimits: t.field({ type: RateLimitsInput, description: "The key's own rate limits; omitted or null: the server's defaults." }),
  }),
});

const UpdateApiKeyInput = builder.inputType('UpdateApiKeyInput', {
  description: 'What to change; an omitted field stays as it is.',
  fields: (t) => ({
    name: t.string(),
    rateLimits: t.field({
      type: RateLimitsInput,
      description:
        "Replaces the key's own limits (a tier left out takes the default); null goes back to the server's defaults. Every process applies them from the key's next operation.",
    }),
  }),
});

const UpdateApiKeySuccess = builder.simpleObject('UpdateApiKeySuccess', {
  fields: (t) => ({ apiKey: t.field({ type: ApiKeyRef }) }),
});

const CreateApiKeySuccess = builder.simpleObject('CreateApiKeySuccess', {
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef }),
    token: t.string({ description: 'Shown once; only a hash is stored.' }),
  }),
});

const RevokeApiKeySuccess = builder.simpleObject('RevokeApiKeySuccess', {
  fields: (t) => ({ apiKey: t.field({ type: ApiKeyRef }) }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    type: ViewerRef,
    resolve: (_root, _args, context) => requireViewer(context),
  }),
  apiKeys: t.field({
    type: [ApiKeyRef],
    description: "The organisation's keys. ADMIN only.",
    authScopes: { admin: true },
    resolve: (_root, _args, context) => context.engine.listApiKeys(requireActor(context)),
  }),
}));

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreateApiKeySuccess,
    description: 'A new key in the same organisation. ADMIN only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    errors: { types: [ValidationError], directResult: true, union: { name: 'CreateApiKeyResult' } },
    resolve: (_root, { input }, context) => context.engine.createApiKey(requireActor(context), input),
  }),
  revokeApiKey: t.field({
    type: RevokeApiKeySuccess,
    description: 'The key stops working at once, its open subscriptions included. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'RevokeApiKeyResult' } },
    resolve: async (_root, { id }, context) => {
      const keyId = decodeId(String(id), 'ApiKey');
      if (keyId === null) throw new NotFoundError(`No API key ${id}`);
      return { apiKey: await context.engine.revokeApiKey(requireActor(context), keyId) };
    },
  }),
  updateApiKey: t.field({
    type: UpdateApiKeySuccess,
    description: "Renames a key of the organisation or sets its own rate limits. ADMIN only.",
    authScopes: { admin: true },
    args: {
      id: t.arg.id({ required: true }),
      input: t.arg({ type: UpdateApiKeyInput, required: true }),
    },
    errors: { types: [NotFoundError, ValidationError], directResult: true, union: { name: 'UpdateApiKeyResult' } },
    resolve: async (_root, { id, input }, context) => {
      const keyId = decodeId(String(id), 'ApiKey');
      if (keyId === null) throw new NotFoundError(`No API key ${id}`);
      return { apiKey: await context.engine.updateApiKey(requireActor(context), keyId, input) };
    },
  }),
  setRetrievalProtocol: t.field({
    type: ViewerRef,
    description: 'How results of tasks submitted from now on are delivered. ADMIN only.',
    authScopes: { admin: true },
    args: { protocol: t.arg({ type: RetrievalProtocolEnum, required: true }) },
    resolve: async (_root, { protocol }, context) => {
      const viewer = requireViewer(context);
      const actor = requireActor(context);
      const organisation = await context.engine.setRetrievalProtocol(actor, protocol);
      // A submission later in the same operation takes the protocol just set, as it would from a new read.
      context.actor = { ...actor, organisation };
      return { key: viewer.key, organisation };
    },
  }),
}));
