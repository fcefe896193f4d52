import { ValidationError } from '../domain/errors.js';
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_LIMITS, type WebhookEvent } from '../domain/webhooks.js';

const SCHEMES = new Set(['http:', 'https:']);

/**
 * The webhook URL as it will be requested, or the ValidationError naming `field`. Only the form is
 * checked here; where it points (a private address, say) is judged at delivery time, on the address
 * the name resolves to then.
 */
export function checkedWebhookUrl(value: string, field: string, index: number | null = null): string {
  const invalid = (message: string) =>
    new ValidationError('INVALID', index === null ? message : `inputs[${index}]: ${message}`, field, index);
  if (value.length > WEBHOOK_LIMITS.urlLength) {
    throw invalid(`${field} must be at most ${WEBHOOK_LIMITS.urlLength} characters`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`${field} is not a URL`);
  }
  if (!SCHEMES.has(url.protocol)) throw invalid(`${field} must be an http or https URL`);
  if (url.hostname === '') throw invalid(`${field} names no host`);
  // The serialised form, which the sender requests, may be longer than what was given (punycode, escapes).
  if (url.href.length > WEBHOOK_LIMITS.urlLength) {
    throw invalid(`${field} must be at most ${WEBHOOK_LIMITS.urlLength} characters`);
  }
  return url.href;
}

/** The events a webhook is told of: COMPLETED when none are named; refused when the list is empty or repeats one. */
export function checkedWebhookEvents(
  events: readonly WebhookEvent[] | null | undefined,
  field: string,
  index: number | null = null,
): WebhookEvent[] {
  const invalid = (message: string) =>
    new ValidationError('INVALID', index === null ? message : `inputs[${index}]: ${message}`, field, index);
  if (events === null || events === undefined) return [...DEFAULT_WEBHOOK_EVENTS];
  if (events.length === 0) throw invalid(`${field} must name at least one event`);
  if (new Set(events).size !== events.length) throw invalid(`${field} names an event twice`);
  return [...events];
}
