// Webhooks: endpoints, signing secrets and deliveries, and the webhook of a submission.
export {};
