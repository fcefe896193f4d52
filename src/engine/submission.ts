import { ATTEMPT_BOUNDS, type Catalog } from '../catalog/index.js';
import type { NewTask, RecordStore } from '../storage/index.js';
import { MAX_DEPENDENCIES } from '../domain/api.js';
import { ValidationError } from '../domain/errors.js';
import type { Actor, Organisation, SubmitTaskInput } from '../domain/types.js';
import { checkedWebhookEvents, checkedWebhookUrl } from '../webhooks/urls.js';

export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_TIMEOUT_SECONDS = 300;
const MAX_ATTEMPTS = ATTEMPT_BOUNDS.maxAttempts;
const MAX_TIMEOUT_SECONDS = ATTEMPT_BOUNDS.timeoutSeconds;
const MAX_PRIORITY = 1_000_000;
const MAX_TAG_LENGTH = 256;

/** Where a submission finds the account it names. */
export type AccountLookup = Pick<RecordStore, 'findActiveAccount'>;

/** A lookup for one batch: each account its inputs name is read once, however many name it. */
export function lookupOncePerBatch(records: AccountLookup): AccountLookup {
  const found = new Map<string, ReturnType<AccountLookup['findActiveAccount']>>();
  return {
    findActiveAccount(organisationId, service, username) {
      const key = JSON.stringify([organisationId, service, username]);
      let account = found.get(key);
      if (!account) found.set(key, (account = records.findActiveAccount(organisationId, service, username)));
      return account;
    },
  };
}

function invalidAt(index: number | null, code: ValidationError['code'], field: string, message: string): ValidationError {
  return new ValidationError(code, index === null ? message : `inputs[${index}]: ${message}`, field, index);
}

function checkedInteger(index: number | null, field: string, value: number | null | undefined, min: number, max: number): number | null {
  if (value === null || value === undefined) return null;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidAt(index, 'INVALID', field, `${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function checkedTag(index: number | null, field: string, value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (value.length === 0 || value.length > MAX_TAG_LENGTH) {
    throw invalidAt(index, 'INVALID', field, `${field} must be 1 to ${MAX_TAG_LENGTH} characters`);
  }
  return value;
}

/**
 * Turns one submission into a row for the queue, or throws the ValidationError that names the
 * field at fault. `index` is the position in a batch, so a batch error says which input failed.
 */
export async function prepareSubmission(
  catalog: Catalog,
  records: AccountLookup,
  actor: Actor,
  organisation: Organisation,
  input: SubmitTaskInput,
  index: number | null,
): Promise<NewTask> {
  const permissions = actor.permissions ?? null;
  const service = catalog.service(input.service);
  if (!service || !catalog.allows(permissions, input.service)) {
    throw invalidAt(index, 'INVALID_SERVICE', 'service', `no service ${input.service} for this key`);
  }
  const action = catalog.action(input.service, input.action);
  if (!action || !catalog.allows(permissions, input.service, input.action)) {
    throw invalidAt(index, 'INVALID_ACTION', 'action', `service ${input.service} has no action ${input.action} for this key`);
  }
  if (!action.execution.includes('ASYNCHRONOUS')) {
    throw invalidAt(index, 'INVALID_ACTION', 'action', `${input.service}.${input.action} cannot be queued`);
  }
  const checked = catalog.checkParams(action, input.params, catalog.permissions(input.service, action, permissions));
  if (!checked.ok) throw invalidAt(index, checked.issue.code, checked.issue.field, checked.issue.message);

  let sourceId: number | null = null;
  let sourceType: string | null = null;
  if (input.account !== null && input.account !== undefined) {
    const account = await records.findActiveAccount(actor.organisationId, input.service, input.account);
    if (!account) {
      throw invalidAt(index, 'NO_SUCH_ACCOUNT', 'account', `no account ${input.account} is registered for ${input.service}`);
    }
    sourceId = account.id;
    sourceType = account.service;
  } else if (action.requiresAccount) {
    throw invalidAt(index, 'MISSING_PARAM', 'account', `${input.service}.${input.action} runs against an account`);
  }

  const priority = checkedInteger(index, 'priority', input.priority, -MAX_PRIORITY, MAX_PRIORITY) ?? 0;
  const maxAttempts =
    checkedInteger(index, 'maxAttempts', input.maxAttempts, 1, MAX_ATTEMPTS) ?? action.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const timeoutSeconds =
    checkedInteger(index, 'timeoutSeconds', input.timeoutSeconds, 1, MAX_TIMEOUT_SECONDS) ??
    action.timeoutSeconds ??
    DEFAULT_TIMEOUT_SECONDS;
  if (input.runAt && Number.isNaN(input.runAt.getTime())) throw invalidAt(index, 'INVALID', 'runAt', 'runAt is not a date');
  const dependsOn = input.dependsOn?.length ? [...new Set(input.dependsOn)] : [];
  if (dependsOn.length > MAX_DEPENDENCIES) {
    throw invalidAt(index, 'INVALID', 'dependsOn', `a task may depend on at most ${MAX_DEPENDENCIES} tasks`);
  }
  const webhook = input.webhook
    ? {
        url: checkedWebhookUrl(input.webhook.url, 'webhook.url', index),
        events: checkedWebhookEvents(input.webhook.events, 'webhook.events', index),
      }
    : null;

  return {
    organisationId: actor.organisationId,
    keyId: actor.keyId,
    user: checkedTag(index, 'user', input.user),
    sourceId,
    sourceType,
    session: checkedTag(index, 'session', input.session),
    poll: checkedTag(index, 'poll', input.poll),
    service: input.service,
    type: input.action,
    target: checkedTag(index, 'target', input.target),
    params: checked.params,
    priority,
    maxAttempts,
    timeoutMs: timeoutSeconds * 1000,
    retrievalProtocol: organisation.retrievalProtocol,
    idempotencyKey: checkedTag(index, 'idempotencyKey', input.idempotencyKey),
    runAt: input.runAt ? input.runAt.getTime() : null,
    dependsOn,
    webhook,
  };
}
