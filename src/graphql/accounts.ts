import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import type { Account } from '../domain/types.js';
import { builder } from './builder.js';
import { requireActor } from './context.js';
import { pageRequest, toConnection } from './ids.js';

export const AccountRef = builder.objectRef<Account>('Account');

builder.node(AccountRef, {
  description: 'An account registered with a service, which tasks of actions that require one run against.',
  id: { resolve: (account) => account.id },
  fields: (t) => ({
    service: t.exposeString('service'),
    username: t.exposeString('username'),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
  }),
});

const AccountConnection = builder.connectionObject({ type: AccountRef, name: 'AccountConnection' }, { name: 'AccountEdge' });

const AccountInput = builder.inputType('AccountInput', {
  fields: (t) => ({
    service: t.string({ required: true }),
    username: t.string({ required: true }),
  }),
});

const RegisterAccountSuccess = builder.simpleObject('RegisterAccountSuccess', {
  fields: (t) => ({ account: t.field({ type: AccountRef }) }),
});

const DeregisterAccountSuccess = builder.simpleObject('DeregisterAccountSuccess', {
  fields: (t) => ({ account: t.field({ type: AccountRef }) }),
});

builder.queryField('accounts', (t) =>
  t.field({
    type: AccountConnection,
    description: "The organisation's registered accounts, optionally of one service.",
    args: {
      service: t.arg.string(),
      first: t.arg.int(),
      after: t.arg.string(),
    },
    resolve: async (_root, { service, ...page }, context) => {
      const request = pageRequest(page);
      return toConnection(await context.engine.listAccounts(requireActor(context), service ?? null, request), request);
    },
  }),
);

builder.mutationFields((t) => ({
  registerAccount: t.field({
    type: RegisterAccountSuccess,
    args: { input: t.arg({ type: AccountInput, required: true }) },
    errors: { types: [ValidationError, ConflictError], directResult: true, union: { name: 'RegisterAccountResult' } },
    resolve: async (_root, { input }, context) => ({
      account: await context.engine.registerAccount(requireActor(context), input),
    }),
  }),
  deregisterAccount: t.field({
    type: DeregisterAccountSuccess,
    args: { input: t.arg({ type: AccountInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError],
      directResult: true,
      union: { name: 'DeregisterAccountResult' },
    },
    resolve: async (_root, { input }, context) => ({
      account: await context.engine.deregisterAccount(requireActor(context), input),
    }),
  }),
}));
