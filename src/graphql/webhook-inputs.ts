// The webhook types that a submission takes, apart from webhooks.ts, which extends Task and so
// imports tasks.ts: SubmitTaskInput imports these without a cycle.
import { WEBHOOK_EVENTS } from '../domain/webhooks.js';
import { builder, describedValues } from './builder.js';

export const WebhookEventEnum = builder.enumType('WebhookEvent', {
  description: 'What a webhook is told of.',
  values: describedValues(WEBHOOK_EVENTS, {
    COMPLETED: 'The task reached a terminal state (SUCCEEDED, FAILED or CANCELLED).',
    STARTED: 'A worker started an attempt.',
    PROGRESS: 'The handler reported progress.',
    RESULT: 'The handler stored a result (its metadata; never the payload).',
  }),
});

export const TaskWebhookInputRef = builder.inputType('TaskWebhookInput', {
  fields: (t) => ({
    url: t.string({ required: true, description: 'An http or https URL.' }),
    events: t.field({ type: [WebhookEventEnum], description: 'COMPLETED by default.' }),
  }),
});
