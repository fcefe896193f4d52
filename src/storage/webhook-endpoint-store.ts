/** Webhook endpoints, signing secrets, and the record of deliveries as the API reads it. */
export interface WebhookEndpointStore {}
