/** The webhook outbox as the deliverer works it: claiming due messages, recording each attempt. */
export interface WebhookStore {}
