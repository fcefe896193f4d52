import { describe, expect, expectTypeOf, it } from 'vitest';
import { Catalog, defineAction, defineService, type ParameterDefinition, type ParamsOf } from '../src/catalog/index.js';

// `npm run typecheck` is this file's real test: every `@ts-expect-error` below must stay an error,
// and every expectTypeOf must keep its type. At run time it only checks that the actions load.

const KINDS = ['sms', 'calls'] as const;

const payment = defineAction({
  slug: 'pay',
  name: 'Pay',
  execution: ['ASYNCHRONOUS'],
  parameters: [
    { slug: 'amount', name: 'Amount', type: 'NUMBER', min: 0 },
    { slug: 'count', name: 'Count', type: 'INTEGER' },
    { slug: 'currency', name: 'Currency', type: 'STRING', allowedValues: ['EUR', 'USD'] },
    { slug: 'note', name: 'Note', type: 'STRING', optional: true },
    { slug: 'retries', name: 'Retries', type: 'INTEGER', optional: true, default: 3 },
    { slug: 'express', name: 'Express', type: 'BOOLEAN' },
    { slug: 'day', name: 'Day', type: 'DATE' },
    { slug: 'at', name: 'At', type: 'DATETIME', optional: true },
    { slug: 'tags', name: 'Tags', type: 'LIST' },
    { slug: 'kinds', name: 'Kinds', type: 'LIST', allowedValues: KINDS },
    { slug: 'extra', name: 'Extra', type: 'JSON', optional: false },
  ],
  handler: ({ params }) => {
    expectTypeOf(params).toEqualTypeOf<{
      amount: number;
      count: number;
      currency: 'EUR' | 'USD';
      note?: string | undefined;
      retries: number;
      express: boolean;
      day: string;
      at?: string | undefined;
      tags: string[];
      kinds: ('sms' | 'calls')[];
      extra: unknown;
    }>();
    const total = params.amount * params.count + params.retries;
    const label = params.currency === 'EUR' ? '€' : '$';
    return { total, label, note: params.note?.trim() ?? null, kinds: params.kinds.map((kind) => kind.toUpperCase()) };
  },
});

describe('params typed from the parameter list', () => {
  it('a correct handler compiles and its action loads into a catalog', () => {
    const catalog = new Catalog([defineService({ slug: 'shop', name: 'Shop', actions: [payment] })]);
    expect(catalog.action('shop', 'pay')?.parameters.map((parameter) => parameter.slug)).toContain('kinds');
  });

  it('misuses of params fail to compile', () => {
    defineAction({
      slug: 'wrong',
      name: 'Wrong',
      execution: ['ASYNCHRONOUS'],
      parameters: [
        { slug: 'amount', name: 'Amount', type: 'NUMBER' },
        { slug: 'currency', name: 'Currency', type: 'STRING', allowedValues: ['EUR', 'USD'] },
        { slug: 'note', name: 'Note', type: 'STRING', optional: true },
      ],
      handler: ({ params }) => {
        // @ts-expect-error a parameter the action does not have
        void params.amout;
        // @ts-expect-error GBP is not among the allowedValues
        void (params.currency === 'GBP');
        // @ts-expect-error an optional parameter may be absent
        void params.note.length;
        // @ts-expect-error a NUMBER parameter is a number, not a string
        void params.amount.toUpperCase();
        // @ts-expect-error nor is it assignable to one
        const text: string = params.amount;
        void text;
      },
    });
  });

  it('a service holds actions of different params', () => {
    const echo = defineAction({
      slug: 'echo',
      name: 'Echo',
      execution: ['REALTIME'],
      parameters: [{ slug: 'message', name: 'Message', type: 'STRING' }],
      handler: ({ params }) => params.message,
    });
    const nothing = defineAction({ slug: 'nothing', name: 'Nothing', execution: ['ASYNCHRONOUS'], parameters: [], handler: ({ params }) => params });
    expectTypeOf(nothing.handler).returns.toEqualTypeOf<unknown>();
    defineService({ slug: 'mixed', name: 'Mixed', actions: [echo, nothing, payment] });
  });

  it('a parameter list known only at run time gives a record of unknown values', () => {
    const parameters: ParameterDefinition[] = [{ slug: 'any', name: 'Any', type: 'STRING' }];
    expectTypeOf<ParamsOf<typeof parameters>>().toEqualTypeOf<Record<string, unknown>>();
    defineAction({
      slug: 'dynamic',
      name: 'Dynamic',
      execution: ['ASYNCHRONOUS'],
      parameters,
      handler: ({ params }) => expectTypeOf(params).toEqualTypeOf<Record<string, unknown>>(),
    });
  });

  it('a parameter type that does not exist fails to compile', () => {
    defineAction({
      slug: 'typo',
      name: 'Typo',
      execution: ['ASYNCHRONOUS'],
      // @ts-expect-error STRIN is not a ParameterType
      parameters: [{ slug: 'name', name: 'Name', type: 'STRIN' }],
      handler: () => null,
    });
  });
});
