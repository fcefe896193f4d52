import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from 'urql';

export interface Connection {
  client: Client;
  close(): void;
}

/** One urql client per key: queries over HTTP POST, subscriptions over graphql-ws, both to this origin. */
export function connect(key: string): Connection {
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  // Lazy: the socket opens with the first subscription, so a page that only polls opens none.
  const ws: WsClient = createWsClient({
    url: wsUrl,
    lazy: true,
    // The server reads the lower-case name from connection_init.
    connectionParams: { authorization: `Bearer ${key}` },
  });
  const client = new Client({
    url: '/graphql',
    preferGetMethod: false,
    fetchOptions: { headers: { authorization: `Bearer ${key}` } },
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, close: () => void ws.dispose() };
}
