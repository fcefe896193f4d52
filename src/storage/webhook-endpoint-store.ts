/** Webhook endpoints, signing secrets, and the record of deliveries as the API reads it. */
export interface WebhookEndpointStore {
  /**
   * The secrets that sign a message now, the current one first: the endpoint's, or for null the
   * organisation's (created if it has none yet), and beside it the previous one while
   * `previous_secret_until > now`. Empty when the endpoint does not exist or is deleted: nothing
   * may be sent to it.
   */
  liveSigningSecrets(organisationId: number, endpointId: number | null, now: number): Promise<string[]>;
}
