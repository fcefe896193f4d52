import { MAX_INSTANCES, MAX_TOKEN_TTL_SECONDS } from '../domain/realtime.js';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import type { AllocationStatus } from '../domain/realtime.js';
import { builder } from './builder.js';
import { requireActor } from './context.js';
import { decodeId, encodeId } from './ids.js';

export const AllocationRef = builder.objectRef<AllocationStatus>('Allocation');

builder.node(AllocationRef, {
  description: 'Capacity reserved for one REALTIME action: warm instances that execution URLs run calls on.',
  id: { resolve: (allocation) => allocation.id },
  fields: (t) => ({
    name: t.exposeString('name'),
    service: t.exposeString('service'),
    action: t.exposeString('action'),
    instances: t.exposeInt('instances', { description: 'Concurrent executions reserved for this allocation.' }),
    timeoutMs: t.exposeInt('timeoutMs', { description: 'Time limit of one call; past it the answer is a 504.' }),
    busy: t.exposeInt('busy', { description: 'Instances running a call now.' }),
    executions: t.exposeInt('executions', { description: 'Calls answered so far.' }),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
  }),
});

const ExecutionUrlRef = builder.simpleObject('ExecutionUrl', {
  description: 'POST to url with "Authorization: Bearer <token>" and a JSON body of params.',
  fields: (t) => ({
    url: t.string(),
    token: t.string({ description: 'Shown once; only a hash is stored.' }),
    tokenId: t.id({ description: 'Names the token to revokeExecutionToken.' }),
    expiresAt: t.field({ type: 'DateTime' }),
  }),
});

const CreateAllocationInput = builder.inputType('CreateAllocationInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    service: t.string({ required: true }),
    action: t.string({ required: true, description: 'An action whose execution includes REALTIME.' }),
    instances: t.int({ required: true, description: `Concurrent executions to reserve, 1 to ${MAX_INSTANCES}.` }),
    timeoutMs: t.int({ description: 'Time limit of one call; 30,000 by default.' }),
  }),
});

const CreateAllocationSuccess = builder.simpleObject('CreateAllocationSuccess', {
  fields: (t) => ({ allocation: t.field({ type: AllocationRef }) }),
});

const DeleteAllocationSuccess = builder.simpleObject('DeleteAllocationSuccess', {
  fields: (t) => ({ allocation: t.field({ type: AllocationRef }) }),
});

const GenerateExecutionUrlSuccess = builder.simpleObject('GenerateExecutionUrlSuccess', {
  fields: (t) => ({ executionUrl: t.field({ type: ExecutionUrlRef }) }),
});

const RevokeExecutionTokenSuccess = builder.simpleObject('RevokeExecutionTokenSuccess', {
  fields: (t) => ({
    tokenId: t.id(),
    allocation: t.field({ type: AllocationRef, nullable: true, description: 'Null once deleted.' }),
  }),
});

builder.queryField('allocations', (t) =>
  t.field({
    type: [AllocationRef],
    description: "The organisation's allocations. ADMIN only.",
    authScopes: { admin: true },
    resolve: (_root, _args, context) => context.engine.listAllocations(requireActor(context)),
  }),
);

function allocationIdOf(id: string | number): number {
  const allocationId = decodeId(String(id), 'Allocation');
  if (allocationId === null) throw new NotFoundError(`no allocation ${id}`);
  return allocationId;
}

builder.mutationFields((t) => ({
  createAllocation: t.field({
    type: CreateAllocationSuccess,
    description: 'Reserves warm instances of a REALTIME action. ADMIN only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateAllocationInput, required: true }) },
    errors: { types: [ValidationError], directResult: true, union: { name: 'CreateAllocationResult' } },
    resolve: async (_root, { input }, context) => {
      const actor = requireActor(context);
      const allocation = await context.engine.createAllocation(actor, input);
      const [status] = await context.engine.getAllocations(actor, [allocation.id]);
      return { allocation: status! };
    },
  }),
  deleteAllocation: t.field({
    type: DeleteAllocationSuccess,
    description: 'Its execution URLs stop working at once. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'DeleteAllocationResult' } },
    resolve: async (_root, { id }, context) => {
      const allocation = await context.engine.deleteAllocation(requireActor(context), allocationIdOf(id));
      return { allocation: { ...allocation, busy: 0 } };
    },
  }),
  generateExecutionUrl: t.field({
    type: GenerateExecutionUrlSuccess,
    description: `An execution URL and its token, valid for ttlSeconds (3,600 by default, at most ${MAX_TOKEN_TTL_SECONDS}). ADMIN only.`,
    authScopes: { admin: true },
    args: { allocationId: t.arg.id({ required: true }), ttlSeconds: t.arg.int() },
    errors: {
      types: [NotFoundError, ValidationError],
      directResult: true,
      union: { name: 'GenerateExecutionUrlResult' },
    },
    resolve: async (_root, { allocationId, ttlSeconds }, context) => {
      const id = allocationIdOf(allocationId);
      const { token, executionToken } = await context.engine.generateExecutionToken(
        requireActor(context),
        id,
        ttlSeconds ?? null,
      );
      const path = `/execute/${encodeURIComponent(encodeId('Allocation', id))}`;
      return {
        executionUrl: {
          url: context.origin + path,
          token,
          tokenId: encodeId('ExecutionToken', executionToken.id),
          expiresAt: executionToken.expiresAt,
        },
      };
    },
  }),
  revokeExecutionToken: t.field({
    type: RevokeExecutionTokenSuccess,
    description: 'The token stops opening its execution URL at once. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true, description: 'The tokenId generateExecutionUrl returned.' }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'RevokeExecutionTokenResult' } },
    resolve: async (_root, { id }, context) => {
      const tokenId = decodeId(String(id), 'ExecutionToken');
      if (tokenId === null) throw new NotFoundError(`no execution token ${id}`);
      const revoked = await context.engine.revokeExecutionToken(requireActor(context), tokenId);
      return {
        tokenId: encodeId('ExecutionToken', revoked.id),
        allocation: await context.loaders.allocations.load(revoked.allocationId),
      };
    },
  }),
}));
