import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { GraphiQLOptions } from 'graphql-yoga';

// SSE goes over the same origin and path as queries, so subscriptions need nothing a firewall blocks.
export const graphiqlOptions: GraphiQLOptions = { title: 'Taskport GraphiQL', subscriptionsProtocol: 'SSE' };

/**
 * GraphiQL with its scripts, styles and editor workers inlined in the page (about 9 MB), so that it
 * works without a CDN. The page is built once per set of options rather than on every request.
 */
export function selfContainedGraphiQL(): (options: GraphiQLOptions) => Uint8Array<ArrayBuffer> {
  let rendered: { options: string; page: Uint8Array<ArrayBuffer> } | undefined;
  return (options) => {
    const key = JSON.stringify(options);
    if (rendered?.options !== key) rendered = { options: key, page: new TextEncoder().encode(renderGraphiQL(options)) };
    return rendered.page;
  };
}
