import type { CombinedError } from 'urql';

/** The message a person can act on: the server's own for GraphQL errors, a plain one for the network. */
export function describeError(error: CombinedError): string {
  const first = error.graphQLErrors[0];
  if (first) {
    if (first.extensions?.code === 'UNAUTHENTICATED') return `The API key was refused: ${first.message}`;
    return first.message;
  }
  if (error.networkError) return `The server could not be reached: ${error.networkError.message}`;
  return error.message;
}
