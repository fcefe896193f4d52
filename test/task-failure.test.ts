import { describe, expect, it } from 'vitest';
import { TaskFailure } from '../src/catalog/index.js';
import { handlerFailure } from '../src/engine/output.js';

describe('TaskFailure', () => {
  it('is recognised from another copy of its module, as a second install or a CommonJS build would load', async () => {
    // The query string makes the module runner load and evaluate the file a second time.
    const secondCopy = '../src/catalog/types.ts?second-copy';
    const copy = (await import(/* @vite-ignore */ secondCopy)) as typeof import('../src/catalog/types.js');
    expect(copy.TaskFailure).not.toBe(TaskFailure);
    const thrown = new copy.TaskFailure('PAYMENT_DECLINED', 'the card was declined', { retryable: false });
    expect(thrown instanceof TaskFailure).toBe(true);
    expect(handlerFailure(thrown)).toEqual({ code: 'PAYMENT_DECLINED', message: 'the card was declined', retryable: false });
  });

  it('is not an Error that merely carries a code', () => {
    const lookalike = Object.assign(new Error('not ours'), { code: 'ECONNRESET' });
    expect(lookalike instanceof TaskFailure).toBe(false);
    expect(handlerFailure(lookalike)).toMatchObject({ code: 'HANDLER_ERROR' });
  });
});
