import { encodeId } from '../graphql/ids.js';
import { queueStatusOf } from '../domain/types.js';
import { WEBHOOK_MESSAGE_TYPES } from '../domain/webhooks.js';
import type { TaskSnapshot } from '../storage/webhook-outbox.js';
import type { LeasedWebhookMessage } from '../storage/webhook-store.js';

/** What a message says of a result: its metadata only, never its payload, which the retrieval protocol hands out. */
export interface ResultMetadata {
  name: string;
  contentType: string;
}

const isoOrNull = (epochMs: number | null): string | null => (epochMs === null ? null : new Date(epochMs).toISOString());

/**
 * The JSON body of a message: `type`, `timestamp` (when the change happened) and `data` with the
 * task as the change left it, under the ids and names the GraphQL API uses.
 */
export function messageBody(message: LeasedWebhookMessage, results: readonly ResultMetadata[]): string {
  const task = JSON.parse(message.task) as TaskSnapshot;
  return JSON.stringify({
    type: WEBHOOK_MESSAGE_TYPES[message.event],
    timestamp: new Date(message.dateCreated).toISOString(),
    data: {
      task: {
        id: encodeId('Task', task.id),
        state: task.state,
        status: queueStatusOf(task.state),
        service: task.service,
        action: task.action,
        error: task.error,
        progress: task.progress,
        priority: task.priority,
        attempts: task.attempts,
        maxAttempts: task.maxAttempts,
        retries: task.retries,
        poll: task.poll,
        session: task.session,
        user: task.user,
        target: task.target,
        idempotencyKey: task.idempotencyKey,
        scheduledFor: isoOrNull(task.scheduledFor),
        dateCreated: isoOrNull(task.dateCreated),
        dateStarted: isoOrNull(task.dateStarted),
        dateCompleted: isoOrNull(task.dateCompleted),
      },
      results: results.map((result) => ({ name: result.name, contentType: result.contentType })),
    },
  });
}
